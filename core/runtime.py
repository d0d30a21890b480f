"""Run a trained torch module with ONNX Runtime: ~2.5x faster per face on a 2-core CPU.

The module is exported to ONNX in memory when the model is loaded (about half a second;
nothing is written or downloaded) and the torch weights stay the one source of truth.
Measured on the shipped Lite0 at 192 px, batch 1, 2 threads: torch eager (BatchNorm
folded, channels-last) 10.8 ms, ONNX Runtime 4.3 ms, outputs equal to 2e-7. MTCNN's nets
run here too (``core.mtcnn``).

A release may also ship the network in int8 (``quantize``, run by ``facemask-release``):
a file beside the weights, carrying the weights' SHA-256, that ``core.landmarks`` runs in
their place while the hash matches (1.7x faster again; see ``quantize``). Serving it does
not need torch: a worker imports ONNX Runtime and the ``onnx`` package (~15 MB resident,
to cut an ensemble into its members and to build MTCNN's graphs).

Every session here takes its threads from ``core.threads`` and runs with ONNX Runtime's
telemetry off: ``core/__init__.py`` sets ``ORT_DISABLE_TELEMETRY`` before anything imports
it (else importing it writes a device id and an event store under
``~/.cache/Microsoft/DeveloperTools``), and :func:`ort` switches its telemetry events off.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

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


def available() -> bool:
    """Whether ONNX Runtime can serve: an int8 file or MTCNN's nets need it alone (building
    MTCNN's graphs and exporting a torch module also need ``onnx``)."""
    try:
        import onnx  # noqa: F401

        ort()
    except ImportError:
        return False
    return True


