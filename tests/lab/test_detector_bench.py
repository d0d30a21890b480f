"""lab.detector_bench: group photos under each face condition keep their layout."""

from __future__ import annotations

import numpy as np
import pytest

from lab import detector_bench
from lab.detector_bench import FACE_CONDITIONS, blurred, make_photo
from training.data import load_splits


def test_a_blurred_face_loses_its_detail():
    image = np.random.default_rng(0).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    points = np.zeros((68, 2), np.float32)
    points[36], points[45] = (30, 50), (90, 50)  # eyes 60 px apart: sigma 6
    out, same = blurred(image, points, np.random.default_rng(0))
    assert same is points
    assert out.std() < 0.3 * image.std()


@pytest.mark.parametrize("condition", [c for c in FACE_CONDITIONS if c != "clean"])
def test_each_condition_changes_the_faces_not_the_layout(tiny_dataset, condition):
    samples = load_splits(tiny_dataset).val
    clean, clean_faces, clean_taken = make_photo(samples, np.random.default_rng(3))
    changed, faces, taken = make_photo(
        samples, np.random.default_rng(3), condition=condition,
        change_rng=np.random.default_rng(1),
    )  # fmt: skip
    assert (taken == clean_taken).all()
    assert len(faces) == len(clean_faces) > 0
    for a, b in zip(faces, clean_faces):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert (changed[taken] != clean[taken]).any()
    assert (changed[~taken] == clean[~taken]).all()


def test_the_bench_reports_each_condition(tiny_dataset, capsys):
    detector_bench.main(
        ["--data", str(tiny_dataset), "--photos", "1", "--faces", "clean", "sunglasses",
         "--json"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "faces sunglasses:" in out and "recall, eyes >= 20 px apart: clean" in out
