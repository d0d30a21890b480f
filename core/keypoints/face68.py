"""The 68-point face scheme (iBUG 300-W, 0-based): the one place that names its points.

The data set, the keypoint model, the metric, the warp and the drawings all number a face's
points this way. "Right" and "left" are the person's own: their right eye (36-41) is on
the image's left in an upright, frontal photo.

Parts are ``range`` objects: they index numpy arrays (``points[EYES]``), concatenate
(``[*JAW, NOSE_TOP]``) and pick single points (``NOSE_BRIDGE[1]``) alike.
"""

from __future__ import annotations

import numpy as np

NUM_POINTS = 68

JAW = range(0, 17)  # from the right ear down to the chin (8) and up to the left ear
RIGHT_BROW = range(17, 22)
LEFT_BROW = range(22, 27)
BROWS = range(17, 27)
NOSE_BRIDGE = range(27, 31)  # from between the eyes down to the tip
NOSTRILS = range(31, 36)  # along the nose's base, right to left
NOSE = range(27, 36)
RIGHT_EYE = range(36, 42)  # clockwise from the outer corner
LEFT_EYE = range(42, 48)  # clockwise from the inner corner
EYES = range(36, 48)
OUTER_LIPS = range(48, 60)  # clockwise from the right corner
INNER_LIPS = range(60, 68)
MOUTH = range(48, 68)

CHIN = JAW[8]
NOSE_TOP = NOSE_BRIDGE[0]
NOSE_TIP = NOSE_BRIDGE[-1]
NOSE_BASE = NOSTRILS[2]
MOUTH_CORNERS = (OUTER_LIPS[0], OUTER_LIPS[6])  # 48, 54
UPPER_LIP_TOP = OUTER_LIPS[3]  # 51
LOWER_LIP_BOTTOM = OUTER_LIPS[9]  # 57

# The outer eye corners: their distance (the inter-ocular distance) normalises NME.
OUTER_EYE_CORNERS = (RIGHT_EYE[0], LEFT_EYE[3])  # 36, 45

# The five regions that reports break the error down by, in the scheme's order.
REGIONS: dict[str, range] = {
    "jaw": JAW,
    "brows": BROWS,
    "nose": NOSE,
    "eyes": EYES,
    "mouth": MOUTH,
}

# The lines a drawing of the face follows: each part and whether it closes on itself.
OUTLINES: tuple[tuple[range, bool], ...] = (
    (JAW, False),
    (RIGHT_BROW, False),
    (LEFT_BROW, False),
    (NOSE_BRIDGE, False),
    (NOSTRILS, False),
    (RIGHT_EYE, True),
    (LEFT_EYE, True),
    (OUTER_LIPS, True),
    (INNER_LIPS, True),
)

# Each point's partner in the mirror image (x -> -x): a mirrored face's point i is the
# original's FLIP_PERMUTATION[i]. The eyes and lips run clockwise, so their partners run
# the other way from the partner part's matching start.
FLIP_PERMUTATION = np.array(
    [*reversed(JAW)]
    + [*reversed(BROWS)]
    + [*NOSE_BRIDGE]
    + [*reversed(NOSTRILS)]
    + [45, 44, 43, 42, 47, 46]  # the right eye's partners in the left eye
    + [39, 38, 37, 36, 41, 40]  # and the left eye's in the right
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)
