"""OpenCV's frontal-face Haar cascade (inside opencv-python-headless 4.x), its boxes as face boxes.

Upright faces only and no eyes: its boxes become upright face boxes. The keypoint model is
trained on crops scattered like these boxes (``training.augment``), widened.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from core.detection.base import BoxConvention, Detection, largest_first
from core.detection.boxes import FaceBox

# Its boxes against the 68-point box, measured on training crops
# (docs/experiments/core-notes.md, "Box conventions").
HAAR_SIDE_RATIO = 1.14
HAAR_DY = -0.18
HAAR_BOXES = BoxConvention(HAAR_SIDE_RATIO, 0.0, HAAR_DY)


def haar_face_box(x0: float, y0: float, x1: float, y1: float) -> FaceBox:
    """The face box of an upright Haar cascade box (x0, y0, x1, y1)."""
    return HAAR_BOXES.face_box(x0, y0, x1, y1)


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV Haar cascade {path} could not be loaded")
    return cascade


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade.

    Detection runs on a copy downscaled to at most ``max_side`` pixels (a big photo costs a
    sixth of the time, docs/experiments/core-notes.md); ``min_face`` is in original pixels.
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
            # nothing found: look again, less strictly (fewer missed faces, no more false
            # ones: docs/experiments/core-notes.md); callers check the points' shape
            boxes, weights = self._scan(gray, self.fallback_min_neighbors, min_size)
        found = [
            Detection(
                haar_face_box(x / scale, y / scale, (x + bw) / scale, (y + bh) / scale),
                score=float(wt),
            )
            for (x, y, bw, bh), wt in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights))
        ]
        return largest_first(found)

    def _scan(self, gray: np.ndarray, min_neighbors: int, min_size: int):
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=min_neighbors,
            minSize=(min_size, min_size),
            outputRejectLevels=True,
        )
        return boxes, weights
