"""Geometry with hand-made numbers, and the warp on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from core.api import load_picture
from core.render import warp
from masks import catalog


@pytest.fixture(scope="module")
def template() -> np.ndarray:
    return catalog.template().points.astype(np.float64)


@pytest.fixture(scope="module")
def triangles(template) -> np.ndarray:
    return warp.triangulate(template)


def depth(template: np.ndarray) -> np.ndarray:
    """A rough depth for each template point: a head as an ellipsoid, the nose standing out."""
    lo, hi = template.min(axis=0), template.max(axis=0)
    u = (template - lo) / (hi - lo)  # face units
    z = 0.55 * np.sqrt(np.clip(1 - ((u[:, 0] - 0.5) / 0.56) ** 2, 0, 1))
    z[27:31] += [0.04, 0.09, 0.14, 0.2]  # the nose line rises to the tip
    z[31:36] += [0.08, 0.1, 0.12, 0.1, 0.08]
    return z * (hi - lo)[0]


def turned(template: np.ndarray, yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """The template seen with the head turned by ``yaw_deg`` (and nodded by ``pitch_deg``)."""
    z = depth(template)
    c = template.mean(axis=0)
    x, y = template[:, 0] - c[0], template[:, 1] - c[1]
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    x, z = x * np.cos(a) + z * np.sin(a), -x * np.sin(a) + z * np.cos(a)
    y = y * np.cos(b) - z * np.sin(b)
    return np.stack([x + c[0], y + c[1]], axis=1)


def test_triangulation_covers_the_mask_and_is_counter_clockwise(template, triangles):
    ctrl = warp.control_points(template)
    areas = warp.signed_areas(ctrl, triangles)
    assert (areas > 0).all()
    assert len(np.unique(triangles)) == len(ctrl)  # every control point is used
    # The triangles tile the hull of the outer ring without overlap.
    outer = ctrl[len(warp.RING) + len(warp.INNER) :]
    hull = 0.5 * abs(
        np.dot(outer[:, 0], np.roll(outer[:, 1], 1)) - np.dot(outer[:, 1], np.roll(outer[:, 0], 1))
    )
    assert areas.sum() == pytest.approx(hull, rel=1e-6)


def test_every_opaque_mask_pixel_lies_inside_the_triangulation(template, triangles):
    import cv2

    ctrl = warp.control_points(template)
    t = catalog.template()
    covered = np.zeros((t.height, t.width), np.uint8)
    for tri in triangles:
        cv2.fillConvexPoly(covered, np.round(ctrl[tri]).astype(np.int32), 1)
    for spec in catalog.masks():
        alpha = cv2.imread(str(spec.path), cv2.IMREAD_UNCHANGED)[..., 3]
        outside = (alpha > 8) & (covered == 0)
        assert outside.sum() < 0.001 * (alpha > 8).sum(), spec.name


@pytest.mark.parametrize("yaw", [-45, -30, -15, 0, 15, 30, 45])
@pytest.mark.parametrize("pitch", [-20, 0, 20])
def test_no_folds_when_the_head_turns(template, triangles, yaw, pitch):
    points = turned(template, yaw, pitch)
    areas = warp.signed_areas(warp.control_points(points), triangles)
    assert (areas > 0).all(), f"{(areas <= 0).sum()} triangles fold at yaw {yaw}"


def test_unfold_leaves_good_points_alone_and_repairs_folds(template, triangles):
    src = warp.control_points(template)
    dst = src * 0.5 + [30, 40]
    assert np.array_equal(warp.unfold(src, dst, triangles), dst)
    bad = template.copy()
    bad[33] = bad[0] + [-5, 0]  # the nose thrown past the jaw: many triangles flip
    dst = warp.control_points(bad)
    assert (warp.signed_areas(dst, triangles) <= 0).any()
    fixed = warp.unfold(src, dst, triangles)
    assert (warp.signed_areas(fixed, triangles) > 0).all()


def test_identity_warp_reproduces_the_mask(template):
    """Landmarks at the template positions put the picture back where it was drawn."""
    picture = load_picture(catalog.get(4))
    t = catalog.template()
    overlay = warp.warp_mask(picture, template, (t.height, t.width))
    assert overlay is not None and overlay.scale == 1.0
    (x0, y0, x1, y1), warped = overlay.box, overlay.rgba
    original = picture.levels[0][y0:y1, x0:x1]
    inner = original[..., 3] > 0.99
    assert np.abs(warped[..., 3][inner] - 1).max() < 0.02
    assert np.abs(warped[..., :3] - original[..., :3])[inner].mean() < 0.01


def test_a_face_larger_than_the_mask_picture_is_warped_at_its_resolution(
    astronaut, astronaut_points
):
    """A 15x close-up masks like the 1x photo scaled up, with the overlay at picture size."""
    import cv2

    picture = load_picture(catalog.get(5))
    crop, points = astronaut[60:210, 150:300], astronaut_points - [150, 60]
    big = cv2.resize(crop, (2250, 2250), interpolation=cv2.INTER_LINEAR)
    big_points = (points + 0.5) * 15 - 0.5
    overlay = warp.warp_mask(picture, big_points, big.shape[:2])
    assert overlay is not None and overlay.scale < 1.0
    assert overlay.rgba.shape[1] < 0.8 * (overlay.box[2] - overlay.box[0])
    out = warp.apply_masks(big, picture, [big_points])
    small = warp.apply_masks(crop, picture, [points])
    down = cv2.resize(out, (150, 150), interpolation=cv2.INTER_AREA)
    mouth = np.round(points[48:60]).astype(int)
    x0, y0 = mouth.min(axis=0)
    x1, y1 = mouth.max(axis=0)
    diff = np.abs(down[y0:y1, x0:x1].astype(int) - small[y0:y1, x0:x1])
    assert diff.mean() < 12 and not np.array_equal(out, big)


def test_mask_follows_a_moved_face(astronaut, astronaut_points):
    picture = load_picture(catalog.get(2))
    a = warp.apply_masks(astronaut, picture, [astronaut_points])
    shifted = np.roll(astronaut, 40, axis=1)
    b = warp.apply_masks(shifted, picture, [astronaut_points + [40, 0]])
    assert np.abs(np.roll(a, 40, axis=1)[:, 60:-60].astype(int) - b[:, 60:-60]).mean() < 1.0


def test_faces_outside_the_photo_or_degenerate_are_skipped(astronaut, astronaut_points):
    picture = load_picture(catalog.get(1))
    for points in (astronaut_points + [5000, 0], np.zeros((68, 2)), np.full((68, 2), np.nan)):
        assert np.array_equal(warp.apply_masks(astronaut, picture, [points]), astronaut)
    half_out = astronaut_points - [220, 0]  # the face's left half is off the photo
    out = warp.apply_masks(astronaut, picture, [half_out])
    assert out.shape == astronaut.shape and not np.array_equal(out, astronaut)


def test_mask_takes_the_photo_light(astronaut, astronaut_points):
    """A white mask on a dim photo comes out dim; on the lit photo it stays bright."""
    picture = load_picture(catalog.get(2))
    mouth = np.round(astronaut_points[[51, 57, 30]].mean(axis=0)).astype(int)
    bright = warp.apply_masks(astronaut, picture, [astronaut_points])
    dim_photo = (astronaut * 0.4).astype(np.uint8)
    dim = warp.apply_masks(dim_photo, picture, [astronaut_points])
    x, y = mouth
    b = bright[y - 4 : y + 5, x - 4 : x + 5].mean()
    d = dim[y - 4 : y + 5, x - 4 : x + 5].mean()
    assert b > 170 and d < 0.65 * b


def test_no_bright_halo_around_a_dark_mask(astronaut_points):
    """On a flat grey photo, a black mask may shade the photo but never lighten it."""
    grey = np.full((512, 512, 3), 128, np.uint8)
    out = warp.apply_masks(grey, load_picture(catalog.get(4)), [astronaut_points])
    assert out.max() <= 130
    assert (out < 60).sum() > 2000  # the mask is there


def test_mask_takes_the_colour_of_the_light(astronaut, astronaut_points):
    """Under warm light a white mask turns warm; the orange suit alone does not tint it."""
    exposure, tint = warp.scene_light(astronaut)
    assert exposure == pytest.approx(1.0) and np.abs(tint - 1).max() < 0.03
    warm = np.clip(astronaut * np.array([1.0, 0.85, 0.6]), 0, 255).astype(np.uint8)
    _, warm_tint = warp.scene_light(warm)
    assert warm_tint[0] > 1.05 and warm_tint[2] < 0.9
    picture = load_picture(catalog.get(2))
    out = warp.apply_masks(warm, picture, [astronaut_points])
    x, y = np.round(astronaut_points[[51, 57, 30]].mean(axis=0)).astype(int)
    r, g, b = out[y - 4 : y + 5, x - 4 : x + 5].reshape(-1, 3).mean(axis=0)
    assert r > g > b and r - b > 25


def test_shape_error_tells_faces_from_twisted_points(template):
    assert warp.shape_error(template * 0.3 + [5, 9], template) < 1e-6
    for yaw in (-45, 30, 45):
        assert warp.shape_error(turned(template, yaw, 20), template) < 0.08
    rng = np.random.default_rng(3)
    twisted = template + rng.normal(0, 0.12 * np.ptp(template[:, 0]), template.shape)
    assert warp.shape_error(twisted, template) > 0.1


def test_the_percentile_by_partition_is_numpys():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 1000, 6543):
        values = rng.random(n).astype(np.float32)
        for q in (0, 50, 85, 100):
            assert warp.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
