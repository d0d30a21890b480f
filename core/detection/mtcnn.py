"""MTCNN face detector (Zhang et al. 2016): three small cascaded CNNs and five landmarks.

The three nets ship as ONNX files in core/weights (``mtcnn-{pnet,rnet,onet}.onnx``, MIT,
exported by ``lab/export_detectors.py`` from facenet-pytorch's release of the authors'
weights; ``core/weights/MANIFEST.json`` has their SHA-256, source and licence) and run on
ONNX Runtime. The cascade itself (pyramid, NMS, box regression) runs in numpy and OpenCV,
which is faster than either network runtime for these tiny arrays.

:class:`Mtcnn` returns the raw faces in the network's own box convention;
:class:`MtcnnFaceDetector` is the adapter that turns them into face boxes (``MTCNN_BOXES``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from core.detection.base import BoxConvention, Detection, largest_first, shrunk

log = logging.getLogger(__name__)

NET_NAMES = ("pnet", "rnet", "onet")


def shrinking_run() -> object:
    """ONNX Runtime run options that hand the memory arena's free chunks back to malloc when
    the run ends. The arena all sessions share (``core.runtime``) otherwise keeps the
    largest scratch any run ever asked for (a batch of a thousand candidate patches, a
    12-megapixel photo's pyramid) for the process's life; handed back, a pool worker's
    trim (``serving.pool.trim_after``) returns it to the system: 434 -> 279-291 MB after
    28 mixed photos (docs/experiments/detection-and-speed.md, issue 27)."""
    from core import runtime

    options = runtime.ort().RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


class OnnxNet:
    """One net on ONNX Runtime: (N, H, W, 3) float32 in, its heads out as numpy arrays
    (PNet: reg, prob; RNet: reg, prob; ONet: reg, marks, prob).

    ``shrink``: the arena gives its free chunks back after each run (``shrinking_run``):
    for ONet, which ends a photo's search, so that the pyramid levels and RNet's batch
    before it still reuse one another's chunks (once a photo: ~2% of its time)."""

    def __init__(self, name: str, shrink: bool = False) -> None:
        from core import runtime, threads
        from core.weightfiles import weight_file

        self.name = name
        path = weight_file(f"mtcnn-{name}.onnx")
        self.session = runtime.session(path, threads.count(), varying_shapes=True)
        self.run_options = shrinking_run() if shrink else None

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        feed = {"x": np.ascontiguousarray(x, np.float32)}
        return tuple(self.session.run(None, feed, self.run_options))


Net = Callable[[np.ndarray], tuple[np.ndarray, ...]]


@cache
def load_nets() -> tuple[Net, Net, Net]:
    """PNet, RNet and ONet on ONNX Runtime, shared by every :class:`Mtcnn`."""
    from core import runtime

    nets = tuple(OnnxNet(name, shrink=name == "onet") for name in NET_NAMES)
    runtime.trim_heap()  # the files' parsed copies are in the sessions now
    return nets


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
        nets: tuple[Net, Net, Net] | None = None,
        borderline: float | None = None,
        big: tuple[float, float] | None = None,
    ) -> None:
        self.min_face = min_face
        self.thresholds = thresholds
        # (side, bar): on the pyramid's levels that find boxes of at least ``side`` pixels,
        # PNet's bar is ``bar`` where that is lower (core.detection.mtcnn.BIG_FACE)
        self.big = big
        # ONet's scores from here up to thresholds[2] come back too (``borderline`` faces);
        # the suppression keeps the surer box first, so the sure faces are the same
        self.borderline = borderline
        self.factor = factor
        # the shipped nets, shared by every instance; others (lab.mtcnn_torch's reference)
        # are given
        self.pnet, self.rnet, self.onet = nets or load_nets()

    def __call__(
        self, image_rgb: np.ndarray, smallest: float = 0.0, big: bool = True
    ) -> list[RawFace]:
        """The faces in an RGB image. ``smallest``: the pyramid's levels that find only
        boxes a step (``factor``) or more smaller than this many pixels are not searched.
        The levels left are the very same, and find the faces above it; a face's box is
        theirs, so it can differ a little where a finer level scored the face surer
        (docs/experiments/detection-and-speed.md, "A size floor the search keeps to")."""
        image = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
        boxes = self._propose(image, smallest, big)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if len(boxes):
            return self._output(image, boxes)
        return []

    def scales(self, height: int, width: int) -> list[float]:
        """The pyramid's scales, finest first: level ``s`` finds boxes of 12 / s pixels and
        up to a step (``factor``) larger."""
        scale, side, out = 12.0 / self.min_face, min(height, width), []
        while side * scale >= 12:
            out.append(scale)
            scale *= self.factor
        return out

    def _propose(self, image: np.ndarray, smallest: float = 0.0, big: bool = True) -> np.ndarray:
        h, w = image.shape[:2]
        found, level = [], image
        for scale in self.scales(h, w):
            size = (int(np.ceil(w * scale)), int(np.ceil(h * scale)))
            # each level from the one before: area-resizing the full photo ten times costs
            # ~30 ms on a 1280x960 photo, this ~3 ms
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            if level.dtype != np.float32:  # the photo stays uint8: converting it costs more
                level = level.astype(np.float32)
            if 12.0 / scale < smallest * self.factor:
                # even the next level finds boxes that small: not searched, but made all
                # the same, so that every level after it is what it was without ``smallest``
                continue
            reg, prob = self.pnet(((level - 127.5) * 0.0078125)[None])
            prob, reg = prob[0], reg[0]
            bar = self.thresholds[0]
            if big and self.big is not None and 12.0 / scale >= self.big[0]:
                bar = min(bar, self.big[1])
            ys, xs = np.nonzero(prob >= bar)
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
        bar = self.thresholds[2]
        keep = prob > (bar if self.borderline is None else min(self.borderline, bar))
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


