import numpy as np
import pytest

from core.detection.boxes import FaceBox, whole_image_box
from core.keypoints import face68
from core.keypoints.preprocess import (
    apply_matrix,
    box_from_points,
    crop_image,
    crop_matrix,
    fit_similarity,
    points_from_unit,
    points_to_unit,
)


def test_crop_matrix_maps_the_box_onto_the_crop():
    box = FaceBox(50, 40, 20)
    m = crop_matrix(box, 10)
    # the box's corners map to the crop's outer pixel edges (-0.5 and S - 0.5)
    mapped = apply_matrix(m, np.array([[40.0, 30.0], [60.0, 50.0]]))
    np.testing.assert_allclose(mapped, [[-0.5, -0.5], [9.5, 9.5]], atol=1e-9)
    np.testing.assert_allclose(apply_matrix(m, np.array([[50, 40]])), [[4.5, 4.5]])


def test_unit_coordinates_round_trip_to_image_pixels():
    box = FaceBox(120.5, 80.25, 64, angle=17)
    m = crop_matrix(box, 96)
    pts = np.array([[100.0, 70.0], [130.0, 95.0], [120.5, 80.25]])
    unit = points_to_unit(apply_matrix(m, pts), 96)
    np.testing.assert_allclose(points_from_unit(unit, m, 96), pts, atol=1e-9)
    np.testing.assert_allclose(unit[2], [0.5, 0.5])


def test_crop_cuts_the_right_pixels_even_through_the_pyramid():
    img = np.zeros((800, 1000, 3), np.uint8)
    img[395:405, 595:605] = 255  # a bright square centred on (599.5, 399.5)
    for side in (120, 700):  # 700 px into 64: a big downscale goes through pyrDown
        crop, m = crop_image(img, FaceBox(599.5, 399.5, side), 64)
        ys, xs = np.nonzero(crop[..., 0] > 20)
        assert abs(xs.mean() - 31.5) < 1 and abs(ys.mean() - 31.5) < 1


def _whole_photo_pyramid_crop(img: np.ndarray, box: FaceBox, size: int) -> np.ndarray:
    """The crop as it was cut before the pyramid read only the crop's region: the whole
    photo halved while the crop shrinks it more than twice."""
    import cv2

    m = crop_matrix(box, size)
    scale, factor, src = float(np.hypot(*m[0, :2])), 1.0, img
    while scale / factor < 0.5 and min(src.shape[:2]) >= 4:
        src, factor = cv2.pyrDown(src), factor * 0.5
    up = np.array([[1 / factor, 0, (1 / factor - 1) / 2], [0, 1 / factor, (1 / factor - 1) / 2]])
    return cv2.warpAffine(src, m @ np.vstack([up, [0, 0, 1]]), (size, size), flags=cv2.INTER_LINEAR)


def test_the_pyramid_halves_only_the_crops_region_with_the_same_pixels():
    rng = np.random.default_rng(0)
    cases = 0
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(20, 1500, 2))
        img = rng.integers(0, 256, (h, w, 3), np.uint8)
        # faces of 2-40x the crop, anywhere: inside, across an edge, off the photo
        side = float(rng.uniform(400, 400 + 3 * max(h, w)))
        cx, cy = rng.uniform(-0.3, 1.3) * w, rng.uniform(-0.3, 1.3) * h
        box = FaceBox(float(cx), float(cy), side, float(rng.uniform(-180, 180)))
        crop, _ = crop_image(img, box, 192)
        np.testing.assert_array_equal(crop, _whole_photo_pyramid_crop(img, box, 192))
        cases += crop.any()
    assert cases > 30  # most crops show some of the photo


def test_boxes_from_points_a_detectors_box_and_the_whole_image():
    from core.detection.haar import haar_face_box

    pts = np.array([[10.0, 20.0], [50.0, 20.0], [30.0, 60.0]])
    b = box_from_points(pts, scale=1.5)
    assert (b.cx, b.cy, b.side) == (30, 40, 60)
    # a Haar box sits high on the face: the face box moves down from it
    d = haar_face_box(0, 0, 114, 114)
    assert d.cy > 57 and np.isclose(d.side, 160)
    assert np.allclose(d.face_xyxy(), (7, 25, 107, 125))  # the 68-point box's square
    w = whole_image_box(100, 200)
    assert (w.cx, w.cy, w.side) == (99.5, 49.5, 200)


@pytest.mark.parametrize("turn", [90.0, 180.0, -90.0, 30.0])
def test_a_face_box_reoriented_turns_about_the_point_the_detector_saw(turn):
    """A detector's box centres DETECTOR_CENTRE_DY sides above the 68-point box: that point
    stays put when the face turns out to lie another way, and the box's centre moves."""
    from core.detection.boxes import face_axes
    from core.keypoints.preprocess import DETECTOR_CENTRE_DY, reorient

    box = FaceBox(100.0, 80.0, 160.0, 10.0)  # a face of side 100 turned by 10 degrees
    seen = np.array([box.cx, box.cy]) + DETECTOR_CENTRE_DY * 100 * face_axes(10.0)[1]
    turned = reorient(box, 10.0 + turn)
    assert (turned.side, turned.angle) == (160.0, 10.0 + turn)
    again = np.array([turned.cx, turned.cy]) + DETECTOR_CENTRE_DY * 100 * face_axes(turned.angle)[1]
    np.testing.assert_allclose(again, seen, atol=1e-9)
    assert np.hypot(turned.cx - box.cx, turned.cy - box.cy) > 1  # it did move
    back = reorient(turned, 10.0)
    np.testing.assert_allclose([back.cx, back.cy], [box.cx, box.cy], atol=1e-9)


def test_box_from_points_turned_with_the_face_is_the_box_in_the_faces_own_frame():
    from core.keypoints.preprocess import box_from_points, eye_angle

    # a 40 x 20 rectangle of points turned by 30 degrees about (100, 50)
    a = np.radians(30)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    local = np.array([[x, y] for x in (-20, 0, 20) for y in (-10, 10)], np.float64)
    pts = local @ rot.T + (100, 50)
    box = box_from_points(pts, scale=1.0, angle=30.0)
    assert (box.cx, box.cy, box.angle) == pytest.approx((100, 50, 30))
    assert box.side == pytest.approx(40)
    upright = box_from_points(pts, scale=1.0)  # the image-axis box is bigger
    assert upright.side > 40 and upright.angle == 0
    # eyes: the right eye left of the left eye on a face turned by 30 degrees
    face = np.zeros((68, 2))
    face[face68.RIGHT_EYE], face[face68.LEFT_EYE] = (-15, 0), (15, 0)
    assert eye_angle(face @ rot.T) == pytest.approx(30)


def test_normalize_is_imagenet_mean_and_std_in_channel_planes():
    from core.keypoints.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize

    crops = np.random.default_rng(3).integers(0, 256, (2, 7, 5, 3)).astype(np.uint8)
    x = normalize(crops)
    assert x.shape == (2, 3, 7, 5) and x.dtype == np.float32 and x.flags.c_contiguous
    expected = ((crops.astype(np.float64) - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x, expected, atol=1e-5)


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (20, 2))
    angle, scale, shift = np.radians(25), 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    fit = fit_similarity(src, src @ rot.T + shift)
    assert np.allclose(fit[:, :2], rot) and np.allclose(fit[:, 2], shift)
