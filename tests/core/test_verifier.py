"""The face verifier: the picture laid out by a face's points, and a network's word on it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from core.api import FaceMasker
from core.errors import NoFaceFoundError
from core.keypoints.plausibility import FaceEvidence, FaceGate
from core.keypoints.verifier import (
    SHARP,
    SIZE,
    TEMPLATE,
    FaceVerifier,
    aligned,
    five_points,
    sharpness,
    shipped_verifier,
)
from core.results import Mode


def _turn(points: np.ndarray, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = points.mean(0)
    return (points - centre) @ rot.T + centre


def test_five_points_are_the_eye_centres_nose_tip_and_mouth_corners(astronaut_points):
    p = np.asarray(astronaut_points, np.float64)
    expected = [p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]
    np.testing.assert_allclose(five_points(p), expected)


def test_the_face_is_laid_where_the_template_says(astronaut_points):
    image = np.zeros((512, 512, 3), np.uint8)
    five = five_points(astronaut_points)
    for x, y in five:  # a white dot at each of the five points
        cv2.circle(image, (int(round(x)), int(round(y))), 4, (255, 255, 255), -1)
    crop = aligned(image, astronaut_points)
    assert crop.shape == (SIZE, SIZE, 3)
    lit = np.argwhere(crop.max(axis=2) > 128)[:, ::-1]  # (x, y) of the dots' pixels
    for x, y in TEMPLATE:  # every dot within 2 px of its place, nothing lit elsewhere
        assert np.hypot(*(lit - (x, y)).T).min() < 2.0, (x, y)
    assert max(np.hypot(*(TEMPLATE - p).T).min() for p in lit) < 3.0


@pytest.fixture(scope="module")
def verifier() -> FaceVerifier:
    found = shipped_verifier()
    assert found is not None, "the package ships its verifier"
    return found


def test_the_astronaut_is_a_face_and_her_points_elsewhere_are_not(verifier, astronaut_points):
    image = data.astronaut()
    threshold = FaceGate().min_face
    face = verifier.probabilities(image, [astronaut_points])[0]
    upside_down = verifier.probabilities(image, [_turn(astronaut_points, 180)])[0]
    on_the_rocket = verifier.probabilities(
        data.rocket(), [astronaut_points - astronaut_points.mean(0) + (300, 200)]
    )[0]
    on_bricks = verifier.probabilities(
        np.dstack([data.brick()] * 3), [astronaut_points + (100, 200)]
    )[0]
    assert face > 0.9
    assert max(upside_down, on_the_rocket, on_bricks) < threshold < face


def test_every_face_of_a_photo_is_judged_in_one_call(astronaut_points):
    calls = []

    class Counting:
        def judge(self, image_rgb, faces, scores=None):
            calls.append(len(faces))
            return np.ones(len(faces), np.float32), np.ones((len(faces), 2), np.float32)

    masker = FaceMasker(verifier=Counting())
    faces = masker.find_faces(data.astronaut(), Mode.FACES)
    assert len(faces) == 1 and calls == [1]


def test_a_face_the_verifier_doubts_gets_no_mask():
    class Never:
        def judge(self, image_rgb, faces, scores=None):
            return np.zeros(len(faces), np.float32), np.full((len(faces), 2), np.nan, np.float32)

    masker = FaceMasker(verifier=Never(), gate=FaceGate(min_face=0.5))
    with pytest.raises(NoFaceFoundError):
        masker.find_faces(data.astronaut(), Mode.FACES)
    # without a gate nobody asks the verifier
    assert len(FaceMasker(verifier=Never(), gate=None).find_faces(data.astronaut())) == 1


def test_the_gate_reads_the_verifier_and_nan_means_none():
    gate = FaceGate(min_face=0.3)
    seen = dict(score=0.99, spread=0.13, shape_error=0.02, skin=0.9, eyes_px=40.0)
    assert gate.keeps(FaceEvidence(**seen, face=0.9))
    assert not gate.keeps(FaceEvidence(**seen, face=0.1))
    assert gate.keeps(FaceEvidence(**seen))  # no verifier: the other evidence decides


def test_the_second_look_stops_a_cat_and_keeps_the_astronaut(verifier, astronaut_points):
    assert verifier.look is not None  # the shipped look is loaded with the verifier
    gate = FaceGate()
    her_face, looks = verifier.judge(data.astronaut(), [astronaut_points])
    assert (looks[0] > 0.9).all() and her_face[0] > 0.9  # a sharp face: both probes asked
    # the astronaut's points laid on Chelsea the cat, where the verifier alone would let a
    # mask on: the ImageNet features know a cat (a sharp crop: the sharp probe is asked)
    on_the_cat = (astronaut_points - astronaut_points.mean(0)) * 1.3 + (90, 210)
    face, looks = verifier.judge(data.chelsea(), [on_the_cat])
    assert face[0] > 10 * gate.min_face and looks[0, 0] < gate.min_look_sharp / 5
    assert looks[0, 1] < 0.001  # the soft probe agrees
    # asked for the verifier alone, no second look is taken
    face_only, none = verifier.judge(data.astronaut(), [astronaut_points], look=False)
    assert np.isnan(none).all() and face_only[0] == pytest.approx(her_face[0])


def test_a_face_the_second_look_rules_out_gets_no_mask():
    class Looks:
        def __init__(self, look: float) -> None:
            self.look = look

        def judge(self, image_rgb, faces, scores=None):
            return np.ones(len(faces), np.float32), np.full((len(faces), 2), self.look, np.float32)

    with pytest.raises(NoFaceFoundError):
        FaceMasker(verifier=Looks(0.0001)).find_faces(data.astronaut(), Mode.FACES)
    assert len(FaceMasker(verifier=Looks(0.5)).find_faces(data.astronaut(), Mode.FACES)) == 1


def test_the_gate_reads_the_second_look_and_nan_means_none():
    gate = FaceGate(min_look=0.01)
    seen = dict(score=0.99, spread=0.13, shape_error=0.02, skin=0.9, eyes_px=40.0, face=0.9)
    assert gate.keeps(FaceEvidence(**seen, look=0.5))
    assert not gate.keeps(FaceEvidence(**seen, look=0.001))
    assert gate.keeps(FaceEvidence(**seen))  # no second look: the other evidence decides
    sharp = FaceGate(min_look_sharp=0.01)
    assert not sharp.keeps(FaceEvidence(**seen, look=0.5, look_sharp=0.001))
    assert sharp.keeps(FaceEvidence(**seen, look=0.5))  # a soft crop: the soft probe decides


def test_a_face_out_of_focus_is_not_asked_of_the_sharp_probe(verifier, astronaut_points):
    crop = aligned(data.astronaut(), astronaut_points)
    soft = cv2.GaussianBlur(crop, (0, 0), 2.0)
    assert sharpness(crop[None])[0] >= SHARP > sharpness(soft[None])[0]
    looks = verifier.look_of_crops(np.stack([crop, soft]))
    assert np.isfinite(looks[0]).all() and np.isnan(looks[1, 0]) and looks[1, 1] > 0.5


def test_the_second_look_is_not_asked_where_detector_and_verifier_are_sure(
    verifier, astronaut_points
):
    image = data.astronaut()
    asked = verifier.judge(image, [astronaut_points])[1]
    sure = verifier.judge(image, [astronaut_points], scores=[0.9999])[1]
    doubted = verifier.judge(image, [astronaut_points], scores=[0.9])[1]
    assert np.isfinite(asked).all() and np.isnan(sure).all()
    assert np.allclose(doubted, asked)
