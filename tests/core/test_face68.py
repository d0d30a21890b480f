"""The 68-point scheme's one home: its parts, regions, outlines and mirror pairing."""

import numpy as np

from core.keypoints import face68


def test_the_regions_split_the_68_points_in_order():
    points = [i for part in face68.REGIONS.values() for i in part]
    assert points == list(range(face68.NUM_POINTS))
    assert list(face68.REGIONS) == ["jaw", "brows", "nose", "eyes", "mouth"]


def test_the_outlines_draw_every_point_once_and_close_only_eyes_and_lips():
    drawn = [i for part, _ in face68.OUTLINES for i in part]
    assert sorted(drawn) == list(range(68)) and len(drawn) == 68
    closed = {part for part, is_closed in face68.OUTLINES if is_closed}
    assert closed == {face68.RIGHT_EYE, face68.LEFT_EYE, face68.OUTER_LIPS, face68.INNER_LIPS}


def test_named_points_are_the_ibug_ones():
    assert face68.OUTER_EYE_CORNERS == (36, 45)  # the NME normalisation
    assert (face68.CHIN, face68.NOSE_TOP, face68.NOSE_TIP, face68.NOSE_BASE) == (8, 27, 30, 33)
    assert face68.MOUTH_CORNERS == (48, 54)
    assert (face68.UPPER_LIP_TOP, face68.LOWER_LIP_BOTTOM) == (51, 57)


def test_flip_permutation_is_a_mirror_pairing():
    p = face68.FLIP_PERMUTATION
    assert sorted(p) == list(range(68))
    assert (p[p] == np.arange(68)).all()  # mirroring twice is the identity
    pairs = {0: 16, 8: 8, 17: 26, 27: 27, 30: 30, 31: 35, 36: 45, 39: 42, 48: 54, 51: 51, 60: 64}
    for a, b in pairs.items():
        assert p[a] == b and p[b] == a


def test_the_mirror_image_of_the_mean_face_is_the_mean_face():
    """The catalog's template face is symmetric: mirrored and re-paired it lands on itself."""
    from masks import catalog

    t = catalog.template().points.astype(np.float64)
    mirrored = t[face68.FLIP_PERMUTATION] * [-1, 1]
    mirrored[:, 0] += t[:, 0].min() + t[:, 0].max()
    assert np.abs(mirrored - t).max() < 0.5  # template pixels
