import json

import numpy as np

from core.keypoints.face68 import FLIP_PERMUTATION, OUTER_EYE_CORNERS
from lab.mirror import fit_shift, main, mirror_points
from training.augment import MIRROR_SHIFT


def test_mirror_points_pairs_partners_and_undoes_itself():
    rng = np.random.default_rng(0)
    points = rng.uniform(10, 90, (68, 2))
    once = mirror_points(points, 100)
    # the mirror image's right outer eye corner is the photo's left one, at 99 - x
    right, left = OUTER_EYE_CORNERS
    np.testing.assert_allclose(once[right], [99 - points[left, 0], points[left, 1]])
    np.testing.assert_allclose(once[FLIP_PERMUTATION][:, 1], points[:, 1])
    np.testing.assert_allclose(mirror_points(once, 100), points)


def test_fit_shift_recovers_pixels_and_fraction_of_the_width():
    rng = np.random.default_rng(1)
    widths = rng.uniform(100, 400, 5000)
    dx = -0.85 - 0.0093 * widths + rng.normal(0, 1.5, widths.shape)
    px, frac = fit_shift(dx, widths)
    assert abs(px + 0.85) < 0.2 and abs(frac + 0.0093) < 0.001


def test_the_training_shift_is_the_data_sets(shared_data, capsys):
    """The shipped model, reading mirrored training photos, finds MIRROR_SHIFT again."""
    main(["--data", str(shared_data), "--limit", "80", "--json"])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n"] == 80
    assert abs(res["shift_frac_of_width"] + MIRROR_SHIFT[1]) < 0.003, res
    # mirrored straight, the labels are far off; shifted, most of that is gone
    assert res["nme_mirrored_shifted"] < 0.7 * res["nme_mirrored_straight"], res
