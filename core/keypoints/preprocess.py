"""The one preprocessing function pair, shared by training and serving.

    face box  --crop_matrix-->  model input (S x S crop)  --model-->  unit crop coords
    unit crop coords  --points_from_unit-->  image pixels

A face box (:class:`core.detection.boxes.FaceBox`) is a square (centre, side, angle) in
image pixels: the model's crop, around a face's 68-point box. Three places make one:

* a face detector (:mod:`core.detection`): each turns its own boxes into face boxes with
  its :class:`core.detection.base.BoxConvention`, from where it measured its boxes to sit
  on the 68-point box;
* :func:`box_from_points` - from 68 points (training targets; the second look);
* :func:`core.detection.boxes.whole_image_box` - the whole image is the face
  (``Mode.WHOLE``).

Pixel convention: a pixel's centre has integer coordinates (OpenCV's), so the crop's
top-left corner is at -0.5 and unit coordinate u maps to pixel ``u * S - 0.5``.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.detection.boxes import CROP_SCALE, FaceBox, face_axes, keypoint_box
from core.keypoints import face68

# Face detectors centre their boxes this many sides of the 68-point box above that box's
# centre, along the face's own down direction (OpenCV's Haar cascade -0.18, MTCNN -0.179,
# measured on training crops, see core.detection). That point is what a detector saw, whatever
# way up the face turns out to be: :func:`reorient` turns a face box about it.
DETECTOR_CENTRE_DY = -0.18
# A box narrower than this (a detector's degenerate one) is cropped as this wide, not
# divided by zero.
MIN_SIDE = 1.0

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


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
    """The FaceBox angle that levels the eyes of 68 points."""
    dx, dy = points[face68.LEFT_EYE].mean(axis=0) - points[face68.RIGHT_EYE].mean(axis=0)
    return float(np.degrees(np.arctan2(dy, dx)))


def reorient(box: FaceBox, angle: float) -> FaceBox:
    """The face box a detection makes if its face is turned by ``angle`` instead.

    A detector sees a face and centres its box on it; which way is the face's down it may
    get wrong (a face on its side or upside down, see core.keypoints.landmarks.UNSURE_SPREAD). The
    point it saw stays put (``DETECTOR_CENTRE_DY`` along the old down), and the 68-point
    box's centre lies the same distance from it along the new down.
    """
    lift = DETECTOR_CENTRE_DY * box.side / CROP_SCALE
    _, down = face_axes(box.angle)
    _, new_down = face_axes(angle)
    cx, cy = np.array([box.cx, box.cy]) + lift * down - lift * new_down
    return FaceBox(float(cx), float(cy), box.side, float(angle))


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


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) rotation + uniform scale + shift taking ``src`` closest to ``dst`` (no mirror)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    a = (s * d).sum()
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()
    norm = max(float((s**2).sum()), 1e-9)
    c, sn = a / norm, b / norm
    rot = np.array([[c, -sn], [sn, c]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def invert_matrix(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def points_to_unit(crop_points: np.ndarray, size: int) -> np.ndarray:
    return (crop_points + 0.5) / size


def unit_to_points(unit: np.ndarray, size: int) -> np.ndarray:
    return unit * size - 0.5


def crop_image(image_rgb: np.ndarray, box: FaceBox, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the box out of the image as an S x S uint8 crop; also returns the matrix.

    Large downscales go through an area-filtered pyramid first, so a face of 800 px
    looks like it did in training (small crops, no aliasing). Only the part of the image
    the crop reads is halved (with a margin, aligned to the pyramid's grid: the same pixels
    as halving the whole photo, at a fraction of the cost on a large photo).
    """
    matrix = crop_matrix(box, size)
    scale = float(np.hypot(*matrix[0, :2]))  # crop pixels per image pixel
    height, width = image_rgb.shape[:2]
    levels, side = 0, min(height, width)
    while scale * 2**levels < 0.5 and side >= 4:
        levels, side = levels + 1, (side + 1) // 2
    step = 2**levels
    x0, y0, x1, y1 = (
        _read_region(matrix, size, step, width, height) if levels else (0, 0, width, height)
    )
    src = image_rgb[y0:y1, x0:x1]
    for _ in range(levels):
        src = cv2.pyrDown(src)
    # pyramid pixels -> the region's pixels -> the image's, then the crop matrix
    up = np.array([[step, 0, (step - 1) / 2 + x0], [0, step, (step - 1) / 2 + y0], [0, 0, 1]])
    crop = cv2.warpAffine(
        src, matrix @ up, (size, size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
    return crop, matrix


def _read_region(
    matrix: np.ndarray, size: int, step: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The image region (x0, y0, x1, y1) a crop through ``matrix`` reads, with a margin of
    the pyramid filter's reach at every level; its corner on the grid of the pyramid
    (multiples of ``step``) so its halvings sample the image's own pyramid pixels."""
    back = cv2.invertAffineTransform(matrix.astype(np.float64))
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    xs, ys = back @ corners.T
    margin = 4 * step + 2
    x0 = max(0, int(np.floor((xs.min() - margin) / step)) * step)
    y0 = max(0, int(np.floor((ys.min() - margin) / step)) * step)
    x1 = min(width, int(np.ceil(xs.max() + margin)))
    y1 = min(height, int(np.ceil(ys.max() + margin)))
    if x1 - x0 < step or y1 - y0 < step:  # the crop lies off the image: read all of it
        return 0, 0, width, height
    return x0, y0, x1, y1


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
