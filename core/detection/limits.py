"""Any detector, with a floor on its scores and on the size of the faces it reports.

For people masking whole folders (``facemask apply --threshold 0.95 --min-face 40``): a toy,
a poster or a face in the far background is left alone when it scores under ``min_score``
or its face box (the square around its 68 points) is under ``min_side`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.detection.base import Detection, FaceDetector
from core.detection.boxes import CROP_SCALE


@dataclass(frozen=True)
class Limited:
    detector: FaceDetector
    min_score: float | None = None  # in the detector's own scale (MTCNN: a probability)
    min_side: float = 0.0  # pixels

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return self._kept(self.detector.detect(image_rgb))

    def detect_borderline(self, image_rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """The detector's sure and borderline faces (``core.detection.mtcnn``), both under
        the same floors (a ``min_score`` above MTCNN's bar leaves no borderline face)."""
        inner = getattr(self.detector, "detect_borderline", None)
        sure, unsure = inner(image_rgb) if inner else (self.detector.detect(image_rgb), [])
        return self._kept(sure), self._kept(unsure)

    def _kept(self, found: list[Detection]) -> list[Detection]:
        if self.min_score is not None:
            found = [d for d in found if d.score >= self.min_score]
        return [d for d in found if d.box.side / CROP_SCALE >= self.min_side]
