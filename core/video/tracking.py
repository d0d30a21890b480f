"""Steady masks on moving pictures: faces followed from frame to frame, their points smoothed.

A detector run on every frame finds each face anew, in a box that wobbles by a few pixels,
and the keypoint model's reading wobbles with it: a mask that shivers on a still face.
Instead, :class:`FaceTracker`

* **follows** each face: the keypoint model reads it every ``READ_EVERY`` frames (with
  several faces, less often and in turns: ``READS_A_FRAME``; the faces due in one batch) in
  the crop the detector gave it, kept in the face's own frame
  (:class:`Anchor`) and moved with its points, so that it reads the face as the photo path
  does; in between, the face's points move with the picture (:func:`frame_motion`), and a
  new reading is averaged with where they moved (``READ_GAIN``);
* **detects** only every ``detect_every`` frames while it follows faces (to find new ones
  entering), twice as often while it follows none, and at once when a face is lost (the
  model doubts its crop, or the points are not face-shaped); it matches the detections to
  the faces it follows by the overlap of their point boxes, so each face keeps its
  ``track_id``;
* **smooths** every coordinate over time with a :class:`OneEuroFilter`: a still face's
  points barely move, a moving one is followed with little lag (the filter's cut-off rises
  with the speed).

The tracker itself is pure logic over two callables (find faces, follow faces), so its
tests need no model; :func:`masker_callables` builds them from a :class:`core.api.FaceMasker`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.detection.boxes import CROP_SCALE, FaceBox, box_overlap, face_axes
from core.errors import NoFaceFoundError
from core.results import Mode

if TYPE_CHECKING:
    from core.video.masker import VideoMasker

log = logging.getLogger(__name__)

# Chosen with `facemask-bench --video --tune` over the tracker's unsmoothed points: a still
# face barely jitters while a moving one is followed with little lag. One speed for the
# whole face (its motion as a similarity: shift, turn, zoom) rather than one per coordinate:
# per coordinate, noise reads as speed and opens the filter (docs/experiments/core-notes.md,
# "Video smoothing").
MIN_CUTOFF = 0.5  # Hz: how much a still face's points are smoothed
BETA = 160.0  # how fast the cut-off rises with speed (Hz per eye distance a second)
D_CUTOFF = 1.0  # Hz: the smoothing of the speed itself
# Frames between searches for new faces while faces are followed (1/2 s at 30 fps; half
# that while none are). A search is the photo path (MTCNN, its turns where no face is sure,
# and the keypoints) and costs several times as much as following a face.
DETECT_EVERY = 15
MATCH_IOU = 0.3  # point boxes overlapping this much are one face
DUPLICATE_IOU = 0.6  # two tracks overlapping this much have found the same face
# A followed face that this many searches in a row do not find is dropped (the detector
# misses profiles the model still reads, so one miss is no reason).
MAX_UNCONFIRMED = 6

# A face the model last read is moved with the picture for this many frames less one, then
# read again (docs/video.md, "The per-frame budget"): the movement carries the points well
# enough in between that rarer readings cost almost no accuracy and no jitter
# (docs/experiments/video-speed.md, round 4).
READ_EVERY = 4
# With several faces, the readings a frame are held to this many on average (a reading is
# ~19 ms of CPU a face): each face is read every ``ceil(faces / READS_A_FRAME)`` frames, at
# least every READ_EVERY and at most every MAX_READ_EVERY, and the faces due take turns (no
# more than ``ceil(faces / interval)`` read in one frame). Two faces: each every 7th frame;
# with a search's readings every 15th, one reading every third frame.
READS_A_FRAME = 0.3
MAX_READ_EVERY = 7
# ... and its new reading counts this much against where the movement took it
READ_GAIN = 0.5
# A search's crop enters a face's crop by this much (its own box wobbles from search to
# search; averaged, it sits where the detector's boxes sit on average)
ANCHOR_WEIGHT = 0.3
# The picture's movement is told at this many pixels between the eyes (Lucas-Kanade)
MOTION_IOD = 40.0
LK_WINDOW = 15
MIN_MOVED = 12  # inner-face points followed, and agreeing, for a movement to count
INNER_FACE = list(range(17, 68))  # brows, nose, eyes, mouth: texture to follow

# frame -> the faces found: (68, 2) points, or Found (points and the crop they were read in)
Detect = Callable[[np.ndarray], "list[np.ndarray] | list[Found]"]
# (frame, (N, 68, 2) previous points, N crops) -> ((N, 68, 2) points, (N,) bool: still a face)
Follow = Callable[[np.ndarray, np.ndarray, Sequence[FaceBox]], tuple[np.ndarray, np.ndarray]]
# (previous frame, frame, (N, 68, 2) points) -> ((N, 68, 2) points moved, (N,) bool: moved)
Motion = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- smoothing


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The exponential smoothing weight of a first-order low-pass at ``cutoff`` Hz."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), for every coordinate of an
    array at once.

    A low-pass whose cut-off is ``min_cutoff + beta * |speed| / scale`` Hz: at rest it
    smooths hard (no jitter), moving it lets the signal through (no lag). ``scale`` makes the
    speed relative (for faces: eye distances a second), so one setting fits every face size.
    With ``rigid``, an (N, 2) array of points has one speed: that of the similarity motion
    (shift, turn, zoom) closest to its points' velocities, RMS over the points (a face moves
    as one, and noise barely shows in four numbers fitted to 2N); else every coordinate has
    its own (the paper's filter).
    """

    min_cutoff: float = MIN_CUTOFF
    beta: float = BETA
    d_cutoff: float = D_CUTOFF
    rigid: bool = True
    _x: np.ndarray | None = field(default=None, repr=False)
    _dx: np.ndarray | None = field(default=None, repr=False)
    _t: float | None = field(default=None, repr=False)

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            # the first value (or time going backwards: a new start) passes as it is
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(self.d_cutoff, dt) * (dx - self._dx)
        if self.rigid and self._dx.ndim == 2 and self._dx.shape[1] == 2:
            speed = rigid_speed(self._x, self._dx)
        else:
            speed = np.abs(self._dx)
        cutoff = self.min_cutoff + self.beta * speed / max(scale, 1e-9)
        self._x = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


