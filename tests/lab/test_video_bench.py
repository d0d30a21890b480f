"""The video benchmark's bookkeeping: which face of a frame is the one it measures, and a
one-core run on one core."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lab import video_bench
from lab.video_bench import one_face


def face(x: float, y: float) -> np.ndarray:
    """68 points of a made-up face around (x, y)."""
    rng = np.random.default_rng(int(x + 7 * y))
    return np.array([x, y]) + rng.uniform(-30, 30, (68, 2))


def test_the_face_nearest_its_true_place_is_measured_not_the_first_found():
    her, mirrored = face(320, 300), face(280, 40)  # the clip's border shows her again
    truth = [her + 1, her + 2]
    chosen = one_face([[mirrored, her], [her, mirrored]], near=truth)
    assert all(c is not None and np.allclose(c, her) for c in chosen)


def test_without_truth_the_face_stays_the_one_followed_and_gaps_repeat_it():
    a, b = face(100, 100), face(500, 500)
    chosen = one_face([[a], [b, a + 3], [], [b, a + 5]])
    assert len(chosen) == 4
    assert np.allclose(chosen[1], a + 3) and np.allclose(chosen[2], a + 3)
    assert np.allclose(chosen[3], a + 5)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_the_one_core_run_is_confined_to_one_core():
    seen = subprocess.run(
        [sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"],
        capture_output=True, text=True, check=True, preexec_fn=video_bench.one_core,
    )  # fmt: skip
    assert seen.stdout.strip() == "1"
