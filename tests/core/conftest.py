"""Shared fixtures for core's tests: the astronaut, her landmarks, a predictor that knows them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from skimage import data

from core.detection.boxes import FaceBox
from core.keypoints import face68
from masks import catalog

# Hand-marked on skimage's astronaut (512x512): template landmark index -> image (x, y).
ASTRONAUT_MARKS = {
    "eye_left": (203.8, 100.0),
    "eye_right": (247.5, 102.5),
    30: (223.8, 126.0),
    48: (201.3, 141.3),
    54: (245.0, 141.3),
    8: (225.0, 190.0),
    0: (181.3, 103.8),
    16: (265.0, 103.8),
    4: (185.0, 150.0),
    12: (263.8, 145.0),
}


def fit_template(marks: dict, template: np.ndarray) -> np.ndarray:
    """The template's 68 points under the affine map that best fits the hand marks."""
    src, dst = [], []
    for key, xy in marks.items():
        if key == "eye_left":
            src.append(template[face68.RIGHT_EYE].mean(axis=0))
        elif key == "eye_right":
            src.append(template[face68.LEFT_EYE].mean(axis=0))
        else:
            src.append(template[key])
        dst.append(xy)
    src_h = np.hstack([np.asarray(src), np.ones((len(src), 1))])
    affine, *_ = np.linalg.lstsq(src_h, np.asarray(dst), rcond=None)
    return (np.hstack([template, np.ones((68, 1))]) @ affine).astype(np.float32)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_points() -> np.ndarray:
    """(68, 2): the astronaut's landmarks, good to a few pixels."""
    return fit_template(ASTRONAUT_MARKS, catalog.template().points)


class KnownFacePredictor:
    """Same interface as core.keypoints.landmarks.KeypointPredictor; answers with known points.

    ``faces`` are (68, 2) point sets in image pixels; each face box gets the set whose
    nose lies nearest its centre, and the whole image gets the first set.
    """

    def __init__(self, faces: Sequence[np.ndarray], whole_image: np.ndarray | None = None) -> None:
        self.faces = [np.asarray(f, np.float32) for f in faces]
        self.whole_image = whole_image

    def predict(self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        out = []
        for box in boxes:
            centres = [f[face68.NOSE].mean(axis=0) for f in self.faces]
            dist = [np.hypot(c[0] - box.cx, c[1] - box.cy) for c in centres]
            out.append(self.faces[int(np.argmin(dist))])
        return np.asarray(out, np.float32).reshape(-1, 68, 2)

    def predict_whole_image(self, image_rgb: np.ndarray) -> np.ndarray:
        if self.whole_image is not None:
            return self.whole_image
        return self.faces[0]
