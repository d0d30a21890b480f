"""The product's search for faces: upright first, then, where no face is sure, the photo turned.

A phone photo whose orientation tag was lost lies on its side, and a detector then finds
its face sideways or not at all. :func:`detect_with_turns` searches upright, then (where
no face is sure) a quieter copy of a noisy photo, then the photo turned, and asks a
detector's ``fallback`` once where nothing was sure (:func:`with_fallback`). Face boxes
come back in the photo's own pixels, their angle including the turn. The thresholds below
were chosen on the validation people; their measurements are in
docs/experiments/core-notes.md ("The turned search").
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from core.detection.base import Detection, FaceDetector, largest_first, same_face, shrunk
from core.detection.boxes import FaceBox, box_overlap

log = logging.getLogger(__name__)


# A photo is searched turned when no face in it scores this high upright: upright faces
# score above it, while wrong turns and sideways finds score below it.
SURE_SCORE = 0.99
# The turns searched (degrees counter-clockwise), the whole circle in steps of 45: MTCNN
# copes with moderate tilts itself, and without the turns of 135 degrees faces in photos
# turned that far were missed. A turn can find a face upside down or on its side, sure of
# it: the keypoint model's own doubt sets that right (core.keypoints.landmarks.UNSURE_SPREAD).
TURNS = (90.0, 270.0, 180.0, 45.0, -45.0, 135.0, -135.0)
TURN_MAX_SIDE = 2000
# The product's search stops at the first turn whose best face scores this much: MTCNN
# can be as sure of a face on its side or upside down, but the keypoint model then sets it
# right (core.keypoints.landmarks.UNSURE_SPREAD). Stopping early saves most of the turned
# searches with the points unchanged; a lower bar (0.99) stopped on tilted views.
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
    costs more than the searches.
    """
    shrink = min(1.0, TURN_MAX_SIDE / max(image_rgb.shape[:2]))
    if shrink < 1.0:
        size = tuple(max(1, round(v * shrink)) for v in image_rgb.shape[1::-1])
        image_rgb = shrunk(image_rgb, size)
        detector = resized_for(detector, shrink)
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
            best.append(Detection(box, d.score, unsure=d.unsure))
        if _best_score(best) >= enough:
            break
    return best


def detect_with_turns(detector: FaceDetector, image_rgb: np.ndarray) -> list[Detection]:
    """The product's search: the faces upright where one is sure (the usual case, one pass);
    else, where a turn shows a surer face, that turn's faces plus the upright ones it did
    not find (a group photo of blurry faces keeps them even if a turn sees something). The
    turns are searched until one is sure enough (``EARLY_STOP``).

    For the Haar cascade (scores are neighbour counts, > 1) this turns only empty photos.
    A detector with a ``fallback`` (:class:`core.detection.combined.MtcnnThenCenterFace`)
    gets one more, upright look by that fallback wherever no face was sure upright
    (:func:`with_fallback`): faces the first detector misses or sees the wrong way up (worn
    masks, dark photos), without paying for a second detector on the ordinary photo, where
    a face is sure upright.
    A detector with ``detect_borderline`` (MTCNN) also gives, where a face is sure upright,
    its borderline faces that overlap no found one, marked ``unsure``: the gate keeps them
    only where the face verifier is sure (``FaceGate.min_face_unsure``).
    A photo with no face sure upright that is also noisy (``NOISY``: a night shot the
    phone brightened) is searched blurred a little, where the noise hides fewer faces.
    """
    borderline = getattr(detector, "detect_borderline", None)
    upright, unsure = borderline(image_rgb) if borderline else (detector.detect(image_rgb), [])
    if _best_score(upright) >= SURE_SCORE:
        # a photo with a sure face: its borderline faces too, for the gate to confirm
        more = [d for d in unsure if not any(same_face(d, f) for f in upright)]
        return largest_first(upright + more) if more else upright
    if noise_level(image_rgb) > NOISY:  # a night photo: search a quieter copy of it
        image_rgb = cv2.GaussianBlur(image_rgb, (0, 0), QUIETER_SIGMA)
        upright = detector.detect(image_rgb)
        if _best_score(upright) >= SURE_SCORE:
            return upright
    fallback: FaceDetector | None = getattr(detector, "fallback", None)
    if not upright:
        seen = quick_look(detector, fallback, image_rgb)
        if seen is None:
            return []  # a photo without a face: stopped early (see quick_look)
        if seen == FAINT and fallback is not None:
            # only the fallback's faint faces: those, for the gate to confirm, no turned search
            return with_fallback([], fallback.detect(image_rgb))
    found = _search_turned(detector, image_rgb, upright)
    if fallback is None:
        return found
    return with_fallback(found, fallback.detect(image_rgb))


