"""Face detection behind a small protocol, so another detector can be plugged in.

Two detectors, neither downloads anything at run time:

* :class:`MtcnnFaceDetector` (the default): MTCNN's three small CNNs, weights from the
  PyPI package facenet-pytorch (see :mod:`core.mtcnn`). Finds small faces in group
  photos that the cascade misses, in less than half its time.
* :class:`HaarFaceDetector`: OpenCV's Haar cascade (inside opencv-python-headless 4.x).

Every detector hands over boxes in one convention, the Haar cascade's, because the
keypoint model is trained on crops jittered the way those boxes scatter around a face:
a square ``DETECTOR_SIDE_RATIO`` times the side of the 68-point box, its centre
``DETECTOR_DY`` sides above that box's centre. :func:`core.preprocess.box_from_detection`
turns such a box into the model's crop.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from core.preprocess import DETECTOR_DY, DETECTOR_SIDE_RATIO

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class Detection:
    box: Box  # in the Haar convention above
    score: float


@runtime_checkable
class FaceDetector(Protocol):
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """All faces in an RGB uint8 image, largest first."""
        ...


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV Haar cascade {path} could not be loaded")
    return cascade


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade.

    Detection runs on a copy downscaled to at most ``max_side`` pixels (a 1280x960
    photo costs ~10 ms instead of ~60 ms); ``min_face`` is in original pixels.
    """

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face: int = 20,
        max_side: int = 640,
        min_side: int = 240,
        fallback_min_neighbors: int | None = 3,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face = min_face
        self.max_side = max_side
        self.min_side = min_side
        self.fallback_min_neighbors = fallback_min_neighbors
        self._cascade = _cascade(cascade)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        gray = image_rgb if image_rgb.ndim == 2 else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        # big photos are searched at <= max_side (fast); small ones upscaled to >= min_side,
        # since the cascade's 24-px window misses faces that fill a 100-px crop
        scale = min(1.0, self.max_side / max(h, w))
        if min(h, w) < self.min_side:
            scale = self.min_side / min(h, w)
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            gray = cv2.resize(gray, size, interpolation=interp)
        min_size = max(20, round(self.min_face * scale))
        boxes, weights = self._scan(gray, self.min_neighbors, min_size)
        if len(boxes) == 0 and self.fallback_min_neighbors:
            # nothing found: look again, less strictly (validation people: 4 of 426 faces
            # missed -> 1, false positives unchanged); callers check the points' shape
            boxes, weights = self._scan(gray, self.fallback_min_neighbors, min_size)
        found = [
            Detection(
                box=(x / scale, y / scale, (x + bw) / scale, (y + bh) / scale),
                score=float(wt),
            )
            for (x, y, bw, bh), wt in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights))
        ]
        found.sort(key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), reverse=True)
        return found

    def _scan(self, gray: np.ndarray, min_neighbors: int, min_size: int):
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=min_neighbors,
            minSize=(min_size, min_size),
            outputRejectLevels=True,
        )
        return boxes, weights


# MTCNN's boxes against the 68-point box (side s), measured on 600 training crops (none
# missed): side 1.051 s (sd 0.063), centre dx -0.029 s (sd 0.037), dy -0.179 s (sd 0.036).
# Tighter than the cascade's (sd 0.11, 0.10, 0.04), so its crops sit inside the scatter
# the model was trained on.
MTCNN_SIDE_RATIO = 1.051
MTCNN_DX = -0.029
MTCNN_DY = -0.179


class MtcnnFaceDetector:
    """MTCNN (:mod:`core.mtcnn`), its boxes mapped onto the Haar convention.

    ``min_face`` is the smallest face searched for as MTCNN measures it (brows to chin,
    about 2.2x the distance between the eyes): 40 px finds faces whose eyes are ~20 px
    apart. Tiny images are upscaled so a face filling them is still >= ``min_face``.
    """

    def __init__(
        self,
        min_face: float = 40.0,
        # stricter than the reference (0.6, 0.7, 0.7): on the group-photo bench the same
        # faces >= 20 px are found with 30% fewer candidates and fewer false boxes
        thresholds: tuple[float, float, float] = (0.7, 0.7, 0.8),
        min_side: int = 120,
    ) -> None:
        from core.mtcnn import Mtcnn  # torch is only needed by this detector

        self.min_side = min_side
        self._mtcnn = Mtcnn(min_face=min_face, thresholds=thresholds)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        rgb = image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
        h, w = rgb.shape[:2]
        scale = max(1.0, self.min_side / min(h, w))
        if scale != 1.0:
            size = (round(w * scale), round(h * scale))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        found = []
        for face in self._mtcnn(rgb):
            x0, y0, x1, y1 = face.box / scale
            s = ((x1 - x0) + (y1 - y0)) / 2 / MTCNN_SIDE_RATIO  # the 68-point box's side
            cx = (x0 + x1) / 2 - MTCNN_DX * s
            cy = (y0 + y1) / 2 - MTCNN_DY * s + DETECTOR_DY * s
            half = DETECTOR_SIDE_RATIO * s / 2
            found.append(Detection((cx - half, cy - half, cx + half, cy + half), face.score))
        found.sort(key=lambda d: d.box[2] - d.box[0], reverse=True)
        return found


DETECTORS = {"mtcnn": MtcnnFaceDetector, "haar": HaarFaceDetector}


def default_detector(name: str | None = None) -> FaceDetector:
    """The detector called ``name``, else ``$FACEMASK_DETECTOR``, else "auto".

    "auto" is MTCNN, or OpenCV's Haar cascade with a warning where MTCNN's weights are not
    installed: a bot without them still masks faces (fewer small ones) instead of failing
    every photo. Naming "mtcnn" makes missing weights an error.
    """
    chosen = name or os.environ.get("FACEMASK_DETECTOR") or "auto"
    if chosen == "auto":
        from core.mtcnn import MissingDetectorWeights

        try:
            return MtcnnFaceDetector()
        except MissingDetectorWeights as err:
            log.warning("%s; using OpenCV's Haar cascade instead (finds fewer small faces)", err)
            return HaarFaceDetector()
    if chosen not in DETECTORS:
        known = ", ".join(["auto", *DETECTORS])
        raise ValueError(f"unknown face detector {chosen!r}: choose one of {known}")
    return DETECTORS[chosen]()
