"""The one preprocessing function pair, shared by training and serving.

    face box  --crop_matrix-->  model input (S x S crop)  --model-->  unit crop coords
    unit crop coords  --points_from_unit-->  image pixels

A face box is a square (centre, side, angle) in image pixels. Three places make one:

* :func:`box_from_detection` - from a face detector's box (serving, crop on);
* :func:`box_from_points` - from 68 points (training targets; the refinement pass);
* :func:`whole_image_box` - the whole image is the face (the seed's crop=False mode).

Pixel convention: a pixel's centre has integer coordinates (OpenCV's), so the crop's
top-left corner is at -0.5 and unit coordinate u maps to pixel ``u * S - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The crop is this many times the side of the 68-point bounding box. The data set's
# images are ~2.6x; the detector's boxes ~1.14x (measured on the training crops).
CROP_SCALE = 1.6
# OpenCV's Haar boxes against the keypoint box (side s), measured on 579 training
# crops: centre dx 0.00 s (sd 0.10), dy -0.18 s (sd 0.04); side 1.14 s (sd 0.11).
DETECTOR_SIDE_RATIO = 1.14
DETECTOR_DY = -0.18
# A box narrower than this (a detector's degenerate one) is cropped as this wide, not
# divided by zero.
MIN_SIDE = 1.0

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255

# Left/right mirror permutation of the iBUG 68-point scheme (0-based).
FLIP_PERMUTATION = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46]  # eyes
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48]  # outer lips
    + [59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60]  # inner lips
    + [67, 66, 65]
)


@dataclass(frozen=True)
class FaceBox:
    cx: float
    cy: float
    side: float
    angle: float = 0.0  # degrees, counter-clockwise, as cv2.getRotationMatrix2D

    def as_xyxy(self) -> tuple[float, float, float, float]:
        h = self.side / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)


def keypoint_box(points: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and side (the longer one) of the points' bounding box."""
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float((hi - lo).max())


def box_from_points(points: np.ndarray, scale: float = CROP_SCALE, angle: float = 0.0) -> FaceBox:
    """The crop around 68 points; with ``angle``, their box in the face's own frame."""
    if angle == 0.0:
        cx, cy, s = keypoint_box(points)
        return FaceBox(cx, cy, s * scale)
    right, down = face_axes(angle)
    local = np.stack([points @ right, points @ down], axis=1)
    lo, hi = local.min(0), local.max(0)
    u, v = (lo + hi) / 2
    cx, cy = u * right + v * down
    return FaceBox(float(cx), float(cy), float((hi - lo).max()) * scale, float(angle))


def eye_angle(points: np.ndarray) -> float:
    """The FaceBox angle that levels the eyes of 68 points (right eye 36-41, left 42-47)."""
    dx, dy = points[42:48].mean(axis=0) - points[36:42].mean(axis=0)
    return float(np.degrees(np.arctan2(dy, dx)))


def face_axes(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The face's right and down directions in the image when it is turned by ``angle``.

    ``angle`` is a :class:`FaceBox` angle: the line from the face's right eye to its left
    eye (image left to right on an upright face) points at ``angle`` degrees, y down.
    """
    a = np.radians(angle)
    return np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])


def box_from_detection(box: tuple[float, float, float, float], angle: float = 0.0) -> FaceBox:
    """The model's crop for a detector box (see ``core.detect`` for the convention).

    ``angle`` turns the crop with the face (detectors that see the eyes report it); the
    box's offset from the face then runs along the face's own down direction.
    """
    x0, y0, x1, y1 = box
    s = ((x1 - x0) + (y1 - y0)) / 2 / DETECTOR_SIDE_RATIO
    _, down = face_axes(angle)
    cx, cy = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - DETECTOR_DY * s * down
    return FaceBox(float(cx), float(cy), s * CROP_SCALE, float(angle))


def whole_image_box(height: int, width: int) -> FaceBox:
    return FaceBox((width - 1) / 2, (height - 1) / 2, float(max(height, width)))


def crop_matrix(box: FaceBox, size: int, flip: bool = False) -> np.ndarray:
    """2x3 affine matrix from image pixels to crop pixels of an S x S crop."""
    scale = size / max(box.side, MIN_SIDE)
    m = cv2.getRotationMatrix2D((box.cx, box.cy), box.angle, scale)
    m[:, 2] += (size - 1) / 2 - np.array([box.cx, box.cy])
    if flip:
        m = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
    return m


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_matrix(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def points_to_unit(crop_points: np.ndarray, size: int) -> np.ndarray:
    return (crop_points + 0.5) / size


def unit_to_points(unit: np.ndarray, size: int) -> np.ndarray:
    return unit * size - 0.5


def crop_image(image_rgb: np.ndarray, box: FaceBox, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the box out of the image as an S x S uint8 crop; also returns the matrix.

    Large downscales go through an area-filtered pyramid first, so a face of 800 px
    looks like it did in training (small crops, no aliasing).
    """
    matrix = crop_matrix(box, size)
    scale = float(np.hypot(*matrix[0, :2]))  # crop pixels per image pixel
    src = image_rgb
    factor = 1.0
    while scale / factor < 0.5 and min(src.shape[:2]) >= 4:
        src = cv2.pyrDown(src)
        factor *= 0.5
    m = matrix.copy()
    if factor != 1.0:
        # map pyramid pixels back to the original ones before the crop matrix
        up = np.array(
            [[1 / factor, 0, (1 / factor - 1) / 2], [0, 1 / factor, (1 / factor - 1) / 2]]
        )
        m = matrix @ np.vstack([up, [0, 0, 1]])
    crop = cv2.warpAffine(
        src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return crop, matrix


_SCALE = (1.0 / IMAGENET_STD).astype(np.float32)
_SHIFT = (-IMAGENET_MEAN / IMAGENET_STD).astype(np.float32)


def normalize(crops_uint8: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32, ImageNet mean/std.

    A channel at a time into the output planes: 0.07 ms for one 192 px crop, against
    0.36 for subtracting and dividing the whole array, then transposing it.
    """
    n, h, w, _ = crops_uint8.shape
    out = np.empty((n, 3, h, w), np.float32)
    for k in range(3):
        np.multiply(crops_uint8[..., k], _SCALE[k], out=out[:, k], casting="unsafe")
        out[:, k] += _SHIFT[k]
    return out


def points_from_unit(unit: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Model output (68, 2) in unit crop coordinates -> image pixels."""
    return apply_matrix(invert_matrix(matrix), unit_to_points(unit, size))
