"""ONNX Runtime sessions for every network the product runs, torch never imported.

Every network ships as an ONNX file (``core/weights``, checked against its manifest by
:mod:`core.weightfiles`); training makes them (``training.export``). Each session takes
its threads from ``core.threads``, none busy-waiting, with ONNX Runtime's telemetry off
(importing it otherwise writes a device id and an event store under
``~/.cache/Microsoft/DeveloperTools``: :func:`ort` sets ``ORT_DISABLE_TELEMETRY`` first
and switches its telemetry events off).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@cache
def ort() -> Any:
    """The ``onnxruntime`` module, its telemetry switched off (see the module's notes) and
    one memory arena registered for all our sessions (see :func:`session`)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # read when it is first imported
    import onnxruntime

    if hasattr(onnxruntime, "disable_telemetry_events"):  # absent from some builds
        onnxruntime.disable_telemetry_events()
    global _shared_arena
    try:
        # grown by what is asked, not in powers of two; a free chunk split where it would
        # waste more than 1 MB
        config = onnxruntime.OrtArenaCfg(
            {"arena_extend_strategy": 1, "max_dead_bytes_per_chunk": 1 << 20}
        )
        cpu = onnxruntime.OrtMemoryInfo(
            "Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
            onnxruntime.OrtMemType.DEFAULT,
        )  # fmt: skip
        onnxruntime.create_and_register_allocator(cpu, config)
        _shared_arena = True
    except Exception as err:  # an older build: each session keeps its own arena
        log.debug("no shared ONNX Runtime arena: %s", err)
    return onnxruntime


_shared_arena = False


class OnnxModule:
    """A keypoint network on ONNX Runtime: (N, 3, S, S) float32 crops in, a numpy array
    back, or a tuple of them where the network answers several outputs.

    Built from one ONNX model or from an ensemble's members (one model each, outputs
    ``points``/``spread``; ``training.export.member_models`` cuts them), which run side by
    side, each in its own session on its share of the threads, and are averaged: at batch
    1 a session gains little from a second thread, two members on one thread each nearly
    twice (docs/experiments/detection-and-speed.md).
    """

    def __init__(self, models: bytes | Sequence[bytes], threads: int | None = None) -> None:
        from core import threads as thread_counts

        parts = [models] if isinstance(models, bytes) else list(models)
        threads = threads or thread_counts.count()
        share = max(1, threads // len(parts)) if len(parts) > 1 else threads
        self.sessions = [session(part, share) for part in parts]
        self.names = [o.name for s in self.sessions for o in s.get_outputs()]
        # an ensemble's outputs (in one graph or one per member): points0, spread0, ...
        paired = self.names[0] == "points0"
        self.members = len(self.names) // 2 if paired else len(parts)
        self.pool: ThreadPoolExecutor | None = None
        if len(parts) > 1 and threads > 1:
            self.pool = ThreadPoolExecutor(min(len(parts), threads), "onnx-member")
        self.many = len(self.names) > 1

    def __call__(self, x: np.ndarray) -> Any:
        feed = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        if self.pool is not None:
            runs = list(self.pool.map(lambda s: s.run(None, feed), self.sessions))
        else:
            runs = [s.run(None, feed) for s in self.sessions]
        outs = [out for run in runs for out in run]
        if len(outs) > 1 and self.members > 1:  # points, spread per member: their means
            outs = [np.mean(outs[0::2], axis=0), np.mean(outs[1::2], axis=0)]
        return tuple(outs) if self.many else outs[0]


def session(model: bytes | str | Path, threads: int, varying_shapes: bool = False) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` threads, none busy-waiting.

    Its scratch memory comes from the one arena all our sessions share (registered by
    :func:`ort`): with an arena per session each kept its own peak, and MTCNN's, fed
    pyramid levels of every size, kept growing. ``varying_shapes``: the inputs change size
    from run to run (MTCNN's pyramid levels and patch batches, CenterFace's photos), so no
    memory plan is kept per shape.
    """
    ort_ = ort()
    options = ort_.SessionOptions()
    if _shared_arena:
        options.add_session_config_entry("session.use_env_allocators", "1")
    elif varying_shapes:  # a session's own arena would only grow
        options.enable_cpu_mem_arena = False
    if varying_shapes:
        options.enable_mem_pattern = False
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort_.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # no busy-waiting: spinning threads steal the cores from the detector and the warp
    # that run next (docs/experiments/detection-and-speed.md)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if isinstance(model, Path):
        model = str(model)
    return ort_.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@cache
def libc() -> Any:
    """The C library (ctypes), or None where it cannot be found or loaded."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing). Loading a network leaves its parsed copies freed but resident. Called once
    after loading, not per photo: pages handed back must be faulted in again by the next
    photo."""
    trim = getattr(libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata(path: str | Path) -> dict[str, str]:
    """An ONNX file's metadata_props, read by ONNX Runtime."""
    options = ort().SessionOptions()
    options.log_severity_level = 3
    meta = ort().InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(meta.get_modelmeta().custom_metadata_map)
