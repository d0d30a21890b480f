import json
from pathlib import Path

import numpy as np
import pytest

from core.keypoints.face68 import OUTER_EYE_CORNERS
from lab import label_noise
from training.data import Sample, load_splits
from training.metrics import interocular, nme


def _face(rng: np.random.Generator) -> np.ndarray:
    pts = rng.uniform(0, 100, (68, 2))
    pts[list(OUTER_EYE_CORNERS)] = (30, 40), (70, 40)  # eyes 40 px apart
    return pts


def test_align_undoes_a_similarity_transform():
    rng = np.random.default_rng(0)
    dst = _face(rng)
    angle, scale = np.radians(20), 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = dst @ rot.T + (15, -4)
    np.testing.assert_allclose(label_noise.align(src, dst), dst, atol=1e-9)


def _middle_residual(before: np.ndarray, middle: np.ndarray, after: np.ndarray) -> float:
    """NME of the middle frame's points against its aligned neighbours' mean."""
    return float(nme(label_noise.neighbours(before, middle, after), middle))


def test_middle_residual_is_zero_for_a_moving_rigid_face_and_grows_with_jitter():
    rng = np.random.default_rng(1)
    face = _face(rng)
    moved = face * 1.1 + (5, 3)
    assert _middle_residual(face, moved, face + (2, 0)) < 1e-9
    small = _middle_residual(face, moved + rng.normal(0, 0.5, face.shape), face)
    large = _middle_residual(face, moved + rng.normal(0, 2.0, face.shape), face)
    # 0.5 px of noise on eyes 44 px apart: about 0.6 px mean error, 1.4% NME
    assert 0.005 < small < 0.03 and 3 < large / small < 5


def test_triplets_are_frames_0_1_2_of_one_clip(tiny_dataset):
    train = load_splits(tiny_dataset).train
    clips = label_noise.triplets(train)
    assert len(clips) == 4  # the training people each have frames 00, 01, 02
    for trio in clips:
        assert [s.path.name[-6:-4] for s in trio] == ["00", "01", "02"]
        assert len({s.person for s in trio}) == 1


def test_command_reports_the_labels_jitter(tiny_dataset, capsys):
    label_noise.main(["--data", str(tiny_dataset), "--split", "train", "--json"])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the tiny data set's points carry 1 px of noise each: a few percent of NME
    assert res["clips"] == 4 and 0.01 < res["labels_mean"] < 0.2


def test_decompose_recovers_noise_model_error_and_motion():
    # synthetic clips with known parts: every frame's labels carry 1.0 px of noise per
    # axis, the face changes shape by 0.6 px between frames, the model errs by 1.5 px
    rng = np.random.default_rng(2)
    sigma, motion, error = 1.0, 0.6, 1.5
    clips, predictions = [], {}
    for k in range(1500):
        face = _face(rng)
        shape = [face + rng.normal(0, motion, face.shape) for _ in range(3)]
        frames = []
        for f, truth in enumerate(shape):
            angle, scale = rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.2)
            cos, sin = np.cos(angle), np.sin(angle)
            rot = scale * np.array([[cos, -sin], [sin, cos]])
            truth = truth @ rot.T + rng.uniform(-20, 20, 2)  # the head moves rigidly too
            s = Sample(Path(f"P_{k}{f}.jpg"), truth + rng.normal(0, sigma, truth.shape))
            predictions[s.path] = truth + rng.normal(0, error, truth.shape)
            frames.append(s)
        clips.append(tuple(frames))
    res = label_noise.measure(clips, lambda s: predictions[s.path])
    # in RMS NME: 2-D noise of sd 1 px is sqrt(2) px RMS over eyes ~40 px apart (x scale)
    eyes = np.mean([interocular(c[1].points) for c in clips])
    for key, px in (("label_noise", sigma), ("model_error", error)):
        expected = np.sqrt(2) * px / eyes
        assert res[key] == pytest.approx(expected, rel=0.12), key
    # motion: the shape change seen by the middle frame, against the mean of two others
    assert res["motion"] == pytest.approx(np.sqrt(2 * 1.5) * motion / eyes, rel=0.3)
    assert res["label_noise"] < res["label_noise_at_most"]
    assert 0.25 < res["noise_share"] < 0.4  # 1 / (1 + 1.5^2) = 0.31


def test_decompose_clips_impossible_values_at_zero():
    split = label_noise.decompose(a=0.001, b=0.01, c=0.0)
    assert split.label_noise == 0.0 and split.motion == 0.0
    assert split.model_error == pytest.approx(np.sqrt(0.001))


def test_command_splits_a_models_error(tiny_dataset, tmp_path, capsys):
    from training.model import ModelConfig, build_model, save_weights

    weights = tmp_path / "w.pt"
    save_weights(build_model(ModelConfig("lite0", "gap", 64)), weights)
    args = ["--data", str(tiny_dataset), "--split", "train", "--model", "--weights", str(weights)]
    label_noise.main([*args, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    assert res["clips"] == 4 and res["model_nme_mean"] > 0
    # an untrained model's error dwarfs the labels' 1 px of noise
    assert res["model_error"] > res["label_noise"] >= 0 and 0 <= res["noise_share"] < 0.5
    assert any(line.startswith("split (RMS)") for line in out)