# --------------------------------------------------------------------------- the adapter

# MTCNN's boxes against the 68-point box, measured on training crops: tighter than the
# cascade's, so its crops sit inside the scatter the model was trained on
# (docs/experiments/core-notes.md, "Box conventions").
MTCNN_SIDE_RATIO = 1.051
MTCNN_DX = -0.029
MTCNN_DY = -0.179
MTCNN_BOXES = BoxConvention(MTCNN_SIDE_RATIO, MTCNN_DX, MTCNN_DY)
# ONet's borderline faces: scored above this but not above its bar (0.8). Blurred faces in
# group photos that MTCNN misses often land here; the product masks them only where the
# face verifier is sure (FaceGate.min_face_unsure), and only in photos where a face is sure
# upright (core.detection.turns.detect_with_turns) (docs/experiments/false-masks.md,
# "Round 4").
BORDERLINE = 0.5
# PNet's bar on the levels of the pyramid that find boxes of BIG_FACE px and up (pixels of
# the photo as MTCNN searches it, the photo itself up to 2000 px long: faces with their eyes
# ~45 px apart and more), instead of 0.7, in the first upright search only: few cells to
# read there, and RNet and ONet keep their bars. Big faces behind mirrored sunglasses score
# under 0.7 there; lowering RNet's bar instead added false boxes, and applying this in the
# turned searches read a face twice (docs/experiments/false-masks.md, "Session 22").
BIG_FACE = 100.0
BIG_PNET = 0.5


class MtcnnFaceDetector:
    """:class:`Mtcnn`, its boxes and eyes turned into turned face boxes.

    ``min_face`` is the smallest face searched for as MTCNN measures it (brows to chin,
    about 2.2x the distance between the eyes): 40 px finds faces whose eyes are ~20 px
    apart. Tiny images are upscaled so a face filling them is still >= ``min_face``; photos
    longer than ``max_side`` (files, not Telegram's <= 1280-px photos) are searched at that
    size, so the smallest face found grows with them (eyes ~40 px apart in a 4000x3000
    photo): a 12-megapixel photo searched in all its turns at full size cost several times
    as much (docs/experiments/core-notes.md).
    """

    def __init__(
        self,
        min_face: float = 40.0,
        # stricter than the reference (0.6, 0.7, 0.7): on the group-photo bench the same
        # faces are found with fewer candidates and fewer false boxes
        thresholds: tuple[float, float, float] = (0.7, 0.7, 0.8),
        min_side: int = 120,
        max_side: int = 2000,
        borderline: float | None = BORDERLINE,
        big: tuple[float, float] | None = (BIG_FACE, BIG_PNET),
    ) -> None:
        self.min_side = min_side
        self.max_side = max_side
        self._mtcnn = Mtcnn(
            min_face=min_face, thresholds=thresholds, borderline=borderline, big=big
        )
        # no face is searched for whose 68-point box is under this (pixels of the image
        # given): see :meth:`no_smaller_than`
        self.smallest = 0.0

    def no_smaller_than(self, side: float) -> MtcnnFaceDetector:
        """This detector, sharing its networks, that does not search for faces whose
        68-point box is under ``side`` pixels (``facemask apply --min-face``,
        :class:`core.detection.limits.Limited`): the finer levels of the pyramid, where
        most of the search's time goes, are left out (:meth:`Mtcnn.__call__`). A face near
        ``side`` may be reported a little under or over it, as without the floor."""
        floored = copy.copy(self)
        floored.smallest = float(side)
        return floored

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return self.detect_borderline(image_rgb, big=False)[0]

    def detect_borderline(
        self, image_rgb: np.ndarray, big: bool = True
    ) -> tuple[list[Detection], list[Detection]]:
        """The faces and, from the same search, the borderline ones: ONet's score above
        ``borderline`` but not above its own bar, marked ``unsure`` (blurred faces in a
        group photo are often among them; so are textures). This is the product's first,
        upright search (``core.detection.turns.detect_with_turns``), and with ``big`` it
        looks for big faces more willingly (``BIG_FACE``); :meth:`detect`, which the turned
        searches and the search of a noisy photo's quieter copy call, does not."""
        rgb = image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
        h, w = rgb.shape[:2]
        scale = max(1.0, self.min_side / min(h, w))
        scale = min(scale, self.max_side / max(h, w))
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            if scale < 1:
                rgb = shrunk(rgb, size)
            else:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        # a tilted head: the crop turns with the eyes (better points on tilted faces, upright
        # ones unchanged), the offsets along the face
        sure, unsure = [], []
        bar = self._mtcnn.thresholds[2]
        for face in self._mtcnn(rgb, self.smallest * scale * MTCNN_SIDE_RATIO, big):
            box = MTCNN_BOXES.face_box(*(face.box / scale), eyes=face.points)
            if face.score > bar:
                sure.append(Detection(box, face.score))
            else:
                unsure.append(Detection(box, face.score, unsure=True))
        return largest_first(sure), largest_first(unsure)
