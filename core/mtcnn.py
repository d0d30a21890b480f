"""MTCNN face detector (Zhang et al. 2016): three small cascaded CNNs and five landmarks.

The pretrained weights are the ones the PyPI package ``facenet-pytorch`` ships inside its
wheel (``facenet_pytorch/data/{p,r,o}net.pt``, MIT licence, converted from the authors'
Caffe models). That package pins an old torch and torchvision, so ``./run`` installs it
with ``--no-deps`` and only its weight files are read: nothing of it is imported, nothing
is downloaded at run time.

The nets run on ONNX Runtime: their weights are read without torch (:mod:`core.torchfile`)
and the three graphs built in memory when first needed (a few milliseconds; nothing is
written), so a worker never imports torch, ~240 MB resident less. The cascade on the bench's
1280x960 one-face photo, both backends interleaved in one process (issue 18): on 2 cores
shared with other work (load ~7) ONNX Runtime took 63 ms (median; best 41), torch 268 ms
(best 66), whose OpenMP threads wait for each other when a core is taken; on one core
(taskset) 43 against 38 ms. Without ONNX Runtime they run on torch
(:mod:`core.mtcnn_torch`, also the reference the ONNX nets are tested against). The cascade
itself (pyramid, NMS, box regression) runs in numpy and OpenCV, which is faster than either
for these tiny arrays.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "facenet_pytorch"


class MissingDetectorWeights(RuntimeError):
    pass


def weights_dir() -> Path:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MissingDetectorWeights(
            "the MTCNN face detector's weights come from the PyPI package facenet-pytorch; "
            "install it with: pip install --no-deps facenet-pytorch==2.6.0 (./run does this)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


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


def read_weights(name: str) -> dict[str, np.ndarray]:
    """facenet-pytorch's state dict of net ``name`` (pnet, rnet, onet), read without torch."""
    from core import torchfile

    return torchfile.load(weights_dir() / f"{name}.pt")


def onnx_model(name: str, state: dict[str, np.ndarray]) -> bytes:
    """Net ``name`` with weights ``state`` as an ONNX model that reads (N, H, W, 3) float32
    patches, as the cascade cuts them, and answers its HEADS (its sums match torch's to
    ~1e-6; tests/core/test_onnx_serving.py checks the faces)."""
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
    return model.SerializeToString()


class OnnxNet:
    """One net on ONNX Runtime: (N, H, W, 3) float32 in, its HEADS out as numpy arrays."""

    def __init__(self, name: str) -> None:
        from core import runtime, threads

        self.name = name
        model = onnx_model(name, read_weights(name))
        self.session = runtime.session(model, threads.count(), varying_shapes=True)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {"x": np.ascontiguousarray(x, np.float32)}))


Net = Callable[[np.ndarray], tuple[np.ndarray, ...]]
BACKENDS = ("auto", "onnxruntime", "torch")


def load_nets(backend: str | None = None) -> tuple[Net, Net, Net]:
    """PNet, RNet and ONet, shared by every :class:`Mtcnn`: on ONNX Runtime, their weights
    read without torch ("auto" where ONNX Runtime is installed), or on torch
    (:mod:`core.mtcnn_torch`, ~240 MB more per process; "auto" without ONNX Runtime).
    ``backend`` defaults to ``$FACEMASK_MTCNN_BACKEND``, else "auto"."""
    return _load_nets(backend or os.environ.get("FACEMASK_MTCNN_BACKEND") or "auto")


@cache
def _load_nets(backend: str) -> tuple[Net, Net, Net]:
    from core import runtime

    if backend not in BACKENDS:
        raise ValueError(f"unknown MTCNN backend {backend!r}: choose one of {BACKENDS}")
    weights_dir()  # missing weights: the one clear error, whichever backend
    if backend == "onnxruntime" or (backend == "auto" and runtime.available()):
        nets = tuple(OnnxNet(name) for name in ("pnet", "rnet", "onet"))
        runtime.trim_heap()  # the state dicts and graphs are in the sessions now
        return nets
    from core.mtcnn_torch import torch_runners

    if backend == "auto":
        log.info("MTCNN runs on torch: ONNX Runtime is not installed")
    return torch_runners()


load_nets.cache_clear = _load_nets.cache_clear  # type: ignore[attr-defined]  (load again)


