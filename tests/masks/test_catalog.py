"""The seven masks: catalog entries, pictures, and where they sit on the template face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.keypoints import face68
from core.render import warp
from lab import draw_masks
from masks import catalog


@pytest.fixture(scope="module")
def pictures() -> dict[int, np.ndarray]:
    return {m.id: cv2.imread(str(m.path), cv2.IMREAD_UNCHANGED) for m in catalog.masks()}


def test_seven_masks_with_names_labels_and_emoji():
    specs = catalog.masks()
    assert [s.id for s in specs] == list(range(1, 8))
    assert len({s.name for s in specs}) == 7 and len({s.label for s in specs}) == 7
    for s in specs:
        assert s.name and 0 < len(s.label) <= 10 and s.emoji and not s.emoji.isascii()
        assert s.button == f"{s.id} {s.emoji} {s.label}"


@pytest.mark.parametrize("bad", [0, 8, -3, True, 1.5, "1", None])
def test_unknown_ids_are_a_plain_lookup_error(bad):
    with pytest.raises(LookupError, match="no mask with id"):
        catalog.get(bad)


def test_the_catalog_imports_nothing_of_the_project():
    """masks/ is data the bot reads without the model: its code imports no other package
    of ours (an unknown id is core.api's to put into a sentence)."""
    import ast
    from pathlib import Path

    ours = {"bot", "core", "serving", "training", "lab", "tests"}
    for path in Path(catalog.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & ours, (path.name, names)


def test_anchors_are_the_points_the_warp_follows():
    for s in catalog.masks():
        assert set(s.anchors) == set(warp.RING) | set(warp.INNER)


def test_pictures_are_large_antialiased_rgba(pictures):
    for mask_id, img in pictures.items():
        assert img is not None and img.ndim == 3 and img.shape[2] == 4, mask_id
        assert img.shape[1] >= 1024
        alpha = img[..., 3]
        edge = ((alpha > 0) & (alpha < 255)).sum()
        assert 0.005 < edge / (alpha == 255).sum() < 0.2  # soft edges, not ragged nor blurred


def test_masks_cover_nose_and_mouth_and_leave_the_eyes_free(pictures):
    points = np.round(catalog.template().points).astype(int)
    for mask_id, img in pictures.items():
        alpha = img[..., 3]
        at = [int(alpha[y, x]) if 0 <= y < alpha.shape[0] else 0 for x, y in points]
        covered = [*face68.MOUTH, *face68.NOSE_BRIDGE[2:], *face68.NOSTRILS[::2], face68.CHIN]
        assert all(at[i] == 255 for i in covered), mask_id
        eyes = np.zeros_like(alpha)
        for part in (face68.RIGHT_EYE, face68.LEFT_EYE):
            hull = cv2.convexHull(points[list(part)])
            cv2.fillConvexPoly(eyes, hull, 1)
        eyes = cv2.dilate(eyes, np.ones((41, 41), np.uint8))  # ~5% of the face's width around them
        assert alpha[eyes > 0].max() == 0, mask_id


def test_template_is_the_symmetric_mean_face(tmp_path):
    rows = []
    rng = np.random.default_rng(0)
    for n in range(3):
        face = catalog.template().points * rng.uniform(0.2, 0.4) + rng.uniform(0, 50, 2)
        rows.append(f"f{n}.jpg," + ",".join(f"{v:.3f}" for v in face.ravel()))
    csv = tmp_path / "k.csv"
    csv.write_text("," + ",".join(map(str, range(136))) + "\n" + "\n".join(rows) + "\n")
    shape = draw_masks.mean_shape(csv)
    assert shape.min() == pytest.approx(0, abs=1e-6) and shape.max() == pytest.approx(1, abs=1e-6)
    mirrored = shape[face68.FLIP_PERMUTATION] * [-1, 1] + [1, 0]
    assert np.allclose(shape, mirrored)
    # Faces that all have the template's shape average to it (in its own box).
    t = catalog.template().points
    assert np.allclose(shape, (t - t.min(axis=0)) / np.ptp(t, axis=0), atol=1e-3)
