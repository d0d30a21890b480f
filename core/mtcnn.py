"""MTCNN face detector (Zhang et al. 2016): three small cascaded CNNs and five landmarks.

The pretrained weights are the ones the PyPI package ``facenet-pytorch`` ships inside its
wheel (``facenet_pytorch/data/{p,r,o}net.pt``, MIT licence, converted from the authors'
Caffe models). That package pins an old torch and torchvision, so ``./run`` installs it
with ``--no-deps`` and only its weight files are read: nothing of it is imported, nothing
is downloaded at run time. The networks below reproduce its layer names so the state
dicts load with ``strict=True``; the cascade itself (pyramid, NMS, box regression) runs in
numpy and OpenCV, which is faster than torch for these tiny tensors on a CPU.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

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


class PNet(nn.Module):
    """12x12 proposal net, run fully convolutionally over an image pyramid."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """24x24 refinement net."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the Caffe original was trained on transposed images: flatten in its order
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """48x48 output net: final score, box and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


@cache
def load_nets() -> tuple[PNet, RNet, ONet]:
    folder = weights_dir()
    nets = []
    for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        state = torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        # channels-last: torch's CPU max-pooling is ~8x faster in it for these shapes
        nets.append(net.eval().to(memory_format=torch.channels_last))
    return tuple(nets)


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


def _patches(image: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
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
    x = (out.astype(np.float32) - 127.5) * 0.0078125
    return torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC memory is channels-last


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
    ) -> None:
        self.min_face = min_face
        self.thresholds = thresholds
        self.factor = factor
        self.pnet, self.rnet, self.onet = load_nets()  # shared by every instance

    def __call__(self, image_rgb: np.ndarray) -> list[RawFace]:
        image = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
        with torch.inference_mode():  # nothing here mutates the instance or the nets
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
            x = torch.from_numpy((level - 127.5) * 0.0078125)[None].permute(0, 3, 1, 2)
            reg, prob = self.pnet(x)
            prob, reg = prob[0].numpy(), reg[0].numpy()
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
        prob, reg = prob.numpy(), reg.numpy()
        keep = prob > self.thresholds[1]
        boxes, prob, reg = boxes[keep], prob[keep], reg[keep]
        pick = nms(boxes[:, :4], prob, 0.7)
        out = _regress(boxes[pick, :4], reg[pick])
        return np.concatenate([_square(out), prob[pick, None]], axis=1)

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> list[RawFace]:
        boxes = np.trunc(boxes[:, :4])
        reg, marks, prob = self.onet(_patches(image, boxes, 48))
        reg, marks, prob = reg.numpy(), marks.numpy(), prob.numpy()
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
