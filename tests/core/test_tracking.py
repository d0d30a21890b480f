"""core.video.tracking with hand-made numbers: the One Euro filter, box matching, the tracker's
bookkeeping (who is followed, who is searched for, who keeps which id)."""

from __future__ import annotations

import numpy as np
import pytest

from core.video.tracking import (
    BETA,
    MIN_CUTOFF,
    FaceTracker,
    OneEuroFilter,
    eye_distance,
    iou,
    match,
    rigid_speed,
    smoothing_factor,
)
from masks import catalog

FPS = 30.0


def test_smoothing_factor_of_a_first_order_low_pass():
    # tau = 1 / (2 pi fc): at fc = 1 / (2 pi), tau = 1 s, and a 1 s step weighs 1 / (1 + 1)
    assert smoothing_factor(1 / (2 * np.pi), 1.0) == pytest.approx(0.5)
    assert smoothing_factor(1e6, 1 / 30) == pytest.approx(1.0, abs=1e-3)  # wide open: no lag


def test_one_euro_first_value_passes_and_time_going_back_restarts():
    f = OneEuroFilter()
    assert f(np.array([3.0]), 0.0)[0] == 3.0
    assert 3.0 < f(np.array([5.0]), 1 / FPS)[0] < 5.0
    assert f(np.array([-7.0]), 0.0)[0] == -7.0  # a new clip: no memory of the old one


