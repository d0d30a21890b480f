"""Any detector, with a floor on its scores and on the size of the faces it reports.

For people masking whole folders (``facemask apply --threshold 0.95 --min-face 40``): a toy,
a poster or a face in the far background is left alone when it scores under ``min_score``
or its face box (the square around its 68 points) is under ``min_side`` pixels.

The limits hold wherever the product's search looks (``core.detection.turns``): the
detector's ``fallback`` (CenterFace behind MTCNN) is limited the same way, and a copy of the
photo searched smaller (the quick look of a photo without a face, a big photo's turned
search) is searched with the floor shrunk with it (:meth:`Limited.scaled`). A detector that
can skip the search for faces under the floor (MTCNN: the finer levels of its pyramid, where
most of its time goes, ``no_smaller_than``) is told to (docs/experiments/detection-and-speed.md,
"A size floor the search keeps to").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core.detection.base import Detection, FaceDetector
from core.detection.boxes import CROP_SCALE


@dataclass(frozen=True)
class Limited:
    detector: FaceDetector
    min_score: float | None = None  # in the detector's own scale (MTCNN: a probability)
    min_side: float = 0.0  # pixels
    # the detector as it searches: ``detector`` told not to look under ``min_side`` where it can
    searching: FaceDetector = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        floor = getattr(self.detector, "no_smaller_than", None)
        floored = floor is not None and self.min_side > 0
        object.__setattr__(self, "searching", floor(self.min_side) if floored else self.detector)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return self._kept(self.searching.detect(image_rgb))

    def detect_borderline(self, image_rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """The detector's sure and borderline faces (``core.detection.mtcnn``), both under
        the same floors (a ``min_score`` above MTCNN's bar leaves no borderline face)."""
        inner = getattr(self.searching, "detect_borderline", None)
        sure, unsure = inner(image_rgb) if inner else (self.searching.detect(image_rgb), [])
        return self._kept(sure), self._kept(unsure)

    @property
    def fallback(self) -> Limited | None:
        """The detector's fallback (``core.detection.turns.with_fallback``) under the same
        limits; None where it has none."""
        inner = getattr(self.detector, "fallback", None)
        return None if inner is None else replace(self, detector=inner)

    def scaled(self, factor: float) -> Limited:
        """The same limits for a copy of the photo resized by ``factor``."""
        return replace(self, min_side=self.min_side * factor)

    def _kept(self, found: list[Detection]) -> list[Detection]:
        if self.min_score is not None:
            found = [d for d in found if d.score >= self.min_score]
        return [d for d in found if d.box.side / CROP_SCALE >= self.min_side]
