"""What every face detector is: the protocol, its result, and how its boxes become face boxes.

A detector finds faces in an RGB image and reports each as a :class:`Detection` whose box
is already the keypoint model's crop (:class:`core.detection.boxes.FaceBox`). Each
detector's boxes sit on a face in their own way; its :class:`BoxConvention` says how, and
converts them once, where they enter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from core.detection.boxes import FaceBox, box_around, centre_in_either, face_axes


@dataclass(frozen=True)
class Detection:
    box: FaceBox  # the keypoint model's crop, turned with the face (box.angle)
    score: float  # the detector's own: MTCNN a probability, the Haar cascade a weight
    # below the detector's own bar (MTCNN's borderline faces, ``detect_borderline``): a
    # mask goes on only where the face verifier is sure of it (FaceGate.min_face_unsure)
    unsure: bool = False


@runtime_checkable
class FaceDetector(Protocol):
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """All faces in an RGB uint8 image, largest first."""
        ...


@dataclass(frozen=True)
class BoxConvention:
    """How a detector's boxes sit on the 68-point box of side s: their side is
    ``side_ratio`` s, their centre ``dx`` s right and ``dy`` s down of its centre, along
    the face's own axes. Each detector measures its own (docs/experiments/core-notes.md)."""

    side_ratio: float
    dx: float = 0.0
    dy: float = 0.0

    def face_box(
        self, x0: float, y0: float, x1: float, y1: float, eyes: np.ndarray | None = None
    ) -> FaceBox:
        """The face box of a detector box (x0, y0, x1, y1); with ``eyes`` (the image-left
        and image-right eye), the crop turns with them and the offsets run along the face."""
        angle = 0.0
        if eyes is not None:
            (lx, ly), (rx, ry) = eyes[0], eyes[1]
            angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
        right, down = face_axes(angle)
        s = ((x1 - x0) + (y1 - y0)) / 2 / self.side_ratio  # the 68-point box's side
        cx, cy = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - s * (self.dx * right + self.dy * down)
        return box_around(cx, cy, s, angle)


def largest_first(found: list[Detection]) -> list[Detection]:
    """The detections by size, largest first (ties keep their order)."""
    return sorted(found, key=lambda d: d.box.side, reverse=True)


def same_face(a: Detection, b: Detection) -> bool:
    """Either face's centre lies in the other's square (one face seen two ways)."""
    return centre_in_either(a.box.face_xyxy(), b.box.face_xyxy())


def shrunk(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` shrunk to ``size`` (width, height) for a search. OpenCV's area filter at a
    ratio that is not a whole number costs 55-90 ms on a 2-3 megapixel photo (a 2048-px
    photo searched at 2000: a sixth of its whole time); down to half the size, bilinear
    gives the same picture within a fifth of a grey level for a fifth of the time
    (docs/experiments/detection-and-speed.md, "Photos against MaskTheFace"). Smaller than
    half, where bilinear would alias, the area filter stays."""
    w, h = size
    half = w * 2 >= image.shape[1] and h * 2 >= image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR if half else cv2.INTER_AREA)
