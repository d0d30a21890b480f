"""Is what the 68 points outline a face? A small network answers, per face, before a mask
goes on.

The keypoint model reads a face's points into anything a detector hands it (fur, a toy,
hair above a turned portrait): it was trained to find a face under a cover and never saw
anything else. The verifier was: it looks at the picture *as the points place a face in
it* (eyes, nose tip and mouth corners moved to where a face's are, :func:`aligned`, 64 px)
and says how sure it is that a face is there (0..1). Fur read as a face lines up as fur; a
face under a mask, in the dark or in sunglasses lines up as a face. Trained by
``training.verifier`` on faces of the training people (clean and damaged) against what
the product masked where there is no face; the model card (core/weights/MODEL_CARD.md)
says how and how well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from core.keypoints import face68
from core.keypoints.preprocess import fit_similarity
from core.weightfiles import WEIGHTS_DIR, weight_file

log = logging.getLogger(__name__)

#: the shipped verifier (its .onnx is listed in core/weights/MANIFEST.json)
VERIFIER_ONNX = "verifier-face64-r8.onnx"
#: its second look at the same crop: an ImageNet network, its last blocks fine-tuned, and two
#: linear probes (``training.look``), which know animals and objects the verifier never saw
LOOK_ONNX = "look-lite0-r12.onnx"
#: a crop at least this sharp (:func:`sharpness`) is judged by the look's sharp probe too;
#: every face out of focus in the detector bench's group photos reads below 0.15
#: (docs/experiments/false-masks.md, "Round 5")
SHARP = 0.16
#: the second look is not asked of a detection this sure (the detector's score) that the
#: verifier is this sure of: most clear faces are, and no mask the look stops came from one;
#: asked of every face, it made one-face photos measurably slower
#: (docs/experiments/false-masks.md, "Round 5")
SURE_SCORE, SURE_FACE = 0.995, 0.99
#: the side of the square the face is laid into
SIZE = 64
# Where a face's eye centres, nose tip and mouth corners fall in the square: the usual
# 112-px five-point face template (as face recognisers align faces) in a 144-px square,
# so that brows, cheeks and chin are in the picture, then scaled to SIZE.
_TEMPLATE_112 = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]],
    np.float64,
)
TEMPLATE = (_TEMPLATE_112 + 16.0) * (SIZE / 144.0)


def five_points(points: np.ndarray) -> np.ndarray:
    """(5, 2): the eye centres, the nose tip and the mouth corners of 68 points."""
    p = np.asarray(points, np.float64)
    right, left = p[face68.RIGHT_EYE].mean(0), p[face68.LEFT_EYE].mean(0)
    return np.stack([right, left, p[face68.NOSE_TIP], *p[list(face68.MOUTH_CORNERS)]])


def aligned(image_rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(SIZE, SIZE, 3) uint8: the picture moved so that ``points``' eyes, nose tip and
    mouth corners sit where a face's do; outside the photo, its edge repeated."""
    matrix = fit_similarity(five_points(points), TEMPLATE)
    rgb = image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
    # bilinear at every scale (warpAffine has no area filter: a large face is sampled,
    # not averaged; the network was trained on crops made exactly so)
    return cv2.warpAffine(
        np.ascontiguousarray(rgb[..., :3]), matrix, (SIZE, SIZE),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def as_input(crops: np.ndarray) -> np.ndarray:
    """(N, SIZE, SIZE, 3) uint8 -> the network's (N, 3, SIZE, SIZE) float32 in -0.5..0.5."""
    x = np.asarray(crops, np.float32).transpose(0, 3, 1, 2) / 255.0
    return np.ascontiguousarray(x - 0.5)


@dataclass
class FaceVerifier:
    """The verifier network on ONNX Runtime: :meth:`probabilities` of faces, and where
    ``look`` is loaded, the second look's (:meth:`judge`)."""

    session: object
    look: object | None = None  # the second look's session (None: not shipped or not asked)

    @classmethod
    def load(
        cls, path: str | Path | None = None, look: str | Path | None | bool = True
    ) -> FaceVerifier:
        """``look``: True the shipped second look (where the package has it), a path
        another, False none."""
        from core import threads
        from core.runtime import session

        file = weight_file(VERIFIER_ONNX) if path is None else Path(path)
        if look is True:
            look = weight_file(LOOK_ONNX) if (WEIGHTS_DIR / LOOK_ONNX).exists() else None
        looking = session(Path(look), threads.count()) if look else None
        return cls(session(file, threads.count()), looking)

    def probabilities(self, image_rgb: np.ndarray, faces: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) how sure the network is that each set of 68 points outlines a face."""
        return self.judge(image_rgb, faces, look=False)[0]

    def judge(
        self,
        image_rgb: np.ndarray,
        faces: Sequence[np.ndarray],
        look: bool = True,
        scores: Sequence[float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N,) the verifier's probabilities and (N, 2) the second look's
        (:meth:`look_of_crops`; NaN without it) that each set of 68 points outlines a face:
        one crop each, both networks in one call each. With the detector's ``scores``, the
        look is not asked where detector and verifier are both sure (:data:`SURE_SCORE`)."""
        if not len(faces):
            return np.zeros(0, np.float32), np.zeros((0, 2), np.float32)
        crops = np.stack([aligned(image_rgb, p) for p in faces])
        return self.judge_crops(crops, look, scores)

    def judge_crops(
        self, crops: np.ndarray, look: bool = True, scores: Sequence[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`judge` of the faces' crops (:func:`aligned`)."""
        sure = self.of_crops(crops)
        second = np.full((len(crops), 2), np.nan, np.float32)
        ask = np.full(len(crops), look)
        if look and scores is not None:
            ask = ~((np.asarray(scores) >= SURE_SCORE) & (sure >= SURE_FACE))
        if ask.any():
            second[ask] = self.look_of_crops(crops[ask])
        return sure, second

    def of_crops(self, crops: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {"x": as_input(crops)})[0]  # type: ignore[attr-defined]
        return _sigmoid(logits)

    def look_of_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, 2) the second look's probabilities of (N, SIZE, SIZE, 3) uint8 crops: its
        sharp probe's where the crop is sharp (:data:`SHARP`; NaN where it is not: that
        probe never saw a face out of focus), and its soft probe's. NaN where no look is
        loaded."""
        if self.look is None:
            return np.full((len(crops), 2), np.nan, np.float32)
        crops = np.ascontiguousarray(crops, np.uint8)
        logits = np.asarray(self.look.run(None, {"crops": crops})[0])  # type: ignore[attr-defined]
        out = _sigmoid(logits).reshape(len(crops), 2)
        out[sharpness(crops) < SHARP, 0] = np.nan
        return out


def in_focus(image_rgb: np.ndarray, points: np.ndarray) -> bool:
    """Whether the face on ``points`` is in focus: its crop (:func:`aligned`) at least
    ``SHARP`` sharp, as the second look asks of a face before its sharp probe reads it."""
    return bool(sharpness(aligned(image_rgb, points)[None])[0] >= SHARP)


def sharpness(crops: np.ndarray) -> np.ndarray:
    """(N,) how sharp each crop's middle is: the mean absolute Laplacian of its grey levels
    over their spread (plus 4 levels, so that a flat dark crop is not sharp by its noise)."""
    out = np.empty(len(crops), np.float32)
    for i, crop in enumerate(crops):
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)[8:-8, 8:-8]
        grey = grey.astype(np.float32)
        out[i] = np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean() / (grey.std() + 4.0)
    return out


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(logits, np.float64).reshape(-1), -500.0, 500.0)  # exp stays finite
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


@cache
def shipped_verifier() -> FaceVerifier | None:
    """The shipped verifier, loaded once per process; None where the package has none
    (a checkout without the file: the gate then works on the other evidence alone)."""
    if not (WEIGHTS_DIR / VERIFIER_ONNX).exists():
        log.warning("no face verifier (%s) in %s", VERIFIER_ONNX, WEIGHTS_DIR)
        return None
    return FaceVerifier.load()
