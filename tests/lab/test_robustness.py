"""Damaged faces (training.damage) on the real astronaut, and facemask-robustness end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

from core.keypoints.verifier import VERIFIER_ONNX
from core.weightfiles import WEIGHTS_DIR
from lab import robustness
from masks import catalog
from tests.core.conftest import ASTRONAUT_MARKS, fit_template
from training import damage


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    """Her 68 points from the hand marks (good to a few pixels)."""
    return fit_template(ASTRONAUT_MARKS, catalog.template().points)


def changed(before: np.ndarray, after: np.ndarray, threshold: int = 12) -> np.ndarray:
    """(H, W) pixels that moved by more than ``threshold`` in some channel."""
    return (np.abs(before.astype(int) - after.astype(int)) > threshold).any(axis=2)


def box_of(points: np.ndarray, pad: float, shape) -> tuple[slice, slice]:
    x0, y0 = np.floor(points.min(0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(0) + pad).astype(int)
    return slice(max(y0, 0), min(y1, shape[0])), slice(max(x0, 0), min(x1, shape[1]))


def outside(mask: np.ndarray, region: tuple[slice, slice]) -> np.ndarray:
    rest = mask.copy()
    rest[region] = False
    return rest


@pytest.mark.parametrize("condition", damage.CONDITIONS, ids=lambda c: c.key)
def test_every_condition_keeps_the_labels_and_its_inputs(astronaut, points, condition):
    image, pts = astronaut.copy(), points.copy()
    out, out_pts = damage.damaged(condition, image, pts, seed=3, index=7)
    assert np.array_equal(image, astronaut) and np.array_equal(pts, points)  # inputs untouched
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out_pts.shape == (68, 2)
    if condition.name == "forehead-cut":  # the same points, in the cut image's pixels
        cut = astronaut.shape[0] - out.shape[0]
        assert np.allclose(out_pts, points - [0, cut])
    else:
        assert np.allclose(out_pts, points)
    again, _ = damage.damaged(condition, astronaut, points, seed=3, index=7)
    assert np.array_equal(out, again)  # one seed, one photo
    if condition.name != "clean":
        assert out.shape != astronaut.shape or not np.array_equal(out, astronaut)


@pytest.mark.parametrize("key", ["sunglasses/opaque", "sunglasses/mirror"])
def test_sunglasses_cover_the_eyes_and_nothing_below_the_nose(astronaut, points, key):
    (condition,) = damage.select([key])
    out, _ = damage.damaged(condition, astronaut, points)
    moved = changed(astronaut, out)
    for eye in (points[36:42], points[42:48]):
        ys, xs = box_of(eye, 0, astronaut.shape)
        assert moved[ys, xs].mean() > 0.9  # the eye is behind the lens
    assert not moved[int(points[33, 1]) + 3 :].any()  # below the nose: untouched
    assert not outside(moved, box_of(points[:27], 10, astronaut.shape)).any()


@pytest.mark.parametrize(
    "key",
    [
        "worn-mask/cloth-plain",
        "worn-mask/cloth-striped",
        "worn-mask/cloth-printed",
        "worn-mask/respirator",
        "worn-mask/ours",
    ],
)
def test_a_worn_mask_covers_nose_bottom_to_chin_and_leaves_the_eyes(astronaut, points, key):
    (condition,) = damage.select([key])
    out, _ = damage.damaged(condition, astronaut, points, index=1)
    moved = changed(astronaut, out)
    ys, xs = box_of(points[48:68], 0, astronaut.shape)
    assert moved[ys, xs].mean() > 0.9  # the mouth is under the mask
    assert moved[round(points[33, 1]), round(points[33, 0])]  # so is the nose's base
    assert moved[round(points[8, 1]) - 3, round(points[8, 0])]  # and the chin
    eyes_top = int(points[36:48, 1].max()) + 2
    assert not moved[:eyes_top].any()  # the eyes and everything above: untouched
    assert not outside(moved, box_of(points, 0.6 * np.ptp(points[:, 0]), out.shape)).any()


@pytest.mark.parametrize("key", ["occluder/hand", "occluder/cup"])
def test_a_hand_or_cup_covers_the_mouth_and_leaves_the_eyes(astronaut, points, key):
    (condition,) = damage.select([key])
    out, _ = damage.damaged(condition, astronaut, points, index=2)
    moved = changed(astronaut, out)
    mouth = np.round(points[[48, 51, 54, 57, 62, 66]]).astype(int)
    assert moved[mouth[:, 1], mouth[:, 0]].all()
    assert not moved[: int(points[36:48, 1].max()) + 2].any()


def test_chin_cut_leaves_the_chin_outside_the_image(astronaut, points):
    for key in ("chin-cut/below-mouth", "chin-cut/mid-chin"):
        (condition,) = damage.select([key])
        out, pts = damage.damaged(condition, astronaut, points)
        assert out.shape[1:] == astronaut.shape[1:]
        assert np.array_equal(out, astronaut[: out.shape[0]])  # a cut, nothing redrawn
        assert pts[48:68, 1].max() < out.shape[0]  # the mouth is in
        assert pts[8, 1] >= out.shape[0]  # the chin is out, still labelled
        assert pts[8, 1] - pts[57, 1] < 2.5 * (out.shape[0] - pts[57, 1]) + 60


def test_forehead_cut_starts_just_above_the_brows(astronaut, points):
    (tight,) = damage.select(["forehead-cut/above-brows"])
    (through,) = damage.select(["forehead-cut/through-brows"])
    out, pts = damage.damaged(tight, astronaut, points)
    assert 0 <= pts[17:27, 1].min() < 10  # the brows just inside
    cut = astronaut.shape[0] - out.shape[0]
    assert np.array_equal(out, astronaut[cut:])
    out, pts = damage.damaged(through, astronaut, points)
    assert pts[17:27, 1].min() < 0 < pts[36:48, 1].min()  # brows cut, eyes in


def test_dark_jpeg_and_low_resolution_change_the_whole_photo_the_right_way(astronaut, points):
    lum = lambda im: float(im.astype(float).mean())  # noqa: E731
    detail = lambda im: float(np.abs(np.diff(im.astype(float), axis=1)).mean())  # noqa: E731
    dim, night = (
        damage.damaged(c, astronaut, points)[0] for c in damage.select(["dark/dim", "dark/night"])
    )
    assert lum(night) < lum(dim) < 0.8 * lum(astronaut)
    (boosted,) = damage.select(["dark/night-boosted"])
    noisy = damage.damaged(boosted, astronaut, points)[0]
    assert detail(noisy) > detail(astronaut)  # the boost amplifies the sensor's noise
    (q15,) = damage.select(["jpeg/q15"])
    blocky = damage.damaged(q15, astronaut, points)[0]
    assert 1.0 < np.abs(blocky.astype(float) - astronaut).mean() < 12
    (low,) = damage.select(["lowres/eyes18"])
    soft = damage.damaged(low, astronaut, points)[0]
    assert detail(soft) < 0.7 * detail(astronaut)
    eyes = np.linalg.norm(points[45] - points[36])
    (big,) = damage.select(["lowres/eyes24"])
    tiny = points * (20 / eyes)  # a face already smaller than 24 px: left alone
    assert np.array_equal(damage.damaged(big, astronaut, tiny)[0], astronaut)


def test_conditions_are_chosen_by_name_or_variant():
    assert [c.key for c in damage.select(["jpeg"])] == ["jpeg/q35", "jpeg/q25", "jpeg/q15"]
    assert [c.key for c in damage.select(["dark/night", "clean"])] == ["dark/night", "clean"]
    with pytest.raises(ValueError, match="unknown condition 'fog'.*worn-mask"):
        damage.select(["fog"])


def test_robustness_command_prints_the_fields_per_condition(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "robustness.json"
    robustness.main(
        [
            "--data",
            str(tiny_dataset),
            "--conditions",
            "clean",
            "chin-cut/below-mouth",
            "--json",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out.splitlines()
    lines = [json.loads(line) for line in printed if line.startswith("{")]
    assert [r["condition"] for r in lines] == ["clean", "chin-cut/below-mouth"]
    saved = json.loads(out.read_text())["conditions"]
    for r in lines:
        # the 2 validation people's 8 images (training/ and test/), never the 4 others'
        assert r["n"] == 8
        assert {"nme_mean", "nme_median", "fail_0.10", "missed"} <= r.keys()
        assert 0 <= r["missed"] <= r["n"]
        assert r["fail_0.10"] >= r["missed"] / r["n"]  # a miss is a failure
        assert saved[r["condition"]]["n"] == 8
    assert any(line.startswith("clean ") for line in printed)  # the table


def test_spread_subset_takes_every_person_not_the_first_ones():
    items = list(range(100))
    assert robustness.spread_subset(items, 5) == [0, 25, 50, 74, 99]
    assert robustness.spread_subset(items, None) == items


def test_several_weights_are_compared_on_the_same_faces(tmp_path, capsys, monkeypatch):
    # the real astronaut, searched for once per condition, read by the shipped release and
    # by a random network: the same search (misses), each model's own points
    import cv2
    from skimage import data

    from core.detection.registry import default_detector
    from masks import catalog
    from tests.core.conftest import ASTRONAUT_MARKS, fit_template
    from training.data import Sample
    from training.model import KeypointNet, ModelConfig, save_weights
    from training.predictor import load_predictor

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), data.astronaut()[:, :, ::-1])
    truth = fit_template(ASTRONAUT_MARKS, catalog.template().points).astype(np.float32)
    random = tmp_path / "random.pt"
    save_weights(KeypointNet(ModelConfig(arch="lite0")), random, epoch=0)
    predictors = [load_predictor(None, threads=1), load_predictor(random, threads=1)]
    conditions = damage.select(["clean", "worn-mask/respirator"])
    shipped, untrained = robustness.compare(
        [Sample(photo, truth)], conditions, predictors, default_detector("auto"), progress=False
    )
    for key in ("clean", "worn-mask/respirator"):
        assert shipped[key]["missed"] == untrained[key]["missed"] == 0
        assert shipped[key]["nme_mean"] < 0.10 < untrained[key]["nme_mean"]
    table = robustness.format_comparison(["shipped", str(random)], [shipped, untrained])
    assert table.splitlines()[0].startswith("NME mean / lost") and "random.pt" in table
    assert table.splitlines()[1].startswith("clean ")


@pytest.mark.skipif(
    not (WEIGHTS_DIR / VERIFIER_ONNX).exists(), reason="no face verifier in this checkout"
)
def test_a_face_found_below_its_detectors_bar_counts_only_where_the_verifier_confirms_it(
    astronaut, points
):
    """``confirmed``: a sure detection always; an unsure one where the shipped verifier
    gives its first look's points FaceGate's ``min_face_unsure`` (her face: yes; the same
    points laid on a grey wall: no)."""
    from core.detection.base import Detection
    from core.detection.boxes import FaceBox
    from lab.evaluate import confirmed

    box = FaceBox(250.0, 120.0, 200.0)
    grey = np.full_like(astronaut, 128)
    assert confirmed(Detection(box, 0.99), grey, points)
    assert confirmed(Detection(box, 0.3, unsure=True), astronaut, points)
    assert not confirmed(Detection(box, 0.3, unsure=True), grey, points)
