"""The product's keypoint path (``core.keypoints.landmarks.KeypointPredictor``) around a
torch network.

Serving runs a release's ONNX files and never imports torch; training, its validation,
the lab's measurements and the tests also need the same path around a network in
training or a ``.pt`` checkpoint. This module builds that predictor:

* ``backend="onnxruntime"`` (the default): BatchNorm folded, exported to ONNX in memory
  (``training.export``) and run as serving runs its files, members side by side;
* ``backend="torch"``: the module itself, eager, channels-last.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import runtime
from core.errors import WeightsError
from core.keypoints.landmarks import KeypointPredictor
from core.threads import configure as configure_threads
from training.export import export, member_models
from training.model import (
    KeypointEnsemble,
    KeypointNet,
    ModelConfig,
    WithSpread,
    describe,
    fold_batchnorm,
    load_weights,
)

Model = KeypointNet | KeypointEnsemble


def numpy_forward(module: torch.nn.Module, device: torch.device | str = "cpu"):
    """``module`` (crops -> points[, spread]) as a numpy-in, numpy-out forward."""

    def forward(x: np.ndarray) -> Any:
        tensor = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)
        tensor = tensor.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = module(tensor)
        if isinstance(out, tuple):
            return tuple(o.float().cpu().numpy() for o in out)
        return out.float().cpu().numpy()

    return forward


def optimized(model: Model) -> WithSpread:
    """The network as the forward pass runs it: BatchNorm folded into the convolutions."""
    folded = fold_batchnorm(copy.deepcopy(model))
    return WithSpread(folded.to(memory_format=torch.channels_last).eval())


def torch_predictor(
    model: Model,
    meta: dict | None = None,
    backend: str = "onnxruntime",
    optimize: bool = True,
    **options: Any,
) -> KeypointPredictor:
    """The product's path around ``model``; ``.model`` is the network as given."""
    model = model.eval().to(memory_format=torch.channels_last)
    size = model.config.input_size
    if backend == "onnxruntime":
        forward = runtime.OnnxModule(member_models(export(optimized(model), size)))
    elif backend == "torch":
        forward = numpy_forward(optimized(model) if optimize else WithSpread(model))
    else:
        raise ValueError(f"unknown backend {backend!r}: onnxruntime or torch")
    predictor = KeypointPredictor(forward, size, meta, backend, **options)
    predictor.model = model
    return predictor


def load_predictor(
    path: str | Path | None = None, threads: int | None = None, **options: Any
) -> KeypointPredictor:
    """A predictor for a release manifest (``.json``, as serving loads it) or a training
    checkpoint (``.pt``, exported here). No path: the shipped release."""
    if path is None or Path(path).suffix != ".pt":
        return KeypointPredictor.load(path, threads=threads, **options)
    configure_threads(threads=threads)
    try:
        model, meta = load_weights(path)
    except Exception as err:
        raise WeightsError(f"keypoint weights could not be loaded from {path}: {err}") from err
    configure_threads(threads=threads)  # torch is loaded now: give it this process's count
    predictor = torch_predictor(model, meta, **options)
    predictor.description = describe(model)
    return predictor


def untrained(config: ModelConfig | None = None) -> KeypointPredictor:
    """Random weights, eager torch: for tests of code paths that don't care where the
    points land."""
    return torch_predictor(KeypointNet(config or ModelConfig()), backend="torch", optimize=False)
