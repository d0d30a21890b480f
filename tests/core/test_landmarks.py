"""The shipped model on a real face: scikit-image's astronaut (public domain)."""

import numpy as np
import pytest
import torch
from skimage.data import astronaut

from core import runtime
from core.detection.base import Detection, FaceDetector
from core.detection.boxes import FaceBox
from core.detection.haar import HaarFaceDetector
from core.detection.registry import default_detector
from core.keypoints import face68
from core.keypoints.landmarks import KeypointPredictor, shipped_release
from core.keypoints.preprocess import reorient
from core.results import Mode
from training.export import export, member_models, quantize
from training.model import (
    KeypointEnsemble,
    ModelConfig,
    build_model,
    describe,
    load_weights,
    save_weights,
)
from training.predictor import optimized, torch_predictor, untrained


@pytest.fixture(scope="module")
def predictor() -> KeypointPredictor:
    return KeypointPredictor.load(threads=2)


@pytest.fixture(scope="module")
def float_model():
    """The shipped release's float weights (training's), as a torch model."""
    return load_weights(shipped_release().with_suffix(".pt"))[0]


@pytest.fixture(scope="module")
def face_box() -> FaceBox:
    faces = default_detector().detect(astronaut())
    assert faces, "the detector must find the astronaut's face"
    return faces[0].box


