"""The plausibility gate: a mask goes on faces, not on fur, toys or hair."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from skimage import data

from core.api import FaceMasker
from core.detection.base import Detection
from core.detection.boxes import box_around
from core.errors import NoFaceFoundError
from core.keypoints.plausibility import (
    FaceEvidence,
    FaceGate,
    evidence,
    readings,
    skin_share,
)
from core.results import Mode


class OneBox:
    """A detector that reports one face where it is told to, with the score it is told."""

    def __init__(self, cx: float, cy: float, side: float, score: float) -> None:
        self.found = [Detection(box_around(cx, cy, side, 0.0), score)]

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return list(self.found)


@pytest.fixture(scope="module")
def masker() -> FaceMasker:
    return FaceMasker()


def test_the_shipped_gate_refuses_what_is_not_a_face():
    gate = FaceGate()
    fur = FaceEvidence(score=0.8, spread=0.3, shape_error=0.1, skin=0.0, eyes_px=40.0)
    assert not gate.keeps(fur)
    face = FaceEvidence(score=0.9999, spread=0.12, shape_error=0.02, skin=0.9, eyes_px=40.0)
    assert gate.keeps(face)


def test_the_astronaut_keeps_her_mask(masker):
    faces = masker.find_faces(data.astronaut(), Mode.FACES)
    assert len(faces) == 1
    image = data.astronaut()
    detections = masker.detector.detect(image)
    points, spreads, _ = readings(masker.predictor, image, [d.box for d in detections])
    assert np.isfinite(spreads).all()
    e = evidence(image, detections[0].score, points[0], float(spreads[0]), 0.03)
    assert e.skin > 0.5 and masker.gate.keeps(e)


def test_the_points_are_the_predictors_own(masker):
    image = data.astronaut()
    boxes = [d.box for d in masker.detector.detect(image)]
    read = readings(masker.predictor, image, boxes)
    np.testing.assert_array_equal(read.points, masker.predictor.predict(image, boxes))
    np.testing.assert_array_equal(read.judged, read.points)  # a sure face: one look


def test_a_doubted_face_is_masked_on_its_second_look_and_judged_on_its_first(masker):
    from core.keypoints.landmarks import RELOOK_SPREAD, level_boxes

    image = data.astronaut()
    (d,) = masker.detector.detect(image)
    # the detector's box turned 40 degrees: the model doubts it, not enough to turn it
    box = replace(d.box, angle=d.box.angle + 40.0)
    read = readings(masker.predictor, image, [box], picked=lambda points: True)
    assert RELOOK_SPREAD < read.spreads[0] <= masker.predictor.unsure_spread
    first, spread = masker.predictor.look(image, [box])
    np.testing.assert_array_equal(read.judged, first)
    np.testing.assert_allclose(read.spreads, spread)
    again = masker.predictor.look(image, level_boxes(first))[0]
    np.testing.assert_array_equal(read.points, again)
    sure = masker.predictor.predict(image, [d.box])
    # the second look reads the face where the sure box does; the first is off
    assert np.abs(read.points - sure).mean() < 0.5 * np.abs(read.judged - sure).mean()
    # not picked, or picked by no one: one look
    for picked in (lambda points: False, None):
        one = readings(masker.predictor, image, [box], picked=picked)
        np.testing.assert_array_equal(one.points, first)
        np.testing.assert_array_equal(one.judged, first)


def test_the_product_looks_again_at_doubted_faces_with_a_covered_lower_face(masker, monkeypatch):
    """A doubted face that wears a mask takes more looks; one with only its mouth and chin
    covered (a cup) too, where it is in focus; a sure face is never asked."""
    from core import api
    from core.render import cover

    image = data.astronaut()
    (d,) = masker.detector.detect(image)
    doubted = replace(d.box, angle=d.box.angle + 40.0)
    asked, now = [], {}

    def covered(photo, points):
        asked.append(points.copy())
        return now["reading"]

    monkeypatch.setattr(cover, "covered", covered)
    for now["reading"], focus, again in (
        ((True, True), False, True),
        ((False, True), True, True),
        ((False, True), False, False),
        ((False, False), True, False),
    ):
        monkeypatch.setattr(api, "in_focus", lambda photo, points, focus=focus: focus)
        asked.clear()
        read = api.read_faces(masker.predictor, image, [doubted, d.box])
        assert (read.points[0] != read.judged[0]).any() == again
        np.testing.assert_array_equal(read.points[1], read.judged[1])  # sure: never asked
        assert len(asked) == 1 and (asked[0] == read.judged[0]).all()


def test_a_predictor_without_heatmaps_gives_no_spread():
    class PointsOnly:
        def predict(self, image_rgb, boxes):
            return np.zeros((len(boxes), 68, 2), np.float32)

    box = box_around(50, 50, 40, 0.0)
    points, spreads, judged = readings(PointsOnly(), np.zeros((100, 100, 3), np.uint8), [box])
    assert points.shape == (1, 68, 2) and np.isnan(spreads).all()
    assert judged is points


def test_grey_is_not_skin_and_a_face_is(astronaut_points):
    face = astronaut_points
    assert skin_share(data.astronaut(), face) > 0.6
    assert skin_share(np.full((512, 512, 3), 128, np.uint8), face) == 0.0


def test_a_weak_detection_on_a_texture_is_left_alone():
    """A detector unsure of a box on bricks: without the gate the product masks it."""
    bricks = np.ascontiguousarray(data.brick()[..., None].repeat(3, axis=2))
    weak = OneBox(256, 256, 160, score=0.8)
    bare = FaceMasker(detector=weak, gate=None, max_shape_error=None)
    assert len(bare.find_faces(bricks, Mode.FACES)) == 1
    gated = FaceMasker(predictor=bare.predictor, detector=weak, max_shape_error=None)
    with pytest.raises(NoFaceFoundError):
        gated.find_faces(bricks, Mode.FACES)


def test_a_group_photo_keeps_every_face(shared_data):
    from lab.detector_bench import make_photo
    from training.data import load_splits
    from training.metrics import interocular, point_inside

    samples = load_splits(shared_data).val
    photo, faces, _ = make_photo(samples, np.random.default_rng(0))
    masker = FaceMasker()
    big = [pts for pts in faces if interocular(pts) >= 20]
    found = masker.find_faces(photo, Mode.FACES)
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in found]
    assert all(any(point_inside(x, y, pts) for x, y in centres) for pts in big)


# --------------------------------------------------------------------------- borderline faces


def test_a_borderline_detection_needs_the_verifier_sure_of_it():
    gate = FaceGate()
    face = FaceEvidence(score=0.73, spread=0.19, shape_error=0.03, skin=0.8, eyes_px=30.0)
    assert gate.keeps(face)  # found above the detector's bar: the usual rules
    unsure = replace(face, unsure=True, face=0.64)
    assert gate.keeps(unsure)
    assert not gate.keeps(replace(unsure, face=0.3))
    assert not gate.keeps(replace(unsure, face=float("nan")))  # no verifier: no confirmation


class SureAndBorderline:
    """A detector that tells apart its sure faces and its borderline ones."""

    def __init__(self, sure: list[Detection], unsure: list[Detection]) -> None:
        self.sure, self.unsure = sure, unsure

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return list(self.sure)

    def detect_borderline(self, image_rgb):
        return list(self.sure), list(self.unsure)


def test_borderline_faces_join_a_photo_with_a_sure_face_unless_they_are_one_of_its():
    from core.detection.turns import detect_with_turns

    sure = Detection(box_around(100, 100, 80, 0.0), 0.999)
    apart = Detection(box_around(400, 300, 40, 0.0), 0.7, unsure=True)
    same = Detection(box_around(110, 105, 60, 0.0), 0.6, unsure=True)
    image = np.zeros((480, 640, 3), np.uint8)
    found = detect_with_turns(SureAndBorderline([sure], [apart, same]), image)
    assert found == [sure, apart]
    # no sure face upright: the turned search decides, and borderline faces stay out
    doubtful = Detection(box_around(100, 100, 80, 0.0), 0.9)
    found = detect_with_turns(SureAndBorderline([doubtful], [apart]), image)
    assert apart not in found and not any(d.unsure for d in found)


def blurred_beside(sigma: float) -> np.ndarray:
    """The astronaut, and to her right her face again, out of focus."""
    import cv2

    photo = data.astronaut()
    canvas = np.full((512, 1024, 3), 128, np.uint8)
    canvas[:, :512] = photo
    canvas[100:360, 650:880] = cv2.GaussianBlur(photo[40:300, 100:330], (0, 0), sigma)
    return canvas


def test_a_blurred_face_mtcnn_is_unsure_of_is_masked_where_the_verifier_is_sure(masker):
    for sigma in np.arange(7.0, 9.01, 0.25):  # from sure, through borderline, to missed
        canvas = blurred_beside(float(sigma))
        sure, unsure = masker.detector.detect_borderline(canvas)
        if len(sure) == 1 and len(unsure) == 1:
            break
    else:
        pytest.fail("no blur left MTCNN unsure of the second face")
    assert masker.detector.detect(canvas) == sure
    assert 0.5 < unsure[0].score <= 0.8 and unsure[0].box.cx > 512
    faces = masker.find_faces(canvas, Mode.FACES)
    assert sorted(f.box[0] > 512 for f in faces) == [False, True]  # both masked
    ungated = FaceMasker(detector=masker.detector, gate=None)
    assert len(ungated.find_faces(canvas, Mode.FACES)) == 1  # unconfirmed: left alone


def test_a_faint_face_is_a_borderline_one_only_where_centerface_sees_it_too(masker):
    from core.detection import combined

    detector = masker.detector
    canvas = blurred_beside(9.0)  # ONet scores her blurred face ~0.24: faint
    sure, unsure = detector.detect_borderline(canvas)
    assert len(sure) == 1 and [d.box.cx > 512 for d in unsure] == [True]
    faint = unsure[0]
    assert combined.FAINT < faint.score <= combined.BORDERLINE and faint.unsure
    assert detector.seen_again(canvas, faint)
    # the same box on the grey beside her face, or on her sharp shoulder: nothing seen
    for cx, cy in ((950.0, 450.0), (300.0, 430.0)):
        assert not detector.seen_again(canvas, replace(faint, box=replace(faint.box, cx=cx, cy=cy)))
    # where no face is sure, the search takes no borderline face: no crop is read for one
    both_blurred = np.full_like(canvas, 128)
    both_blurred[100:360, 138:368] = both_blurred[100:360, 650:880] = canvas[100:360, 650:880]
    calls = []
    seen_again = detector.seen_again
    detector.seen_again = lambda *a: (calls.append(1), seen_again(*a))[1]
    try:
        sure, unsure = detector.detect_borderline(both_blurred)
    finally:
        del detector.seen_again
    assert sure == [] and unsure == [] and calls == []


def test_a_score_floor_applies_to_borderline_faces_too():
    from core.detection.limits import Limited

    sure = Detection(box_around(100, 100, 80, 0.0), 0.999)
    unsure = [Detection(box_around(400, 300, 40, 0.0), s, unsure=True) for s in (0.6, 0.75)]
    image = np.zeros((480, 640, 3), np.uint8)
    found = Limited(SureAndBorderline([sure], unsure), min_score=0.7).detect_borderline(image)
    assert found == ([sure], [unsure[1]])
    assert Limited(OneBox(100, 100, 80, 0.999)).detect_borderline(image)[1] == []
