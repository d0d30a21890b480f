"""MTCNN with CenterFace behind it: two detectors made one, as the product runs them."""

from __future__ import annotations

import copy
from typing import Self

import numpy as np

from core.detection.base import Detection, FaceDetector, largest_first, same_face
from core.detection.centerface import CenterFaceDetector
from core.detection.mtcnn import MtcnnFaceDetector


class _MtcnnWithCenterFace:
    """MTCNN (``first``) and CenterFace (``second``): what the two combinations below share."""

    def __init__(self) -> None:
        self.first = MtcnnFaceDetector()
        # 0.35, not CenterFace's usual 0.5: it looks only where MTCNN was not sure, and
        # there it finds more masked faces with no more false boxes on the background
        # (docs/experiments/detection-and-speed.md, "CenterFace behind MTCNN")
        self.second: CenterFaceDetector | None = CenterFaceDetector(threshold=0.35)

    def no_smaller_than(self, side: float) -> Self:
        """These detectors, MTCNN's search not looking for faces under ``side`` pixels
        (:meth:`MtcnnFaceDetector.no_smaller_than`; CenterFace reads the photo once)."""
        floored = copy.copy(self)
        floored.first = self.first.no_smaller_than(side)
        return floored


class MtcnnThenCenterFace(_MtcnnWithCenterFace):
    """MTCNN, and CenterFace as its ``fallback`` for photos where no face is sure upright
    (:func:`core.detection.turns.detect_with_turns`, ``with_fallback``): CenterFace finds
    most of the masked and dark faces MTCNN misses, but its scores cannot tell upright from
    upside down, so it looks once, upright, and the keypoint model's doubt sets turned faces
    right. :meth:`detect` alone is MTCNN's (what the turned search calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.fallback: FaceDetector | None = self.second

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return self.first.detect(image_rgb)

    def detect_borderline(self, image_rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        return self.first.detect_borderline(image_rgb)


class MtcnnAndCenterFace(_MtcnnWithCenterFace):
    """MTCNN's faces and CenterFace's where MTCNN has none (both run on every photo and
    every turn, several times the photo time; kept for comparison)."""

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        found = self.first.detect(image_rgb)
        if self.second is None:
            return found
        more = [d for d in self.second.detect(image_rgb) if not any(same_face(d, f) for f in found)]
        return largest_first(found + more)
