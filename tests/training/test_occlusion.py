"""Occlusion augmentation (training.occlusion) on the real astronaut, and in the batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from core.keypoints.face68 import EYES, JAW, MOUTH
from masks import catalog
from tests.core.conftest import ASTRONAUT_MARKS, fit_template
from training import occlusion
from training.augment import AugmentConfig, Augmenter
from training.damage import CONDITIONS


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return fit_template(ASTRONAUT_MARKS, catalog.template().points).astype(np.float32)


def changed_share(before: np.ndarray, after: np.ndarray, pts: np.ndarray) -> float:
    """The share of the pixels in the box of ``pts`` (2 px out) that changed by > 12."""
    x0, y0 = np.floor(pts.min(0) - 2).astype(int)
    x1, y1 = np.ceil(pts.max(0) + 2).astype(int)
    diff = np.abs(before[y0:y1, x0:x1].astype(int) - after[y0:y1, x0:x1].astype(int))
    return float((diff > 12).any(axis=2).mean())


# (occluder, a region it must cover, a region it must leave alone)
WHERE = {
    "cloth": (MOUTH, EYES),
    "respirator": (MOUTH, EYES),
    "ours": (MOUTH, EYES),
    "sunglasses": (EYES, MOUTH),
    "hand": (MOUTH, EYES),
    "chin-cut": ([8], EYES),  # the chin point, below the cut
    "patterned": (MOUTH, EYES),
    "respirator-shapes": (MOUTH, EYES),
    "scarf": (MOUTH, EYES),
}


@pytest.mark.parametrize("name", sorted(occlusion.OCCLUDERS))
def test_every_occluder_keeps_the_shape_and_labels_and_covers_what_it_says(astronaut, points, name):
    rng = np.random.default_rng(3)
    before = astronaut.copy()
    out = occlusion.OCCLUDERS[name](astronaut, points, rng)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    assert np.array_equal(astronaut, before)  # the input is left alone
    assert not np.array_equal(out, astronaut)
    if name in WHERE:
        covered, spared = WHERE[name]
        assert changed_share(astronaut, out, points[covered]) > 0.6, name
        assert changed_share(astronaut, out, points[spared]) < 0.05, name


def test_a_cut_blanks_the_rows_past_the_frame_and_keeps_the_rest(astronaut, points):
    out = occlusion.chin_cut(astronaut, points, np.random.default_rng(0))
    rows = np.flatnonzero(out.reshape(out.shape[0], -1).any(1))
    cut = rows.max() + 1
    assert points[MOUTH, 1].max() - 0.1 * 40 < cut < points[JAW, 1].max()
    assert np.array_equal(out[:cut], astronaut[:cut]) and not out[cut:].any()
    out = occlusion.forehead_cut(astronaut, points, np.random.default_rng(0))
    first = np.flatnonzero(out.reshape(out.shape[0], -1).any(1)).min()
    assert 0 < first < points[EYES, 1].mean()
    assert not out[:first].any() and np.array_equal(out[first:], astronaut[first:])


def test_occlude_draws_by_weight_and_refuses_unknown_names(astronaut, points):
    rng = np.random.default_rng(0)
    names = [occlusion.occlude(astronaut, points, rng, {"bar": 1, "dark": 3})[1] for _ in range(40)]
    assert set(names) == {"bar", "dark"} and names.count("dark") > names.count("bar")
    with pytest.raises(ValueError, match="unknown occluders"):
        occlusion.occlude(astronaut, points, rng, {"balaclava": 1.0})


def test_the_held_out_conditions_are_real_robustness_conditions():
    keys = {c.key for c in CONDITIONS}
    assert set(occlusion.HELD_OUT) <= keys


def test_a_batch_carries_each_crop_with_and_without_its_occluder(astronaut, points):
    canvas = np.zeros((2, 600, 600, 3), np.uint8)
    canvas[:, :512, :512] = astronaut
    pts = np.stack([points, points])
    sizes = np.array([[512, 512], [512, 512]])
    still = dict(brightness=0, contrast=0, saturation=0, p_grey=0, p_blur=0, p_jpeg=0, noise=0)
    face = dict(p_detector=1.0, p_whole=0.0, rotation=0.0)
    cfg = AugmentConfig(p_occlude=1.0, occluders={"sunglasses": 1.0}, **face, **still)
    batch = Augmenter(canvas, pts, sizes, 96, cfg, "cpu", 0).batch(np.arange(2))
    assert batch.x.shape == batch.clean.shape == (2, 3, 96, 96)
    same = torch.isclose(batch.x, batch.clean, atol=1e-3).all(1).float().mean((1, 2))
    # sunglasses cover a band of the crop, the rest is the very same crop
    assert ((same > 0.6) & (same < 0.98)).all(), same
    # without an occluder or colour changes, the clean crop is the crop
    plain = Augmenter(canvas, pts, sizes, 96, AugmentConfig(**still), "cpu", 0).batch(np.arange(2))
    torch.testing.assert_close(plain.x, plain.clean, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["patterned", "respirator-shapes", "scarf"])
def test_the_wider_round_covers_the_mouth_and_never_the_eyes_whatever_it_draws(
    astronaut, points, name
):
    # release 8's occluders draw shapes, sizes and patterns at random: over many draws the
    # mouth is hidden and the eyes (and so the labels' anchor) never are
    for seed in range(12):
        out = occlusion.OCCLUDERS[name](astronaut, points, np.random.default_rng(seed))
        assert changed_share(astronaut, out, points[EYES]) < 0.05, (name, seed)
        assert changed_share(astronaut, out, points[MOUTH]) > 0.3, (name, seed)


def test_the_wider_weights_name_every_new_occluder_and_keep_the_held_out_ones_out():
    assert set(occlusion.WIDER_WEIGHTS) == set(occlusion.OCCLUDERS)
    assert not any(k.split("/")[-1] in occlusion.OCCLUDERS for k in occlusion.HELD_OUT)


def test_threads_draw_the_same_batch_for_the_same_seed(astronaut, points):
    canvas = np.zeros((4, 520, 520, 3), np.uint8)
    canvas[:, :512, :512] = astronaut
    pts = np.stack([points] * 4)
    sizes = np.array([[512, 512]] * 4)
    cfg = AugmentConfig(p_occlude=1.0, occluders=dict(occlusion.WIDER_WEIGHTS), draw_threads=3)
    one = Augmenter(canvas, pts, sizes, 96, cfg, "cpu", 5).batch(np.arange(4))
    two = Augmenter(canvas, pts, sizes, 96, cfg, "cpu", 5).batch(np.arange(4))
    assert torch.equal(one.x, two.x) and torch.equal(one.clean, two.clean)
    assert not torch.equal(one.x, one.clean)  # drawn on every crop
