"""Torch networks out to ONNX: the files serving runs (``core.runtime``) are made here.

Serving never imports torch: a release ships its networks as ONNX files with a JSON
manifest (:func:`write_release_manifest`, read by
``core.keypoints.landmarks.KeypointPredictor.load``).
This module exports (:func:`export`), quantizes (:func:`quantize`) and cuts an ensemble's
graph into one file per member (:func:`member_models`), which serving runs side by side.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import runtime
from core.keypoints.landmarks import RELEASE_FORMAT, member_path
from core.keypoints.preprocess import IMAGENET_MEAN, IMAGENET_STD
from training.model import KeypointEnsemble, KeypointNet, MemberOutputs, WithSpread, members


def export(module: torch.nn.Module, size: int) -> bytes:
    """The module as an ONNX model for (N, 3, size, size) float32 input: outputs y or y0, y1...

    A keypoint network with its spread (``training.model.WithSpread``) goes out member by
    member (``MemberOutputs``: points0, spread0, points1, ...), which ``core.runtime.OnnxModule``
    runs side by side and averages.
    """
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


def export_checked(
    model: torch.nn.Module,
    example: np.ndarray,
    probe: np.ndarray,
    path: Path,
    input_name: str,
    atol: float,
) -> None:
    """A small network (the face verifier, its second look) as an ONNX file at ``path``: one
    input ``input_name`` shaped like ``example`` (the first axis the batch), one output
    ``logit``; ONNX Runtime must answer ``probe`` as the model does, within ``atol`` (and
    float32's relative rounding, 1e-4 of a logit: a probe sure of a made-up crop answers
    logits in the thousands, a few hundredths apart between the two runtimes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, (torch.from_numpy(example),), str(path), input_names=[input_name],
        output_names=["logit"], dynamic_axes={input_name: {0: "n"}, "logit": {0: "n"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = model(torch.from_numpy(probe)).numpy()
    got = sess.run(None, {input_name: probe})[0]
    assert np.allclose(want, got, rtol=1e-4, atol=atol), "the ONNX export answers differently"


def member_models(model: bytes, members: int | None = None) -> list[bytes]:
    """An ensemble's ONNX model (outputs points0, spread0, points1, ...) cut into one model
    per member, each computing only its own outputs; a single network comes back whole."""
    import onnx
    from onnx.utils import Extractor

    proto = onnx.load_from_string(model)
    names = [o.name for o in proto.graph.output]
    if members is None:
        members = len(names) // 2 if names and names[0] == "points0" else 1
    if members <= 1:
        return [model]
    parts = Extractor(proto)
    out = []
    for k in range(members):
        part = parts.extract_model(["x"], [f"points{k}", f"spread{k}"])
        del part.metadata_props[:]
        for prop in proto.metadata_props:  # the source weights' hash travels with each part
            entry = part.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value
        out.append(part.SerializeToString())
    return out


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
    heatmaps, softmax and soft-argmax lose their accuracy in int8, and so does an
    ensemble's mean of points (docs/experiments/keypoint-model.md, "int8").
    ``metadata`` goes into the model's metadata_props (the source weights' hash).
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


def onnx_metadata(model: bytes) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load_from_string(model).metadata_props}


def write_release_manifest(
    weights: Path,
    model: KeypointNet | KeypointEnsemble,
    meta: dict[str, Any],
    member_files: list[Path],
) -> Path:
    """``NAME.json`` beside ``weights`` (NAME.pt): what serving needs to run the release's
    ONNX files without reading the .pt (see ``core.keypoints.landmarks.read_manifest``)."""
    config = model.config
    manifest = {
        "format": RELEASE_FORMAT,
        "name": weights.stem,
        "input_size": config.input_size,
        "input": {
            "layout": "NCHW float32, RGB",
            "normalize": "(pixel - mean) / std, pixels 0-255",
            "mean": [round(float(v), 4) for v in IMAGENET_MEAN],
            "std": [round(float(v), 4) for v in IMAGENET_STD],
        },
        "points": 68,
        "point_order": "iBUG 300-W 68-point markup (core.keypoints.face68)",
        "outputs": "points (N, 68, 2) in unit crop coordinates, spread (N,)",
        "members": [
            {
                "file": path.name,
                "sha256": runtime.file_sha256(path),
                "arch": net.config.arch,
                "head": net.config.head,
            }
            for path, net in zip(member_files, members(model), strict=True)
        ],
        "source_weights": {"file": weights.name, "sha256": runtime.file_sha256(weights)},
        "meta": meta,
    }
    path = weights.with_suffix(".json")
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def write_members(int8_model: bytes, weights: Path, count: int) -> list[Path]:
    """The release's int8 network, cut into its members' files beside ``weights``."""
    files = []
    for k, part in enumerate(member_models(int8_model, count)):
        path = member_path(weights, k)
        path.write_bytes(part)
        files.append(path)
    return files