@dataclass(frozen=True)
class RawFace:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels (the net's own convention)
    score: float
    points: np.ndarray  # (5, 2): left eye, right eye, nose, left and right mouth corner


# At most this many boxes enter one suppression, the best-scoring ones: all pairs are
# compared at once (N x N), and a real photo gives under 1000 (48 faces tiled: 876).
MAX_NMS_BOXES = 2000


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False):
    """Indices kept by greedy non-maximum suppression (IoU, or overlap / smaller area)."""
    order = np.argsort(scores, kind="stable")[::-1][:MAX_NMS_BOXES]
    x0, y0, x1, y1 = (boxes[order, k, None] for k in range(4))
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    w = np.maximum(0.0, np.minimum(x1, x1.T) - np.maximum(x0, x0.T) + 1)
    h = np.maximum(0.0, np.minimum(y1, y1.T) - np.maximum(y0, y0.T) + 1)
    inter = w * h
    denom = np.minimum(area, area.T) if by_min else area + area.T - inter
    overlaps = inter / denom > threshold  # all pairs at once: ~10x faster than row by row
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(order[i])
            suppressed |= overlaps[i]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + w / 2 - side / 2
    out[:, 1] = boxes[:, 1] + h / 2 - side / 2
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes[:, :4] + reg * np.stack([w, h, w, h], 1)


def _patches(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Boxes cut out (zero outside the image) and resized to size x size, bilinearly.

    The reference averages areas when shrinking; bilinear sampling is ~10 ms faster on a
    1280x960 photo (100 candidate boxes) and still finds faces filling 1000-px selfies and
    3000-px photos with the same scores (0.999+).
    """
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        # map the box's pixels [x0, x1] onto the patch, as the reference implementation does
        sx, sy = size / (x1 - x0 + 1), size / (y1 - y0 + 1)
        m = np.array([[sx, 0, -x0 * sx + (sx - 1) / 2], [0, sy, -y0 * sy + (sy - 1) / 2]])
        out[k] = cv2.warpAffine(
            image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
    return (out.astype(np.float32) - 127.5) * 0.0078125  # (N, size, size, 3), as nets read


class Mtcnn:
    """The three-stage cascade on one RGB image.

    ``min_face`` is the smallest box side searched for, in pixels; the boxes MTCNN draws
    span brows to chin, about 2.2x the distance between the eyes.
    """

    def __init__(
        self,
        min_face: float = 40.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        backend: str | None = None,
    ) -> None:
        self.min_face = min_face
        self.thresholds = thresholds
        self.factor = factor
        self.pnet, self.rnet, self.onet = load_nets(backend)  # shared by every instance

    def __call__(self, image_rgb: np.ndarray) -> list[RawFace]:
        image = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
        boxes = self._propose(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if len(boxes):
            return self._output(image, boxes)
        return []

    def scales(self, height: int, width: int) -> list[float]:
        scale, side, out = 12.0 / self.min_face, min(height, width), []
        while side * scale >= 12:
            out.append(scale)
            scale *= self.factor
        return out

    def _propose(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        found, level = [], image
        for scale in self.scales(h, w):
            size = (int(np.ceil(w * scale)), int(np.ceil(h * scale)))
            # each level from the one before: area-resizing the full photo ten times costs
            # ~30 ms on a 1280x960 photo, this ~3 ms
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            if level.dtype != np.float32:  # the photo stays uint8: converting it costs more
                level = level.astype(np.float32)
            reg, prob = self.pnet(((level - 127.5) * 0.0078125)[None])
            prob, reg = prob[0], reg[0]
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            # each output cell is a 12x12 window at stride 2 in the pyramid level
            cells = np.stack([xs, ys], 1).astype(np.float32)
            q0 = np.floor((2 * cells + 1) / scale)
            q1 = np.floor((2 * cells + 12) / scale)
            boxes = np.concatenate([q0, q1, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1)
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        out = _regress(boxes[:, :4], boxes[:, 5:9])
        return np.concatenate([_square(out), boxes[:, 4:5]], axis=1)

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        boxes = np.concatenate([np.trunc(boxes[:, :4]), boxes[:, 4:]], axis=1)
        reg, prob = self.rnet(_patches(image, boxes[:, :4], 24))
        keep = prob > self.thresholds[1]
        boxes, prob, reg = boxes[keep], prob[keep], reg[keep]
        pick = nms(boxes[:, :4], prob, 0.7)
        out = _regress(boxes[pick, :4], reg[pick])
        return np.concatenate([_square(out), prob[pick, None]], axis=1)

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> list[RawFace]:
        boxes = np.trunc(boxes[:, :4])
        reg, marks, prob = self.onet(_patches(image, boxes, 48))
        keep = prob > self.thresholds[2]
        boxes, reg, marks, prob = boxes[keep], reg[keep], marks[keep], prob[keep]
        if not len(boxes):
            return []
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        px = marks[:, :5] * w[:, None] + boxes[:, 0:1] - 1
        py = marks[:, 5:] * h[:, None] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        pick = nms(boxes, prob, 0.7, by_min=True)
        return [RawFace(boxes[i], float(prob[i]), np.stack([px[i], py[i]], 1)) for i in pick]