def _check_face(points: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Face-shaped points inside ``box``, the face's square (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    eyes = points[face68.EYES, 1].mean()
    nose_tip = points[[face68.NOSE_TIP, *face68.NOSTRILS], 1].mean()
    mouth = points[face68.MOUTH, 1].mean()
    assert eyes < nose_tip < mouth, (eyes, nose_tip, mouth)
    # the subject's right eye (36-41) is on the image's left
    assert points[face68.RIGHT_EYE, 0].mean() < points[face68.LEFT_EYE, 0].mean()
    centre = points[[*face68.NOSE, *face68.EYES]].mean(0)
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    # eyes are about a third of the face box apart
    eye_dist = np.linalg.norm(points[face68.RIGHT_EYE].mean(0) - points[face68.LEFT_EYE].mean(0))
    assert 0.2 * (x1 - x0) < eye_dist < 0.6 * (x1 - x0)


def test_shipped_weights_name_carries_a_hash_and_load_weights_only():
    path = shipped_release().with_suffix(".pt")
    assert path.name.startswith("keypoints-") and len(path.stem.rsplit("-", 1)[-1]) == 8
    assert runtime.file_sha256(path).startswith(path.stem.rsplit("-", 1)[-1])
    blob = torch.load(path, weights_only=True)
    assert "meta" in blob and ("state_dict" in blob or "members" in blob)
    assert path.stat().st_size < 20e6


def test_detector_is_a_face_detector_and_finds_the_astronaut(face_box):
    det = default_detector()
    assert isinstance(det, FaceDetector)
    # her face is at about x 170-260, y 40-190 in the 512x512 image
    assert 170 < face_box.cx < 260 and 80 < face_box.cy < 170


def test_detector_finds_nothing_in_noise_and_each_face_in_a_group():
    rng = np.random.default_rng(0)
    assert HaarFaceDetector().detect((rng.random((300, 400, 3)) * 255).astype(np.uint8)) == []
    face = astronaut()[20:200, 130:310]
    canvas = np.full((400, 800, 3), 200, np.uint8)
    for x in (20, 300, 580):
        canvas[100:280, x : x + 180] = face
    assert len(default_detector().detect(canvas)) == 3


def test_keypoints_on_the_astronaut_with_the_detector(predictor, face_box):
    points = predictor.predict(astronaut(), [face_box])
    assert points.shape == (1, 68, 2)
    _check_face(points[0], face_box.face_xyxy())


def test_keypoints_on_the_astronaut_as_a_whole_image(predictor, face_box):
    x0, y0, x1, y1 = face_box.face_xyxy()
    pad = 0.8 * (x1 - x0)
    head = astronaut()[int(y0 - pad / 2) : int(y1 + pad), int(x0 - pad) : int(x1 + pad)]
    points = predictor.predict_whole_image(head)
    w = x1 - x0
    _check_face(points, (pad * 0.5, pad * 0.5, pad + w * 1.2, pad * 0.5 + w * 1.5))


def test_a_detection_object_is_plain_data():
    d = Detection(FaceBox(1.0, 2.0, 3.0, 4.0), 0.5)
    assert d.box.angle == 4.0 and d.score == 0.5


def test_weights_round_trip(tmp_path):
    model = build_model(ModelConfig("lite0", "gap", 64))
    save_weights(model, tmp_path / "w.pt", note="test")
    back, meta = load_weights(tmp_path / "w.pt")
    assert meta == {"note": "test"} and back.config == model.config
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(back(x), model(x))


def test_optimised_forward_pass_matches_the_eager_model(float_model, face_box):
    eager = torch_predictor(float_model, backend="torch", optimize=False)
    floats = torch_predictor(float_model)  # folded, on ONNX Runtime
    image = astronaut()
    np.testing.assert_allclose(
        floats.predict(image, [face_box, FaceBox(50, 50, 100)]),
        eager.predict(image, [face_box, FaceBox(50, 50, 100)]),
        atol=1e-2,
    )


def test_the_fast_path_runs_on_onnx_runtime_and_agrees_with_torch(
    predictor, float_model, face_box
):
    # declared dependencies: never silently slow
    assert predictor.backend == "onnxruntime-int8"
    floats = torch_predictor(float_model)
    assert floats.backend == "onnxruntime"
    on_torch = torch_predictor(float_model, backend="torch")
    assert on_torch.backend == "torch"
    image = astronaut()
    truth = on_torch.predict(image, [face_box])
    np.testing.assert_allclose(floats.predict(image, [face_box]), truth, atol=1e-3)
    # int8: the backbone's rounding moves the points a little, never the face
    moved = np.linalg.norm(predictor.predict(image, [face_box]) - truth, axis=-1)
    assert moved.mean() < 0.5 and moved.max() < 2.0, (moved.mean(), moved.max())
    box = face_box
    np.testing.assert_allclose(
        floats.look(image, [box])[1], on_torch.look(image, [box])[1], atol=1e-4
    )
    np.testing.assert_allclose(
        predictor.look(image, [box])[1], on_torch.look(image, [box])[1], atol=3e-3
    )


def test_an_ensemble_averages_its_members_and_round_trips_in_half_precision(tmp_path):
    members = [build_model(ModelConfig(arch, "integral", 64)).eval() for arch in ("lite0", "lite1")]
    ensemble = KeypointEnsemble(members).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        points, spread = ensemble(x, with_spread=True)
        outs = [m(x, with_spread=True) for m in members]
    torch.testing.assert_close(points, (outs[0][0] + outs[1][0]) / 2)
    torch.testing.assert_close(spread, (outs[0][1] + outs[1][1]) / 2)
    assert describe(ensemble) == "lite0 + lite1 64, integral heads"
    save_weights(ensemble, tmp_path / "e.pt", half=True, note="two")
    back, meta = load_weights(tmp_path / "e.pt")
    assert isinstance(back, KeypointEnsemble) and meta == {"note": "two"}
    assert all(p.dtype == torch.float32 for p in back.parameters())
    with torch.no_grad():  # float16 storage rounds the weights, no more
        torch.testing.assert_close(back(x), points, atol=2e-3, rtol=0)
        folded = optimized(back)
        torch.testing.assert_close(folded(x)[0], back(x), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="one input size"):
        KeypointEnsemble([members[0], build_model(ModelConfig("lite0", "integral", 96))])


def test_an_ensembles_members_run_side_by_side_on_onnx_runtime_as_their_mean(tmp_path):
    members = [build_model(ModelConfig(arch, "integral", 64)).eval() for arch in ("lite0", "lite1")]
    ensemble = KeypointEnsemble(members).eval()
    forward = optimized(ensemble)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        points, spread = (t.numpy() for t in forward(x))
    whole = export(forward, 64)
    side_by_side = runtime.OnnxModule(member_models(whole), threads=2)
    in_one = runtime.OnnxModule(whole, threads=1)
    assert side_by_side.names == ["points0", "spread0", "points1", "spread1"] == in_one.names
    assert len(side_by_side.sessions) == 2 and len(in_one.sessions) == 1
    for onnx_forward in (side_by_side, in_one):
        got_points, got_spread = onnx_forward(x.numpy())
        np.testing.assert_allclose(got_points, points, atol=1e-4, rtol=0)
        np.testing.assert_allclose(got_spread, spread, atol=1e-4, rtol=0)
    # the int8 file is exported the same way, cut into members, and runs side by side too
    calibration = np.random.default_rng(0).normal(size=(8, 3, 64, 64)).astype(np.float32)
    quantize(forward, 64, calibration, tmp_path / "e.int8.onnx")
    parts = member_models((tmp_path / "e.int8.onnx").read_bytes())
    quantized = runtime.OnnxModule(parts, threads=2)
    assert len(quantized.sessions) == 2
    assert quantized(x.numpy())[0].shape == points.shape


def test_importing_the_project_shortens_torchs_openmp_spinning_unless_told_otherwise():
    import os
    import subprocess
    import sys

    probe = "import lab.speed, os; print(os.environ['GOMP_SPINCOUNT'])"
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["30000"], run.stderr
    env["GOMP_SPINCOUNT"] = "5"
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["5"], run.stderr


@pytest.mark.parametrize("angle", [45, 60, -60])
def test_a_tilted_head_gets_its_points_where_the_upright_ones_turn_to(predictor, angle):
    """The crop turns with MTCNN's eyes: a head at 60 degrees is as good as an upright one."""
    import cv2

    from core.api import FaceMasker

    masker = FaceMasker(predictor=predictor)
    image = astronaut()
    (upright,) = masker.find_faces(image, Mode.FACES)
    matrix = cv2.getRotationMatrix2D((255.5, 255.5), angle, 1.0)
    tilted = cv2.warpAffine(image, matrix, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    (face,) = masker.find_faces(tilted, Mode.FACES)
    expected = upright.points @ matrix[:, :2].T + matrix[:, 2]
    assert np.linalg.norm(face.points - expected, axis=1).mean() < 4


def test_a_photo_lying_on_its_side_is_masked_where_the_face_is(predictor):
    from core.api import FaceMasker

    masker = FaceMasker(predictor=predictor)
    image = astronaut()
    (upright,) = masker.find_faces(image, Mode.FACES)
    sideways = np.ascontiguousarray(np.rot90(image))  # (x, y) -> (y, 511 - x)
    result = masker.apply(sideways, 1, Mode.FACES)
    assert len(result.faces) == 1 and (result.width, result.height) == (512, 512)
    expected = np.stack([upright.points[:, 1], 511 - upright.points[:, 0]], axis=1)
    assert np.linalg.norm(result.faces[0].points - expected, axis=1).mean() < 4


@pytest.mark.parametrize("angle", [30, 45, 60])
def test_a_tilted_close_up_is_read_with_a_second_look_turned_with_the_eyes(predictor, angle):
    """Within ~1 px of the upright reading turned (an upright second look: 1.4-4.3 px)."""
    import cv2

    head = np.ascontiguousarray(astronaut()[20:220, 120:320])
    upright = predictor.predict_whole_image(head)
    matrix = cv2.getRotationMatrix2D((99.5, 99.5), angle, 1.0)
    tilted = cv2.warpAffine(head, matrix, (200, 200), borderMode=cv2.BORDER_REPLICATE)
    expected = upright @ matrix[:, :2].T + matrix[:, 2]
    assert np.linalg.norm(predictor.predict_whole_image(tilted) - expected, axis=1).mean() < 1.2


@pytest.mark.parametrize("wrong_by", [90.0, 180.0, -90.0])
def test_a_face_the_detector_reports_turned_the_wrong_way_is_read_the_right_way_up(
    predictor, face_box, wrong_by
):
    """MTCNN can be sure of a face on its side or upside down; the model's doubt (the
    spread of its heatmaps) sends it round the quarter turns to the right one."""
    image = astronaut()
    upright = predictor.predict(image, [face_box])[0]
    wrong_box = reorient(face_box, face_box.angle + wrong_by)
    fixed = predictor.predict(image, [wrong_box])[0]
    assert np.linalg.norm(fixed - upright, axis=1).mean() < 4
    # without the check the points are nowhere near the face's own
    trusting = KeypointPredictor(predictor.forward, predictor.size, unsure_spread=np.inf)
    wrong = trusting.predict(image, [wrong_box])[0]
    assert np.linalg.norm(wrong - upright, axis=1).mean() > 30


def test_a_doubted_face_keeps_the_surest_look_the_level_look_from_its_first_look_included():
    """A small face in a big crop (a whole photo) can read doubtful at first and sure once
    looked at level with its first look's eyes; a level look from a wrong quarter turn,
    surer than the first look but less sure than that, must not win."""
    predictor = untrained()
    rng = np.random.default_rng(0)
    first, turn, from_turn, from_first = (rng.uniform(90, 110, (68, 2)) for _ in range(4))
    calls = []

    def look(image, boxes):
        calls.append(len(boxes))
        if len(calls) == 1:  # the first look: doubtful
            return first[None].copy(), np.array([0.24])
        if len(calls) == 2:  # the three quarter turns, all less sure
            return np.stack([turn] * 3), np.array([0.29, 0.25, 0.26])
        # level looks: from the surest turn, then from the first look
        return np.stack([from_turn, from_first]), np.array([0.20, 0.16])

    predictor.look = look
    points = predictor.predict(np.zeros((200, 200, 3), np.uint8), [FaceBox(100, 100, 160)])
    assert calls == [1, 3, 2]
    np.testing.assert_array_equal(points[0], from_first)


def test_the_model_is_sure_of_an_upright_face_and_doubts_it_upside_down(predictor, face_box):
    from core.keypoints.landmarks import UNSURE_SPREAD

    boxes = [reorient(face_box, face_box.angle + a) for a in (0.0, 90.0, 180.0, 270.0)]
    _, spread = predictor.look(astronaut(), boxes)
    assert spread[0] < UNSURE_SPREAD - 0.02  # an upright face takes one look
    # upside down 0.188 on a CPU with AVX-512 VNNI (ONNX Runtime's int8 kernels round
    # differently there), above 0.19 on earlier machines
    assert (spread[1:] > UNSURE_SPREAD + 0.01).all(), spread


def test_a_whole_image_upside_down_is_read_the_right_way_up(predictor):
    head = np.ascontiguousarray(astronaut()[20:220, 120:320])
    upright = predictor.predict_whole_image(head)
    upside_down = predictor.predict_whole_image(np.ascontiguousarray(head[::-1, ::-1]))
    assert np.linalg.norm((199 - upside_down) - upright, axis=1).mean() < 2


def test_a_model_without_heatmaps_reports_no_spread_and_takes_one_look():
    model = build_model(ModelConfig("lite0", "gap", 64)).eval()
    x = torch.randn(2, 3, 64, 64)
    points, spread = model(x, with_spread=True)
    torch.testing.assert_close(points, model(x))
    assert spread.shape == (2,) and torch.isnan(spread).all()
    predictor = torch_predictor(model, refine_whole=False)
    batches, forward = [], predictor.forward
    predictor.forward = lambda x: batches.append(len(x)) or forward(x)
    predictor.predict_whole_image(astronaut())
    assert batches == [1]


def test_a_degenerate_box_gets_points_not_an_error(predictor):
    points = predictor.predict(astronaut(), [FaceBox(100.0, 100.0, 0.0), FaceBox(5.0, 7.0, 1e-9)])
    assert points.shape == (2, 68, 2) and np.isfinite(points).all()


def _stub_look(spread_by_angle: dict[float, float]):
    """A model that reads the face box's angle into its points and doubts by angle."""
    from masks import catalog

    template = catalog.template().points.astype(np.float32) / 10

    def look(faces, boxes):
        points = np.stack([template + b.angle % 360 for b in boxes])
        spread = np.array([spread_by_angle.get(round(b.angle % 360), 0.3) for b in boxes])
        return points, spread.astype(np.float32)

    return look


@pytest.mark.parametrize(
    ("first_spread", "turned_spread", "kept_angle"),
    [
        (0.25, 0.20, 0.0),  # doubtful every way round: upright
        (0.25, 0.12, 180.0),  # sure turned: turned
        (0.19, 0.175, 0.0),  # sure turned, but hardly surer than upright (a masked face)
        (0.21, 0.17, 180.0),  # sure turned and clearly surer
    ],
)
def test_a_turned_reading_is_kept_only_when_the_model_is_sure_of_it(
    first_spread, turned_spread, kept_angle
):
    from dataclasses import replace

    from core.keypoints.landmarks import surest_points

    boxes = [FaceBox(50.0, 50.0, 40.0)]
    look = _stub_look({0: first_spread, 90: 0.3, 180: turned_spread, 270: 0.3})
    points = surest_points(
        look,
        boxes,
        lambda i, degrees: replace(boxes[i], angle=boxes[i].angle + degrees),
        unsure_spread=0.18,
        refine=False,
    )
    template = _stub_look({})([0], [FaceBox(0.0, 0.0, 1.0)])[0][0]
    np.testing.assert_allclose(points[0], template + kept_angle, atol=1e-4)


def test_a_noisy_photo_is_read_blurred_a_little_and_a_clean_one_as_it_is(predictor, face_box):
    from core.detection.turns import NOISY, noise_level
    from core.keypoints.landmarks import detected_points, quieter

    clean = astronaut()
    assert quieter(clean) is clean
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    assert noise_level(noisy) > NOISY
    quiet = quieter(noisy)
    assert noise_level(quiet) < noise_level(noisy) / 2
    expected = detected_points(
        lambda _, crops: predictor.look(quiet, crops), [face_box], predictor.unsure_spread
    )
    np.testing.assert_array_equal(predictor.predict(noisy, [face_box]), expected)
    upright = predictor.predict(clean, [face_box])
    assert np.linalg.norm(expected - upright, axis=2).mean() < 3


def test_a_relooked_face_looks_again_until_its_crop_settles():
    """A look that reads a face half-way from where its crop sits to where the face is (a
    box cut short above a mask): each look comes closer, the looks stop once the crop moves
    less than ``settled`` of its side, never more than ``most``; a face not picked, or not
    doubted, keeps its first look."""
    from core.keypoints.landmarks import level_boxes, relooked

    rng = np.random.default_rng(0)
    truth = np.stack([rng.uniform(100, 200, (68, 2)) for _ in range(3)]).astype(np.float32)
    first = truth.copy()
    first[:, :, 1] = 100 + (truth[:, :, 1] - 100) * 0.5  # squashed up, as over a mask
    calls: list[list[int]] = []

    def look(faces, boxes):
        calls.append(list(faces))
        out = []
        for i, box in zip(faces, boxes, strict=True):
            now = level_boxes(first[i][None] if len(calls) == 1 else seen[i][None])[0]
            assert abs(box.cx - now.cx) < 1e-3 and abs(box.side - now.side) < 1e-3
            seen[i] = (seen[i] + truth[i]) / 2
            out.append(seen[i])
        return np.stack(out), np.zeros(len(faces))

    seen = first.copy()
    spread = np.array([0.2, 0.2, 0.1])  # face 2 is not doubted
    got = relooked(look, first, spread, picked=lambda p: p[0, 0] != first[1, 0, 0], settled=0.02)
    assert calls[0] == [0]  # face 1 not picked, face 2 not doubted
    assert 3 <= len(calls) <= 5  # more than one look, stopped once settled
    assert np.abs(got[0] - truth[0]).mean() < 0.1 * np.abs(first[0] - truth[0]).mean()
    np.testing.assert_array_equal(got[1:], first[1:])

    calls.clear()
    seen = first.copy()
    capped = relooked(look, first, spread, picked=lambda p: True, settled=0.0, most=3)
    assert [len(c) for c in calls] == [2, 2]  # the second and third looks, then it stops
    assert np.abs(capped[0] - truth[0]).mean() > np.abs(got[0] - truth[0]).mean()