def still_and_ramp(f_factory, seconds: float = 3.0, noise: float = 1.0, speed: float = 2.0):
    """RMS of a filtered constant + noise (frame to frame), and the lag on a ramp (units)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * FPS)) / FPS
    f = f_factory()
    still = np.array([f(np.array([10.0 + rng.normal(0, noise)]), ti)[0] for ti in t])
    f = f_factory()
    ramp = np.array([f(np.array([speed * ti]), ti)[0] for ti in t])
    steps = np.diff(still[15:])  # after the first half second
    return float(np.sqrt(np.mean(steps**2))), float(speed * t[-1] - ramp[-1])


def test_one_euro_steadies_a_constant_and_follows_a_ramp():
    # noise 0.01 on a constant; a ramp of 1 unit a second; min_cutoff 0.5 Hz, beta 5
    def one_euro(beta: float):
        return lambda: OneEuroFilter(min_cutoff=0.5, beta=beta, rigid=False)

    raw_rms, _ = still_and_ramp(lambda: _Identity(), noise=0.01, speed=1.0)
    rms, lag = still_and_ramp(one_euro(5.0), noise=0.01, speed=1.0)
    assert rms < raw_rms / 3  # a still face: a still mask
    # on the ramp the cut-off rises to ~0.5 + 5 x 1 Hz: lag ~ 1 / (2 pi 5.5) = 0.029
    assert lag < 2.0 / (2 * np.pi * 5.5)
    # beta 0 is a plain low-pass at 0.5 Hz: it trails by ~ 1 / (2 pi 0.5) = 0.32
    _, plain_lag = still_and_ramp(one_euro(0.0), noise=0.01, speed=1.0)
    assert plain_lag > 0.5 / (2 * np.pi * 0.5) and plain_lag > 5 * lag


def test_shipped_setting_on_a_face_still_and_moving():
    """The shipped filter on a whole face: 0.2% of the eye distance of noise (the keypoint
    model's own jitter on a still video) is cut to a third; a face crossing 1.5 eye
    distances a second trails by less than 0.2% of the eye distance."""
    rng = np.random.default_rng(0)
    face = face_at(200, 200)
    eyes = eye_distance(face)
    f = OneEuroFilter()
    still = [f(face + rng.normal(0, 0.002 * eyes, face.shape), i / FPS, eyes) for i in range(60)]
    raw = np.sqrt(2) * 0.002 * eyes  # RMS step of unsmoothed noise, per coordinate
    assert np.sqrt(np.mean(np.diff(still[15:], axis=0) ** 2)) < raw / 3
    f = OneEuroFilter()
    for i in range(60):
        out = f(face + [1.5 * eyes * i / FPS, 0.0], i / FPS, eyes)
    lag = (face[:, 0] + 1.5 * eyes * 59 / FPS - out[:, 0]).mean()
    assert 0 < lag < 0.002 * eyes
    assert MIN_CUTOFF > 0 and BETA > 0


def test_one_euro_speed_is_relative_to_scale():
    # the same motion in pixels is fast for a small face and slow for a big one
    def lag(scale: float) -> float:
        f = OneEuroFilter(min_cutoff=0.5, beta=1.0, rigid=False)
        for i in range(60):
            out = f(np.array([5.0 * i / FPS]), i / FPS, scale)
        return 5.0 * 59 / FPS - out[0]

    assert lag(1.0) < lag(100.0) / 5


def test_rigid_speed_of_a_shift_a_zoom_a_turn_and_noise():
    square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert rigid_speed(square, np.tile([3.0, 4.0], (4, 1))) == pytest.approx(5.0)  # shift
    assert rigid_speed(square, 2 * square) == pytest.approx(2.0)  # zoom about the centre
    turn = np.stack([-square[:, 1], square[:, 0]], axis=1)
    assert rigid_speed(square, turn) == pytest.approx(1.0)
    # points jiggling each their own way: no common motion, next to no speed
    rng = np.random.default_rng(0)
    face = face_at(0, 0)
    noise = rng.normal(0, 1.0, face.shape)
    assert rigid_speed(face, noise) < 0.3 * np.sqrt((noise**2).sum(axis=1).mean())


class _Identity:
    def __call__(self, x, t, scale=1.0):
        return np.asarray(x, np.float64)


def test_iou_and_match():
    assert iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    a = [(0, 0, 10, 10), (100, 0, 110, 10)]
    b = [(101, 0, 111, 10), (1, 1, 11, 11), (50, 50, 60, 60)]
    assert sorted(match(a, b, 0.3)) == [(0, 1), (1, 0)]
    assert match(a, b, 0.9) == []


# --------------------------------------------------------------------------- the tracker


TEMPLATE = catalog.template().points.astype(np.float32)


def face_at(x: float, y: float, eyes: float = 40.0) -> np.ndarray:
    """The template face with its eyes ``eyes`` px apart, centred at (x, y)."""
    t = TEMPLATE - TEMPLATE.mean(axis=0)
    return (t * (eyes / eye_distance(TEMPLATE)) + [x, y]).astype(np.float32)


class Scene:
    """Faces at known places in every frame; ``detect`` finds them all (unless ``blind``),
    ``follow`` reads the face nearest each previous reading, within half an eye distance,
    with a little noise, as a keypoint model would."""

    def __init__(self, noise: float = 0.0, seed: int = 0) -> None:
        self.faces: dict[str, np.ndarray] = {}
        self.blind: set[str] = set()
        self.detections = 0
        self.rng = np.random.default_rng(seed)
        self.noise = noise

    def detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        self.detections += 1
        return [p.copy() for k, p in self.faces.items() if k not in self.blind]

    def follow(
        self, rgb: np.ndarray, previous: np.ndarray, crops=None
    ) -> tuple[np.ndarray, np.ndarray]:
        out, ok = [], []
        for prev in previous:
            best = min(
                self.faces.values(),
                key=lambda p: np.linalg.norm(p.mean(0) - prev.mean(0)),
                default=None,
            )
            near = best is not None and (
                np.linalg.norm(best.mean(0) - prev.mean(0)) < 0.5 * eye_distance(prev)
            )
            out.append(best + self.rng.normal(0, self.noise, best.shape) if near else prev)
            ok.append(near)
        return np.asarray(out, np.float32), np.asarray(ok)


FRAME = np.zeros((8, 8, 3), np.uint8)  # the scene decides; the pixels are not looked at


def ids(faces) -> list[int]:
    return [f.track_id for f in faces]


def test_faces_keep_their_ids_while_moving_and_searches_are_every_n_frames():
    scene = Scene()
    tracker = FaceTracker(scene.detect, scene.follow, detect_every=5, smooth=False)
    for i in range(20):
        scene.faces = {"a": face_at(100 + 3 * i, 100), "b": face_at(300 - 3 * i, 120)}
        faces = tracker.update(FRAME, i / FPS)
        assert sorted(ids(faces)) == [0, 1]
        by_id = {f.track_id: f.points for f in faces}
        np.testing.assert_allclose(by_id[0], scene.faces["a"], atol=1e-4)
        np.testing.assert_allclose(by_id[1], scene.faces["b"], atol=1e-4)
    assert scene.detections == 4  # frames 0, 5, 10, 15


def test_without_faces_the_search_runs_twice_as_often():
    scene = Scene()
    tracker = FaceTracker(scene.detect, scene.follow, detect_every=6, smooth=False)
    for i in range(12):
        assert tracker.update(FRAME, i / FPS) == []
    assert scene.detections == 4  # frames 0, 3, 6, 9


def test_a_face_entering_is_found_at_the_next_search_and_one_leaving_is_dropped():
    scene = Scene()
    tracker = FaceTracker(scene.detect, scene.follow, detect_every=4, smooth=False)
    scene.faces = {"a": face_at(100, 100)}
    assert ids(tracker.update(FRAME, 0.0)) == [0]
    scene.faces["b"] = face_at(300, 100)
    seen = [ids(tracker.update(FRAME, i / FPS)) for i in range(1, 5)]
    assert seen == [[0], [0], [0], [0, 1]]  # frame 4 is the next search
    del scene.faces["a"]  # leaves: following it fails, a search runs at once
    searches = scene.detections
    assert ids(tracker.update(FRAME, 5 / FPS)) == [1]
    assert scene.detections == searches + 1


def test_a_lost_face_found_again_by_the_search_keeps_its_id():
    scene = Scene()
    tracker = FaceTracker(scene.detect, scene.follow, detect_every=10, smooth=False)
    scene.faces = {"a": face_at(100, 100)}
    tracker.update(FRAME, 0.0)
    # a jump too far for following (a cut, a fast turn), still where the search sees it
    scene.faces = {"a": face_at(125, 100)}
    faces = tracker.update(FRAME, 1 / FPS)
    assert ids(faces) == [0]
    np.testing.assert_allclose(faces[0].points, scene.faces["a"], atol=1e-4)


def test_a_face_the_detector_misses_is_followed_then_dropped_after_max_unconfirmed():
    scene = Scene()
    tracker = FaceTracker(
        scene.detect, scene.follow, detect_every=2, smooth=False, max_unconfirmed=3
    )
    scene.faces = {"a": face_at(100, 100)}
    tracker.update(FRAME, 0.0)
    scene.blind = {"a"}  # a profile the detector misses but the model still reads
    alive = [bool(tracker.update(FRAME, i / FPS)) for i in range(1, 10)]
    # searches at frames 2, 4, 6, 8 miss it: dropped at the fourth miss
    assert alive == [True] * 7 + [False, False]


def test_smoothing_steadies_a_still_noisy_face():
    def rms_steps(smooth: bool) -> float:
        scene = Scene(noise=0.3, seed=1)  # 0.75% of the eye distance
        tracker = FaceTracker(scene.detect, scene.follow, smooth=smooth)
        scene.faces = {"a": face_at(200, 200)}
        pts = [tracker.update(FRAME, i / FPS)[0].points for i in range(60)]
        return float(np.sqrt(np.mean(np.diff(np.asarray(pts[10:]), axis=0) ** 2)))

    assert rms_steps(True) < rms_steps(False) / 3


def test_two_tracks_on_one_face_become_one():
    scene = Scene()
    tracker = FaceTracker(scene.detect, scene.follow, detect_every=1, smooth=False)
    scene.faces = {"a": face_at(100, 100), "b": face_at(104, 100)}  # one face seen twice
    assert ids(tracker.update(FRAME, 0.0)) == [0]


def reads_per_frame(tracker: FaceTracker, scene: Scene, frames: int) -> list[int]:
    """How many faces the model read in each frame while following (searches not counted)."""
    out = []
    for i in range(frames):
        before = tracker.reads
        tracker.update(FRAME, i / FPS)
        out.append(tracker.reads - before)
    return out


def still_motion(previous, rgb, points):
    """The picture did not move: every face's points stay where they are."""
    return np.asarray(points, np.float32), np.ones(len(points), bool)


def test_one_face_is_read_every_fourth_frame_and_two_take_turns_every_seventh():
    scene = Scene()
    scene.faces = {"a": face_at(100, 100)}
    tracker = FaceTracker(scene.detect, scene.follow, motion=still_motion, detect_every=15)
    one = reads_per_frame(tracker, scene, 30)
    # a search at frames 0 and 15 reads the face itself; in between, every fourth frame
    assert [i for i, n in enumerate(one) if n] == [4, 8, 12, 19, 23, 27]
    assert tracker.read_interval(1) == 4

    scene.faces = {"a": face_at(100, 100), "b": face_at(300, 100)}
    tracker = FaceTracker(scene.detect, scene.follow, motion=still_motion, detect_every=15)
    two = reads_per_frame(tracker, scene, 30)
    assert tracker.read_interval(2) == 7
    assert max(two) == 1  # never both in one frame: the second waits a frame
    assert [i for i, n in enumerate(two) if n] == [7, 8, 14, 22, 23, 29]
    # with the searches' own readings: a third of a reading a frame against 0.67 every third
    assert (sum(two) + 2 * 2) / 30 == pytest.approx(1 / 3)
    assert tracker.read_interval(9) == 7  # never staler than that, however many faces


def test_a_face_the_movement_lost_is_read_at_once_whatever_its_turn():
    scene = Scene()
    scene.faces = {"a": face_at(100, 100), "b": face_at(300, 100)}

    def loses_b(previous, rgb, points):
        ok = np.array([p.mean(axis=0)[0] < 200 for p in points])
        return np.asarray(points, np.float32), ok

    tracker = FaceTracker(scene.detect, scene.follow, motion=loses_b, detect_every=15)
    reads = reads_per_frame(tracker, scene, 9)
    # b every frame after the search (its movement is never told); a in turn at frame 7
    assert reads == [0, 1, 1, 1, 1, 1, 1, 2, 1]
