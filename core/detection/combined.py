"""MTCNN with CenterFace behind it: two detectors made one, as the product runs them."""

from __future__ import annotations

import copy
from typing import Self

import cv2
import numpy as np

from core.detection.base import Detection, FaceDetector, largest_first, same_face
from core.detection.boxes import FaceBox
from core.detection.centerface import CenterFaceDetector
from core.detection.mtcnn import BORDERLINE, MtcnnFaceDetector
from core.detection.turns import SURE_SCORE

# ONet's faint faces: scored above FAINT but not above BORDERLINE. Blurred faces in group
# photos that MTCNN misses land here, among many textures; one is kept (as a borderline
# face, for the face verifier to confirm) where CenterFace, reading a crop CONFIRM_CROP times
# its box wide at CONFIRM_SIDE px, sees a face there too: two detectors that look at a face
# differently rarely agree on a texture. The crop and its size were chosen on the detector
# bench (docs/experiments/false-masks.md, "Session 20").
FAINT = 0.1
# CenterFace's bar where it looks behind MTCNN, and how far below it its faces still come,
# marked unsure (Detection.unsure): the gate keeps those only where the face verifier is
# sure of them (FaceGate.min_face_unsure). Masked faces CenterFace scores just under its bar
# are found that way; the lower bar alone, with no such check, put masks on face-free
# photos (docs/experiments/false-masks.md, "Session 22").
BAR = 0.35
UNSURE_BAR = 0.25
# ... and only where CenterFace's eyes lie this far apart (px of the photo it is given, eye
# centres; ~14 px between the outer eye corners): a face big enough for the verifier to
# judge. The false faces this band found were smaller, the masked ones larger (the same
# section).
UNSURE_EYES = 10.0
CONFIRM_CROP = 3.0
CONFIRM_SIDE = 160


class _MtcnnWithCenterFace:
    """MTCNN (``first``) and CenterFace (``second``): what the two combinations below share."""

    def __init__(self, borderline: float = BORDERLINE) -> None:
        self.first = MtcnnFaceDetector(borderline=borderline)
        # 0.35, not CenterFace's usual 0.5: it looks only where MTCNN was not sure, and
        # there it finds more masked faces with no more false boxes on the background
        # (docs/experiments/detection-and-speed.md, "CenterFace behind MTCNN"); down to
        # UNSURE_BAR its faces come marked unsure, for the face verifier to confirm
        self.second: CenterFaceDetector | None = CenterFaceDetector(
            threshold=UNSURE_BAR, sure=BAR, unsure_eyes=UNSURE_EYES
        )

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
        super().__init__(borderline=FAINT)  # the faint ones too, for CenterFace to see again
        self.fallback: FaceDetector | None = self.second

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return self.first.detect(image_rgb)

    def detect_borderline(self, image_rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """MTCNN's sure and borderline faces, and its faint ones (``FAINT``) that CenterFace
        also sees (:meth:`seen_again`), where a face is sure: the search takes borderline
        faces only then (``core.detection.turns.detect_with_turns``)."""
        sure, unsure = self.first.detect_borderline(image_rgb)
        plain = [d for d in unsure if d.score > BORDERLINE]
        if self.second is None or not any(d.score >= SURE_SCORE for d in sure):
            return sure, plain
        # a faint reading of a sure face would be dropped by the search: no crop read for it
        faint = [
            d for d in unsure if d.score <= BORDERLINE and not any(same_face(d, f) for f in sure)
        ]
        return sure, plain + [d for d in faint if self.seen_again(image_rgb, d)]

    def seen_again(self, image_rgb: np.ndarray, face: Detection) -> bool:
        """Whether CenterFace finds the same face (:func:`core.detection.base.same_face`) in
        a crop around it, ``CONFIRM_CROP`` times its box, read at ``CONFIRM_SIDE`` px."""
        box, (h, w) = face.box, image_rgb.shape[:2]
        half = CONFIRM_CROP * box.side / 2
        x0, y0 = int(max(0, box.cx - half)), int(max(0, box.cy - half))
        x1, y1 = int(min(w, box.cx + half)), int(min(h, box.cy + half))
        if min(x1 - x0, y1 - y0) < 8:
            return False
        crop = image_rgb[y0:y1, x0:x1]
        z = CONFIRM_SIDE / max(crop.shape[:2])
        size = (max(1, round(crop.shape[1] * z)), max(1, round(crop.shape[0] * z)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if z < 1 else cv2.INTER_LINEAR)
        for seen in self.second.detect(crop):
            if seen.unsure:
                continue
            b = seen.box
            back = FaceBox(b.cx / z + x0, b.cy / z + y0, b.side / z, b.angle)
            if same_face(Detection(back, seen.score), face):
                return True
        return False


class MtcnnAndCenterFace(_MtcnnWithCenterFace):
    """MTCNN's faces and CenterFace's where MTCNN has none, its faint ones marked unsure
    (both run on every photo and every turn, several times the photo time; kept for
    comparison)."""

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        found = self.first.detect(image_rgb)
        if self.second is None:
            return found
        more = [d for d in self.second.detect(image_rgb) if not any(same_face(d, f) for f in found)]
        return largest_first(found + more)