# A photo where the upright search finds nothing at all first gets a quick look, on a copy at
# most this long: the fallback upright and the three quarter turns. Only where that finds
# anything is the whole turned search (full size, every turn) made; a photo without a face
# then costs a fifth of it (docs/experiments/video-speed.md, "Photos without a face").
QUICK_SIDE = 640
QUICK_TURNS = (90.0, 270.0, 180.0)


FACE, FAINT = "face", "faint"


def quick_look(
    detector: FaceDetector, fallback: FaceDetector | None, image_rgb: np.ndarray
) -> str | None:
    """What a quick look (``QUICK_SIDE``, ``QUICK_TURNS``, the fallback upright) finds in a
    photo whose upright search found none: ``FACE`` (a face: the whole turned search is
    made), ``FAINT`` (only faint faces of the fallback, ``Detection.unsure``: no reason to
    search every turn, but the fallback's own look at the photo is), or None. The faces a
    turned search exists for (a phone photo on its side, a masked face only the fallback
    sees) are big in their photo, and a photo of small faces has some of them found
    upright."""
    shrink = QUICK_SIDE / max(image_rgb.shape[:2])
    if shrink >= 1.0:  # a small photo: the whole search costs what a quick look would
        return FACE
    size = tuple(max(1, round(v * shrink)) for v in image_rgb.shape[1::-1])
    small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    seen = resized_for(fallback, shrink).detect(small) if fallback is not None else []
    if any(not d.unsure for d in seen):
        return FACE
    detector = resized_for(detector, shrink)
    if any(detector.detect(turn_image(small, turn)[0]) for turn in QUICK_TURNS):
        return FACE
    return FAINT if seen else None


def anything_at_all(
    detector: FaceDetector, fallback: FaceDetector | None, image_rgb: np.ndarray
) -> bool:
    """Whether the quick look (:func:`quick_look`) finds a face worth the turned search."""
    return quick_look(detector, fallback, image_rgb) == FACE


def resized_for(detector: FaceDetector, factor: float) -> FaceDetector:
    """The detector for a copy of the photo resized by ``factor``: a size floor on its faces
    (``core.detection.limits.Limited.scaled``) shrinks with the photo; any other detector
    as it is."""
    scaled = getattr(detector, "scaled", None)
    return scaled(factor) if scaled is not None else detector


# Sensor noise (grey levels, sd) above which a photo is searched blurred: above what clean
# and dark photos show, below a boosted night shot's (training/damage.py, night-boosted);
# blurred a little, more of such faces are found.
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
# face's mouth and nose, where CenterFace, which reads the face whole, has it upright.
OPPOSITE_DEGREES = 45.0


def with_fallback(found: list[Detection], extra: list[Detection]) -> list[Detection]:
    """The faces of the search with the fallback's: a face only the fallback found is
    added; one both found the opposite ways up (``OPPOSITE_DEGREES``) is the fallback's.
    One face is two detections whose centres lie in each other's squares, or whose squares
    share a fifth of the smaller: an upside-down reading of a masked face sits on its upper
    half. A fallback face marked ``unsure`` (below its own bar) only adds a face.

    The fallback's angle decides such a face because it comes from the eyes it found
    (docs/experiments/core-notes.md), unless the search was sure enough to stop turning
    (``EARLY_STOP``): a photo truly upside down, which MTCNN reads surer than the masked
    faces it reads upside down. Where the fallback is wrong, the keypoint model still
    turns a face it doubts (``core.keypoints.landmarks.surest_points``).
    """
    faces = list(found)
    # the fallback's sure faces first: a big faint box must not take a sure one inside it
    for e in sorted(extra, key=lambda d: d.unsure):
        same = [
            i
            for i, f in enumerate(faces)
            if same_face(e, f)
            or box_overlap(e.box.face_xyxy(), f.box.face_xyxy(), over_smaller=True) >= 0.2
        ]
        if not same:
            faces.append(e)
            continue
        if e.unsure:
            continue  # a face the search found stays its own
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
    others = [u for u in upright if not any(same_face(u, t) for t in turned)]
    return largest_first(turned + others)
