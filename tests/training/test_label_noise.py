import json

import numpy as np

from training import label_noise
from training.data import load_splits


def _face(rng: np.random.Generator) -> np.ndarray:
    pts = rng.uniform(0, 100, (68, 2))
    pts[36], pts[45] = (30, 40), (70, 40)  # eyes 40 px apart
    return pts


def test_align_undoes_a_similarity_transform():
    rng = np.random.default_rng(0)
    dst = _face(rng)
    angle, scale = np.radians(20), 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = dst @ rot.T + (15, -4)
    np.testing.assert_allclose(label_noise.align(src, dst), dst, atol=1e-9)


def test_middle_residual_is_zero_for_a_moving_rigid_face_and_grows_with_jitter():
    rng = np.random.default_rng(1)
    face = _face(rng)
    moved = face * 1.1 + (5, 3)
    assert label_noise.middle_residual(face, moved, face + (2, 0)) < 1e-9
    small = label_noise.middle_residual(face, moved + rng.normal(0, 0.5, face.shape), face)
    large = label_noise.middle_residual(face, moved + rng.normal(0, 2.0, face.shape), face)
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
    label_noise.main(["--data", str(tiny_dataset), "--json"])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the tiny data set's points carry 1 px of noise each: a few percent of NME
    assert res["clips"] == 4 and 0.01 < res["labels_mean"] < 0.2