def export(module: torch.nn.Module, size: int) -> bytes:
    """The module as an ONNX model for (N, 3, size, size) float32 input: outputs y or y0, y1...

    A keypoint network with its spread (``core.model.WithSpread``) goes out member by member
    (``MemberOutputs``: points0, spread0, points1, ...), which ``OnnxModule`` runs side by
    side and averages.
    """
    import torch

    from core.model import MemberOutputs, WithSpread

    if isinstance(module, WithSpread):
        module = MemberOutputs(module.model)
    buffer = io.BytesIO()
    example = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        probe = module.eval()(example)
    names = getattr(module, "output_names", None)
    if names is None:
        names = [f"y{i}" for i in range(len(probe))] if isinstance(probe, tuple) else ["y"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notes
        torch.onnx.export(
            module.eval(),
            (example,),
            buffer,
            input_names=["x"],
            output_names=names,
            dynamic_axes={"x": {0: "n"}, **{name: {0: "n"} for name in names}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


class OnnxModule:
    """A callable with the module's signature for one (N, 3, S, S) float32 input: a tensor
    back, or a tuple of them where the module returns a tuple. Built from a torch module
    (exported in memory) or from an ONNX model's bytes (an int8 file, see ``quantize``).

    A keypoint network exported member by member (``export``) returns the members' mean
    points and spread, as ``WithSpread`` does. With two threads or more, an ensemble's
    members run side by side, each in its own session on its share of the threads: at
    batch 1 a session gains only 1.3x from a second thread, two members on one thread each
    nearly 2x (measured on 2 cores, int8 Lite0 + Lite1: 7.8 ms in turn, 5.0 side by side).
    """

    def __init__(
        self, model: torch.nn.Module | bytes, size: int | None = None, threads: int | None = None
    ) -> None:
        from core import threads as thread_counts

        if not isinstance(model, bytes):  # a torch module, exported here
            if size is None:
                raise ValueError("exporting a torch module needs its input size")
            model = export(model, size)
        import onnx

        threads = threads or thread_counts.count()
        proto = onnx.load_from_string(model)
        self.names = [o.name for o in proto.graph.output]
        self.members = len(self.names) // 2 if self.names[0] == "points0" else 0
        self.pool: ThreadPoolExecutor | None = None
        if self.members > 1 and threads > 1:
            self.sessions = [
                session(part, max(1, threads // self.members))
                for part in member_models(proto, self.members)
            ]
            self.pool = ThreadPoolExecutor(min(self.members, threads), "onnx-member")
        else:
            self.sessions = [session(model, threads)]
        del proto  # the sessions hold the weights now
        self.many = len(self.names) > 1 or self.names[0] != "y"

    def __call__(self, x: Any) -> Any:
        """(N, 3, S, S) float32 crops, a numpy array (numpy arrays back) or a torch tensor
        (torch tensors back, as the module answers)."""
        is_array = isinstance(x, np.ndarray)
        array = x if is_array else x.detach().cpu().numpy()
        feed = {"x": np.ascontiguousarray(array, dtype=np.float32)}
        if self.pool is not None:
            runs = list(self.pool.map(lambda session: session.run(None, feed), self.sessions))
            outs = [out for run in runs for out in run]
        else:
            outs = self.sessions[0].run(None, feed)
        if self.members:  # points0, spread0, points1, ...: the members' means
            outs = [np.mean(outs[0::2], axis=0), np.mean(outs[1::2], axis=0)]
        if not is_array:
            import torch

            outs = [torch.from_numpy(o) for o in outs]
        return tuple(outs) if self.many else outs[0]


def member_models(proto: Any, members: int) -> list[bytes]:
    """An ensemble's ONNX model (outputs points0, spread0, points1, ...) cut into one model
    per member, each computing only its own outputs."""
    from onnx.utils import Extractor

    parts = Extractor(proto)
    return [
        parts.extract_model(["x"], [f"points{k}", f"spread{k}"]).SerializeToString()
        for k in range(members)
    ]


def session(model: bytes, threads: int, varying_shapes: bool = False) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` threads, none busy-waiting.

    Its scratch memory comes from the one arena all our sessions share (registered by
    :func:`ort`): with an arena per session each kept its own peak, and MTCNN's, fed
    pyramid levels of every size, kept growing (a worker after 60 photos: 381 MB resident
    with the shared arena, 422-427 with one each and none for MTCNN, ~480 with one each;
    the same 102-106 ms a photo; facemask-bench --memory). ``varying_shapes``: the inputs
    change size from run to run (MTCNN's pyramid levels and patch batches, CenterFace's
    photos), so no memory plan is kept per shape.
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
    # that run next (a whole photo took 79 ms with spinning). Spinning only inside a run
    # (session.force_spinning_stop) runs the network alone 20% faster but still lost:
    # 57.7 vs 48.3 ms a photo, 10.7 vs 9.3 ms a face beside torch (facemask-bench/-speed)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort_.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing). Loading a network leaves its parsed copies freed but resident: ~30 MB for the
    keypoint ensemble. Called once after loading, not per photo: pages handed back must be
    faulted in again by the next photo, which cost ~40% of a photo's time when done each
    time."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is not None:
        trim(0)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def quantize(
    module: torch.nn.Module,
    size: int,
    calibration: np.ndarray,
    out: str | Path,
    keep_float: str = "/head/",
    **metadata: str,
) -> None:
    """Write the module as an int8 ONNX model (QDQ, weights per channel) to ``out``.

    ``calibration``: (N, 3, size, size) float32 inputs like those it will see, from which
    the activations' ranges are taken (min/max). Convolutions, their clipping and their
    sums go int8, except in nodes whose name holds ``keep_float``: the integral head's
    heatmaps, softmax and soft-argmax lost all accuracy in int8 (23.6% NME on the
    validation crops), and an ensemble's mean of points in uint8 cost 0.25 points on every
    face. The backbone alone in int8 costs 0.00-0.01 points and runs the network 1.7x
    faster (5.1 -> 3.1 ms for Lite0 at 192 px, 2 threads, on a CPU with AVX-512 VNNI).
    ``metadata`` goes into the model's metadata_props (the source weights' hash, see
    ``core.landmarks``).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration[i : i + 8] for i in range(0, len(calibration), 8))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"x": np.ascontiguousarray(batch, np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        plain, prepared, quantized = (Path(tmp) / n for n in ("f.onnx", "p.onnx", "q.onnx"))
        plain.write_bytes(export(module, size))
        quant_pre_process(str(plain), str(prepared))
        floats = [n.name for n in onnx.load(str(prepared)).graph.node if keep_float in n.name]
        quantize_static(
            str(prepared),
            str(quantized),
            Batches(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=floats,
            op_types_to_quantize=["Conv", "Clip", "Add"],
            calibrate_method=CalibrationMethod.MinMax,
        )
        model = onnx.load(str(quantized))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out))


def metadata(path: str | Path) -> dict[str, str]:
    """An ONNX file's metadata_props."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