def rigid_speed(points: np.ndarray, velocity: np.ndarray) -> float:
    """RMS speed over the points of the similarity motion closest to their velocities.

    A similarity's velocity field is ``v(p) = a (p - c) + b perp(p - c) + t`` (zoom a, turn
    b, shift t, centre c the points' mean); least squares gives each from sums.
    """
    q = points - points.mean(axis=0)
    shift = velocity.mean(axis=0)
    w = velocity - shift
    norm = max(float((q**2).sum()), 1e-12)
    zoom = float((q * w).sum()) / norm
    turn = float((q[:, 0] * w[:, 1] - q[:, 1] * w[:, 0]).sum()) / norm
    field = zoom * q + turn * np.stack([-q[:, 1], q[:, 0]], axis=1) + shift
    return float(np.sqrt((field**2).sum(axis=1).mean()))


# --------------------------------------------------------------------------- geometry


def eye_distance(points: np.ndarray) -> float:
    """Distance between the eye centres of 68 points (iBUG: 36-41 and 42-47)."""
    return float(np.linalg.norm(points[42:48].mean(axis=0) - points[36:42].mean(axis=0)))


def point_box(points: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    return box_overlap(a, b)


def match(
    a: Sequence[tuple[float, ...]], b: Sequence[tuple[float, ...]], threshold: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (i, j) of boxes a[i], b[j], best overlap first."""
    pairs = sorted(
        ((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((i, j))
    return out


# --------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class Anchor:
    """Where a face's crop sits in the frame of its own points: the crop's centre ``u``
    right and ``v`` down of the points' centroid, its side, all in units of the points' RMS
    radius, and its angle less the eyes' (see :func:`points_frame`)."""

    u: float
    v: float
    side: float
    angle: float

    def blend(self, other: Anchor, weight: float) -> Anchor:
        turn = (other.angle - self.angle + 180.0) % 360.0 - 180.0
        return Anchor(
            self.u + weight * (other.u - self.u),
            self.v + weight * (other.v - self.v),
            self.side + weight * (other.side - self.side),
            self.angle + weight * turn,
        )


def points_frame(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A face's own frame from its 68 points: centroid, RMS radius and eye angle (all 68
    points take part, so one point's wobble barely moves it)."""
    from core.keypoints.preprocess import eye_angle

    p = np.asarray(points, np.float64)
    centre = p.mean(axis=0)
    radius = float(np.sqrt(((p - centre) ** 2).sum(axis=1).mean()))
    return centre, max(radius, 1e-6), eye_angle(p)


def anchor_of(points: np.ndarray, box: FaceBox) -> Anchor:
    """The crop ``box`` in the frame of ``points`` (see :class:`Anchor`)."""
    centre, radius, angle = points_frame(points)
    right, down = face_axes(angle)
    d = np.array([box.cx, box.cy]) - centre
    turn = (box.angle - angle + 180.0) % 360.0 - 180.0
    return Anchor(float(d @ right) / radius, float(d @ down) / radius, box.side / radius, turn)


def crop_at(anchor: Anchor, points: np.ndarray) -> FaceBox:
    """The crop that ``anchor`` puts around ``points``: the same crop, relative to the
    face, as the one it was taken from."""
    centre, radius, angle = points_frame(points)
    right, down = face_axes(angle)
    cx, cy = centre + radius * (anchor.u * right + anchor.v * down)
    return FaceBox(float(cx), float(cy), anchor.side * radius, angle + anchor.angle)


@dataclass(frozen=True)
class Found:
    """A face a search found: its points and the crop they were read in (None: the crop
    around the points, level with the eyes)."""

    points: np.ndarray
    crop: FaceBox | None = None


def _found(item: np.ndarray | Found) -> Found:
    if isinstance(item, Found):
        return Found(np.asarray(item.points, np.float32), item.crop)
    return Found(np.asarray(item, np.float32))


# --------------------------------------------------------------------------- tracking


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    points: np.ndarray  # (68, 2) float32, smoothed: what the mask is put on
    raw: np.ndarray  # (68, 2) float32, the model's reading of this frame (or its move)


@dataclass
class _Track:
    track_id: int
    raw: np.ndarray
    smoother: OneEuroFilter
    anchor: Anchor
    points: np.ndarray | None = None
    unconfirmed: int = 0
    last_read: int = 0  # the frame the model last read this face in


class FaceTracker:
    """Faces followed through the frames of one video (see the module docstring).

    ``smooth=False`` passes the model's readings through unfiltered (for measuring what the
    filter does). With ``motion``, a face is read by the model every ``read_every`` frames
    and moved by ``motion`` (the frame's own movement there) in between. Call
    :meth:`update` with every frame, in order, and its time in seconds.
    """

    def __init__(
        self,
        detect: Detect,
        follow: Follow,
        *,
        motion: Motion | None = None,
        detect_every: int = DETECT_EVERY,
        read_every: int = READ_EVERY,
        smooth: bool = True,
        min_cutoff: float = MIN_CUTOFF,
        beta: float = BETA,
        d_cutoff: float = D_CUTOFF,
        max_unconfirmed: int = MAX_UNCONFIRMED,
    ) -> None:
        self.detect = detect
        self.follow = follow
        self.motion = motion
        self.detect_every = max(1, detect_every)
        self.read_every = max(1, read_every) if motion is not None else 1
        self.smooth = smooth
        self.filter_params = (min_cutoff, beta, d_cutoff)
        self.max_unconfirmed = max_unconfirmed
        self.tracks: list[_Track] = []
        self.frame = 0
        self.last_search: int | None = None
        self.next_id = 0
        self.searches = 0  # how often the detector ran (for benchmarks and tests)
        self.reads = 0  # faces the model read while following (for benchmarks and tests)
        self._previous: np.ndarray | None = None

    def update(self, rgb: np.ndarray, t: float) -> list[TrackedFace]:
        moved_ok = np.ones(len(self.tracks), bool)
        # every face is moved first, those read in this frame too: their reading is averaged
        # with where the movement put them (a stale position there would lag the mask)
        moving = list(range(len(self.tracks)))
        if moving and self.motion is not None and self._previous is not None:
            raws = np.stack([self.tracks[k].raw for k in moving])
            moved, ok = self.motion(self._previous, rgb, raws)
            for k, p, good in zip(moving, moved, ok, strict=True):
                moved_ok[k] = good
                if good:
                    self.tracks[k].raw = np.asarray(p, np.float32)
        every = self.detect_every if self.tracks else max(1, self.detect_every // 2)
        due = self.last_search is None or self.frame - self.last_search >= every
        alive = list(self.tracks)
        fresh: set[int] = set()  # tracks whose points the search just read
        if due:
            alive, fresh = self._search(rgb, alive, [])
        reading = self._due(
            [tr for tr in self.tracks if tr in alive and tr.track_id not in fresh],
            {tr.track_id for tr, good in zip(self.tracks, moved_ok, strict=True) if not good},
        )
        lost: list[_Track] = []
        if reading:
            points, ok = self.follow(
                rgb,
                np.stack([tr.raw for tr in reading]),
                [crop_at(tr.anchor, tr.raw) for tr in reading],
            )
            self.reads += len(reading)
            for tr, p, good in zip(reading, points, ok, strict=True):
                if good:
                    tr.raw, tr.last_read = self._fused(tr, p), self.frame
                else:
                    lost.append(tr)
            alive = [tr for tr in alive if tr not in lost]
        if lost and not due:
            alive, _ = self._search(rgb, alive, lost)
        self.tracks = _without_duplicates(alive)
        self._previous = rgb if self.motion is not None else None
        self.frame += 1
        out = []
        for tr in self.tracks:
            if self.smooth:
                tr.points = tr.smoother(tr.raw, t, eye_distance(tr.raw)).astype(np.float32)
            else:
                tr.points = tr.raw
            out.append(TrackedFace(tr.track_id, tr.points, tr.raw))
        return out

    def read_interval(self, faces: int) -> int:
        """Frames between two readings of a face while ``faces`` faces are followed."""
        if self.read_every == 1:
            return 1
        wanted = math.ceil(faces / READS_A_FRAME - 1e-9)
        return max(self.read_every, min(max(MAX_READ_EVERY, self.read_every), wanted))

    def _due(self, candidates: list[_Track], unmoved: set[int]) -> list[_Track]:
        """The faces to read in this frame: those the movement lost, and of those due, the
        longest unread first, as many as the frame's share (the faces take turns)."""
        interval = self.read_interval(len(self.tracks))
        lost = [tr for tr in candidates if tr.track_id in unmoved]
        due = [
            tr
            for tr in candidates
            if tr.track_id not in unmoved and self.frame - tr.last_read >= interval
        ]
        share = math.ceil(len(self.tracks) / interval)
        due.sort(key=lambda tr: tr.last_read)
        return lost + due[:share]  # a lost face does not take a due one's turn

    def _fused(self, track: _Track, reading: np.ndarray) -> np.ndarray:
        """A new reading of a face that was moved with the picture since the last: the two
        averaged (``READ_GAIN``), as the movement is surer than one reading's noise."""
        reading = np.asarray(reading, np.float32)
        if self.motion is None or self.read_every == 1:
            return reading
        return (track.raw + READ_GAIN * (reading - track.raw)).astype(np.float32)

    def _search(
        self, rgb: np.ndarray, alive: list[_Track], lost: list[_Track]
    ) -> tuple[list[_Track], set[int]]:
        """Detections matched to the faces followed (confirmed: the search's reading is
        theirs for this frame), to faces just lost (found again, same id), or new faces.
        Returns the tracks and the ids of those whose points the search read."""
        self.last_search = self.frame
        self.searches += 1
        found = [_found(f) for f in self.detect(rgb)]
        found_boxes = [point_box(f.points) for f in found]
        taken: set[int] = set()
        fresh: set[int] = set()
        for i, j in match([point_box(tr.raw) for tr in alive], found_boxes, MATCH_IOU):
            tr, f = alive[i], found[j]
            # the detector's crop, in the face's own frame, averaged over the searches: the
            # crops that follow it sit on the face as the detector's boxes do
            tr.anchor = tr.anchor.blend(_anchor(f), ANCHOR_WEIGHT)
            tr.raw, tr.last_read = self._fused(tr, f.points), self.frame
            tr.unconfirmed = -1  # counted up to 0 below
            taken.add(j)
            fresh.add(tr.track_id)
        for tr in alive:
            tr.unconfirmed += 1
        alive = [tr for tr in alive if tr.unconfirmed <= self.max_unconfirmed]
        rest = [j for j in range(len(found)) if j not in taken]
        revived: dict[int, _Track] = {}
        for i, k in match([point_box(tr.raw) for tr in lost], [found_boxes[j] for j in rest], 0.1):
            revived[rest[k]] = lost[i]
        for j in rest:
            f = found[j]
            tr = revived.get(j)
            if tr is None:
                tr = _Track(self.next_id, f.points, OneEuroFilter(*self.filter_params), _anchor(f))
                self.next_id += 1
                log.debug("frame %d: face %d enters", self.frame, tr.track_id)
            else:
                tr.anchor = _anchor(f)
            tr.raw, tr.unconfirmed, tr.last_read = f.points, 0, self.frame
            alive.append(tr)
            fresh.add(tr.track_id)
        return alive, fresh


def _anchor(found: Found) -> Anchor:
    from core.keypoints.landmarks import level_boxes

    crop = found.crop if found.crop is not None else level_boxes(found.points[None])[0]
    return anchor_of(found.points, crop)


def _without_duplicates(tracks: list[_Track]) -> list[_Track]:
    """Two tracks that slid onto one face: the older one stays."""
    kept: list[_Track] = []
    for tr in sorted(tracks, key=lambda x: x.track_id):
        box = point_box(tr.raw)
        if all(iou(box, point_box(k.raw)) < DUPLICATE_IOU for k in kept):
            kept.append(tr)
    return kept


# --------------------------------------------------------------------------- motion


def frame_motion(
    previous: np.ndarray, rgb: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 68, 2) points moved as the picture moved from ``previous`` to ``rgb`` around
    them, and (N,) bool: moved (False: the movement could not be told; the points stay).

    The inner face's points (brows, eyes, nose, mouth: texture, unlike the jaw's edge
    against the background) are followed by pyramidal Lucas-Kanade on the face's
    surroundings, shrunk to ``MOTION_IOD`` between the eyes, and the similarity (shift,
    turn, zoom) that fits them best moves all 68.
    """
    out = np.asarray(points, np.float32).copy()
    ok = np.zeros(len(out), bool)
    h, w = rgb.shape[:2]
    for k, p in enumerate(out):
        size = eye_distance(p)
        if not np.isfinite(p).all() or size < 2:
            continue
        lo = np.floor(p.min(axis=0) - 0.3 * size).astype(int)
        hi = np.ceil(p.max(axis=0) + 0.3 * size).astype(int)
        x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
        if x1 - x0 < 16 or y1 - y0 < 16:
            continue
        scale = min(1.0, MOTION_IOD / size)
        step = int(1 / scale)
        if step >= 2:  # shrunk by a whole factor: OpenCV's area averaging is ~4x cheaper then
            x1, y1 = x0 + (x1 - x0) // step * step, y0 + (y1 - y0) // step * step
            size_px = ((x1 - x0) // step, (y1 - y0) // step)
            scale = 1 / step
        else:
            size_px = (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale)))
        a, b = (
            cv2.resize(
                cv2.cvtColor(np.ascontiguousarray(im[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY),
                size_px,
                interpolation=cv2.INTER_AREA,
            )
            for im in (previous, rgb)
        )
        sx, sy = size_px[0] / (x1 - x0), size_px[1] / (y1 - y0)
        local = ((p[INNER_FACE] - [x0, y0] + 0.5) * [sx, sy] - 0.5).astype(np.float32)
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(
            a, b, local.reshape(-1, 1, 2), None, winSize=(LK_WINDOW, LK_WINDOW), maxLevel=2
        )
        good = status.reshape(-1) == 1
        if good.sum() < MIN_MOVED:
            continue
        src = (local[good] + 0.5) / [sx, sy] - 0.5 + [x0, y0]
        dst = (nxt.reshape(-1, 2)[good] + 0.5) / [sx, sy] - 0.5 + [x0, y0]
        matrix, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=max(1.0, 0.5 / scale)
        )
        if matrix is None or inliers is None or int(inliers.sum()) < MIN_MOVED:
            continue
        out[k] = p @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
        ok[k] = True
    return out, ok


# --------------------------------------------------------------------------- the model


def masker_callables(masker: VideoMasker, mode: Mode | str = Mode.FACES) -> tuple[Detect, Follow]:
    """``detect`` and ``follow`` for :class:`FaceTracker` from a :class:`core.api.FaceMasker`.

    Detection is the photo path (``find_faces``: detector, turns, keypoints, shape check),
    each face with the crop its points were read in (the detector's box); in Mode.WHOLE the
    whole frame is the one face. Following reads each face in the crop it is given, all
    faces in one batch; a face is lost where the model doubts its crop (heatmap spread, as
    for photos) or the points are not face-shaped (``FaceMasker.max_shape_error``).
    """
    from core.keypoints.landmarks import UNSURE_SPREAD
    from core.keypoints.preprocess import eye_angle
    from core.render import warp
    from masks import catalog

    predictor = masker.predictor
    template = catalog.template().points.astype(np.float64)
    max_shape = masker.max_shape_error
    whole = Mode(mode) is Mode.WHOLE

    def detect(rgb: np.ndarray) -> list[Found]:
        try:
            faces = masker.find_faces(rgb, mode)
        except NoFaceFoundError:
            return []
        if whole:  # read twice, the second time in the crop around the first reading
            return [Found(f.points) for f in faces]
        out = []
        for f in faces:
            # the face's square is the detector's crop (core.detection.boxes.FaceBox) shrunk
            x0, y0, x1, y1 = f.box
            crop = FaceBox(
                (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * CROP_SCALE, eye_angle(f.points)
            )
            out.append(Found(f.points, crop))
        return out

    def follow(
        rgb: np.ndarray, previous: np.ndarray, crops: Sequence[FaceBox]
    ) -> tuple[np.ndarray, np.ndarray]:
        points, spread = predictor.look(rgb, crops)
        ok = np.isfinite(points).all(axis=(1, 2)) & ~(spread > UNSURE_SPREAD)
        h, w = rgb.shape[:2]
        for i, p in enumerate(points):
            if not ok[i]:
                continue
            size = eye_distance(p)
            cx, cy = p.mean(axis=0)
            inside = -0.5 * size <= cx <= w + 0.5 * size and -0.5 * size <= cy <= h + 0.5 * size
            ok[i] = size >= 2.0 and inside
            if ok[i] and max_shape is not None and not whole:
                ok[i] = warp.shape_error(p, template) <= max_shape
        return points, ok

    return detect, follow
