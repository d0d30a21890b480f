"""lab.path_speed: the per-photo comparison of two checkouts."""

from __future__ import annotations

import numpy as np
import pytest

from lab import path_speed
from tests.conftest import SHARED_DATA as DATA


def test_the_ratio_is_of_the_means_per_set() -> None:
    ours = [dict.fromkeys(path_speed.SETS, 10.0), dict.fromkeys(path_speed.SETS, 12.0)]
    theirs = [dict.fromkeys(path_speed.SETS, 10.0), dict.fromkeys(path_speed.SETS, 10.0)]
    theirs[1]["masked"] = 12.0
    got = path_speed.ratios(ours, theirs)
    assert got["group"] == pytest.approx(1.1) and got["masked"] == pytest.approx(1.0)


@pytest.mark.skipif(not DATA.exists(), reason="the face-keypoints data set is not here")
def test_the_sets_hold_the_photos_they_name() -> None:
    sets = path_speed.photo_sets(DATA, None)
    assert set(sets) == set(path_speed.SETS)
    assert [len(sets[k]) for k in ("group", "one-face", "masked")] == [15, 40, 90]
    assert 20 <= len(sets["faceless"]) <= 30
    assert all(im.dtype == np.uint8 and im.ndim == 3 for s in sets.values() for im in s)
    assert sets["group"][0].shape[:2] == (960, 1280)
