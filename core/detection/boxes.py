"""Face boxes: the square a detection hands to the keypoint model, and pure geometry on it.

A face box is a square (centre, side, angle) in image pixels: the keypoint model's crop
around a face's 68-point box. Detectors make them (each with its own
:class:`core.detection.base.BoxConvention`); the keypoint stage cuts its crops from them
(:mod:`core.keypoints.preprocess`), and so does training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The crop is this many times the side of the 68-point bounding box: room for the jaw of a
# turned head and for a detector's scatter. The data set's images are ~2.6x.
CROP_SCALE = 1.6


@dataclass(frozen=True)
class FaceBox:
    cx: float
    cy: float
    side: float
    angle: float = 0.0  # degrees, counter-clockwise, as cv2.getRotationMatrix2D

    def as_xyxy(self) -> tuple[float, float, float, float]:
        """The crop's corners, upright (x0, y0, x1, y1)."""
        h = self.side / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)

    def face_xyxy(self) -> tuple[float, float, float, float]:
        """The face's own square, the 68-point box the crop was made around, upright."""
        h = self.side / CROP_SCALE / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)


def box_overlap(a: tuple[float, ...], b: tuple[float, ...], over_smaller: bool = False) -> float:
    """How much two (x0, y0, x1, y1) boxes overlap: their intersection over their union
    (IoU), or with ``over_smaller`` over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    denom = min(area_a, area_b) if over_smaller else area_a + area_b - inter
    return inter / denom if denom > 0 else 0.0


def centre_in_either(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Either (x0, y0, x1, y1) box's centre lies in the other: one face seen two ways."""

    def centre_in(p: tuple[float, ...], q: tuple[float, ...]) -> bool:
        cx, cy = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
        return bool(q[0] <= cx <= q[2] and q[1] <= cy <= q[3])

    return centre_in(a, b) or centre_in(b, a)


def keypoint_box(points: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and side (the longer one) of the points' bounding box."""
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float((hi - lo).max())


def box_around(cx: float, cy: float, side: float, angle: float = 0.0) -> FaceBox:
    """The model's crop for a face whose 68-point box has this centre and (longer) side."""
    return FaceBox(float(cx), float(cy), float(side) * CROP_SCALE, float(angle))


def face_axes(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The face's right and down directions in the image when it is turned by ``angle``.

    ``angle`` is a :class:`FaceBox` angle: the line from the face's right eye to its left
    eye (image left to right on an upright face) points at ``angle`` degrees, y down.
    """
    a = np.radians(angle)
    return np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])


def whole_image_box(height: int, width: int) -> FaceBox:
    return FaceBox((width - 1) / 2, (height - 1) / 2, float(max(height, width)))
