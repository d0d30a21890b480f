"""68 keypoints for faces in an image: crop -> model -> image points.

A face found by the detector takes one look: the model was trained on crops jittered
like the detector's boxes, so a second look gains nothing on a bare face. A face under a
worn mask is another matter: the mask misleads the detector's box (turned by its eye
guesses, cut short above the mask) more than the model's points, and the product gives
such a face, where the model doubts it, a second look level with its first points' eyes,
and more while that crop still moves (:func:`relooked`, ``RELOOK_SPREAD``,
``RELOOK_SETTLED``; ``core.api`` decides which faces). A whole image
taken as the face takes two: the first finds the face, the second looks again at the box of the
first look's points, level with its eyes (docs/experiments/core-notes.md, "Keypoint
looks"). Every look cuts its crop with core.keypoints.preprocess, exactly as training does.

Where the model doubts a face (the spread of its heatmaps, see UNSURE_SPREAD) the face may
lie on its side or upside down, as a detector sure of it can report it: the quarter turns
of its crop are looked at too, then the surest one again level with its eyes.

These choices live in module functions (:func:`detected_points`, :func:`whole_image_points`)
over a ``look`` that reads a batch of crops, so that training's validation
(``training.validate``) takes the product's path with its own network, batched over many
images: the checkpoint it selects is the best at what ships.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from core import runtime
from core.detection.boxes import FaceBox, whole_image_box
from core.detection.turns import NOISY, noise_level
from core.errors import WeightsError
from core.keypoints.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    box_from_points,
    crop_image,
    eye_angle,
    normalize,
    points_from_unit,
    reorient,
)
from core.settings import core_settings
from core.threads import configure as configure_threads
from core.weightfiles import WEIGHTS_DIR, verify_file

log = logging.getLogger(__name__)


# Above this heatmap spread (training.model.IntegralHead, in unit crop coordinates) the model
# doubts its face, and its crop's quarter turns are looked at too: between the spreads of
# faces the right way up and of the same crops upside down, since a detector can be sure of
# a face upside down (docs/experiments/core-notes.md, "The doubt"; re-measure per release).
UNSURE_SPREAD = 0.17
# Above this spread (after the turns) a face the product picks (``core.api``: one that wears
# a mask) takes a second look, its crop built from its points so far and level with their
# eyes: nearly every worn-mask face and no bare one is above it and picked. On the
# validation people's damage conditions (facemask-robustness, 200 images) worn printed
# cloth read 5.20 -> 4.83% NME, faces lost 3.5 -> 2.5%, respirators 5.07 -> 4.70% and
# 3.0 -> 0.5%; a second look at every face doubted above it (26 of 200 clean faces, 61% of
# the faces in group photos) gained no more on worn masks and read blurred faces worse
# (docs/experiments/keypoint-model.md, "A second look where the model doubts").
RELOOK_SPREAD = 0.15
# A face that took a second look looks again while its crop (built from its newest points)
# moves by more than RELOOK_SETTLED of its side, RELOOK_MOST looks in all: a masked face
# whose detector box was cut short above the mask comes closer with each look, and most
# faces settle after the second, so the extra looks cost little; a third look for every
# masked face cost half a look each (docs/experiments/keypoint-model.md, "Looking again
# until the crop settles").
RELOOK_SETTLED = 0.02
RELOOK_MOST = 6
# A photo noisier than NOISY (core.detection.turns: a night shot the phone brightened) is
# read by the model blurred this much (sd, pixels): on the validation people's boosted night
# shots 4.74 -> 4.58% NME (sd 1.0: about the same; 1.5: worse; a denoiser: worse); no clean,
# dim or night photo there is that noisy (docs/experiments/keypoint-model.md, "A second
# look where the model doubts", "Noisy night shots read blurred").
READ_SIGMA = 1.2
# The same for a whole image taken as the face: the face fills less of that crop, and the
# heatmaps are narrower. The doubt starts lower than a turned reading must reach to be kept
# (SURE_SPREAD_WHOLE): one threshold for both either let upside-down readings through or
# rejected right ones (docs/experiments/core-notes.md, "The doubt").
UNSURE_SPREAD_WHOLE = 0.13
SURE_SPREAD_WHOLE = 0.15
QUARTER_TURNS = (90.0, 180.0, 270.0)
# A turned reading must be this much surer than the first look to replace it. A face
# already wearing a mask reads doubtful upright, and a crop turned upside down and moved
# onto its covered lower half can read a little less doubtful with every point wrong; a face
# truly on its side or upside down reads much surer turned the right way
# (docs/experiments/core-notes.md, "The doubt").
TURN_MARGIN = 0.03


def quieter(image_rgb: np.ndarray) -> np.ndarray:
    """The photo the model reads detected faces in: a noisy one (``NOISY``) blurred a little
    (``READ_SIGMA``), any other as it is."""
    if noise_level(image_rgb) > NOISY:
        return cv2.GaussianBlur(image_rgb, (0, 0), READ_SIGMA)
    return image_rgb


def level_boxes(points: np.ndarray) -> list[FaceBox]:
    """The crops around (N, 68, 2) points, each turned level with its eyes."""
    return [box_from_points(p, angle=eye_angle(p)) for p in points]


class Look(Protocol):
    def __call__(
        self, faces: Sequence[int], boxes: Sequence[FaceBox]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 68, 2) image points and (N,) heatmap spreads (NaN: no heatmaps) of N boxes,
        box k cut from the image of face ``faces[k]``, in one batch."""
        ...


def read_crops(
    forward: Callable[[np.ndarray], Any],
    images: Sequence[np.ndarray],
    boxes: Sequence[FaceBox],
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The network ``forward`` on box k cut from ``images[k]``: (N, 68, 2) image points and
    (N,) heatmap spreads (NaN: the network has no heatmaps), in one batch. ``forward``
    takes the normalised crops as a numpy array and answers numpy arrays."""
    if not boxes:
        return np.zeros((0, 68, 2), np.float32), np.zeros(0, np.float32)
    crops, matrices = zip(*(crop_image(im, b, size) for im, b in zip(images, boxes, strict=True)))
    out = forward(normalize(np.stack(crops)))
    unit, spread = out if isinstance(out, tuple) else (out, np.full(len(crops), np.nan))
    unit = np.asarray(unit, np.float64)
    points = np.stack([points_from_unit(u, m, size) for u, m in zip(unit, matrices)])
    return points.astype(np.float32), np.asarray(spread, np.float32)


def surest_looks(
    look: Look,
    boxes: Sequence[FaceBox],
    turned: Callable[[int, float], FaceBox],
    unsure_spread: float,
    turn_margin: float = TURN_MARGIN,
    sure_spread: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 68, 2) points of N faces, one box each, and (N,) the spreads of the looks they
    come from; ``turned(i, degrees)`` is face i's box turned by that much more.

    One look at every box. A face the model doubts (heatmap spread above ``unsure_spread``)
    may lie on its side or upside down (a detector can be sure of such views, see
    UNSURE_SPREAD): its quarter turns are looked at too, then once more level with the eyes
    of the surest turn and of the first look (a small face in a big crop, a whole photo,
    can read doubtful until looked at closer), and the surest look of all is kept; a
    turned look only where it is sure (``sure_spread``, default ``unsure_spread``) and
    ``turn_margin`` surer than the first.
    """
    faces = list(range(len(boxes)))
    sure = unsure_spread if sure_spread is None else sure_spread
    points, spread = look(faces, boxes)
    unsure = [i for i, s in enumerate(spread) if s > unsure_spread]
    if unsure:
        n, turns = len(unsure), len(QUARTER_TURNS)
        tries = [turned(i, t) for i in unsure for t in QUARTER_TURNS]
        turn_points, turn_spread = look([i for i in unsure for _ in QUARTER_TURNS], tries)
        best = turn_spread.reshape(n, turns).argmin(1) + np.arange(n) * turns
        first = points[unsure]
        level_points, level_spread = look(
            unsure + unsure, level_boxes(np.concatenate([turn_points[best], first]))
        )
        for j, (i, k) in enumerate(zip(unsure, best)):
            # a turned reading must be sure in itself, not just less doubtful than the
            # first: a masked or covered face reads doubtful every way round, and its least
            # doubtful quarter turn was often a wrong one (facemask-robustness, worn cloth
            # masks: 81% -> 34% NME; photos turned 90/180 degrees read as before); and
            # clearly surer than the first look (TURN_MARGIN)
            looks = (
                (turn_points[k], turn_spread[k], True),
                (level_points[j], level_spread[j], True),
                (level_points[n + j], level_spread[n + j], False),
            )
            first_doubt = spread[i]
            for candidate, doubt, from_turn in looks:
                sure_turn = doubt <= min(sure, first_doubt - turn_margin)
                if doubt < spread[i] and (not from_turn or sure_turn):
                    points[i], spread[i] = candidate, doubt
            log.debug("face %d: heatmap spread %.3f after quarter turns", i, spread[i])
    return points, spread


def surest_points(
    look: Look,
    boxes: Sequence[FaceBox],
    turned: Callable[[int, float], FaceBox],
    unsure_spread: float,
    refine: bool,
    turn_margin: float = TURN_MARGIN,
    sure_spread: float | None = None,
) -> np.ndarray:
    """(N, 68, 2) points of N faces (:func:`surest_looks`); with ``refine``, a second look
    at every face level with the eyes of its points so far (a tilted close-up)."""
    points, _ = surest_looks(look, boxes, turned, unsure_spread, turn_margin, sure_spread)
    if refine and len(points):
        points = look(list(range(len(points))), level_boxes(points))[0]
    return points


def relooked(
    look: Look,
    points: np.ndarray,
    spread: np.ndarray,
    picked: Callable[[np.ndarray], bool],
    relook_spread: float = RELOOK_SPREAD,
    settled: float = RELOOK_SETTLED,
    most: int = RELOOK_MOST,
) -> np.ndarray:
    """``points`` (N, 68, 2), each face whose look's ``spread`` is above ``relook_spread``
    and that ``picked`` (its points so far) picks read again in a crop level with its eyes
    and built from its points (RELOOK_SPREAD); then again while that crop still moves by
    more than ``settled`` of its side from one look to the next, ``most`` looks in all
    (RELOOK_SETTLED). A face the first look read far off (a detector's box cut short above
    a mask) comes closer with each look; a face read right settles after the second."""
    again = [i for i, s in enumerate(spread) if s > relook_spread and picked(points[i])]
    if not again:
        return points
    points = np.array(points, copy=True)
    boxes = dict(zip(again, level_boxes(points[again]), strict=True))
    for _ in range(most - 1):
        points[again] = look(again, [boxes[i] for i in again])[0]
        newer = dict(zip(again, level_boxes(points[again]), strict=True))
        again = [i for i in again if _moved(boxes[i], newer[i]) > settled]
        if not again:
            break
        boxes = newer
    return points


def _moved(before: FaceBox, after: FaceBox) -> float:
    """How far a crop moved or grew, over its side before."""
    shift = max(abs(after.cx - before.cx), abs(after.cy - before.cy), abs(after.side - before.side))
    return shift / before.side


def detected_looks(
    look: Look, boxes: Sequence[FaceBox], unsure_spread: float = UNSURE_SPREAD
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 68, 2) points of N detected faces (their face boxes) and (N,) the spreads of the
    looks they come from."""
    return surest_looks(
        look, boxes, lambda i, degrees: reorient(boxes[i], boxes[i].angle + degrees), unsure_spread
    )


def detected_points(
    look: Look, boxes: Sequence[FaceBox], unsure_spread: float = UNSURE_SPREAD
) -> np.ndarray:
    """(N, 68, 2) points of N detected faces (their face boxes): the model's path."""
    return detected_looks(look, boxes, unsure_spread)[0]


def whole_image_points(
    look: Look,
    boxes: Sequence[FaceBox],
    unsure_spread: float = UNSURE_SPREAD_WHOLE,
    refine: bool = True,
) -> np.ndarray:
    """(N, 68, 2) points of N whole images taken as the face (their ``whole_image_box``)."""
    return surest_points(
        look,
        boxes,
        lambda i, degrees: replace(boxes[i], angle=boxes[i].angle + degrees),
        unsure_spread,
        refine,
        sure_spread=SURE_SPREAD_WHOLE,
    )


RELEASE_FORMAT = "facemask-keypoints/1"


def member_path(weights: Path, k: int) -> Path:
    """Where member ``k`` of the release NAME.pt lies in int8: NAME.member<k>.int8.onnx."""
    return weights.with_name(f"{weights.stem}.member{k}.int8.onnx")


def shipped_release() -> Path:
    """The release manifest shipped in core/weights (``$FACEMASK_WEIGHTS`` overrides it).

    A release replaces its files (names carry a hash, not a date); were there several,
    the last by name is taken and a warning says so.
    """
    override = core_settings().weights
    if override is not None:
        return override
    files = sorted(WEIGHTS_DIR.glob("keypoints-*.json"))
    if not files:
        raise WeightsError(f"no keypoint release (keypoints-*.json) found in {WEIGHTS_DIR}")
    if len(files) > 1:
        log.warning("%d releases in %s; using %s", len(files), WEIGHTS_DIR, files[-1].name)
    return files[-1]


@dataclass(frozen=True)
class Release:
    """A keypoint release as serving reads it: its manifest (``training.export``
    writes it) and the ONNX files it names, each checked against its SHA-256."""

    manifest: Path
    name: str
    input_size: int
    members: tuple[Path, ...]
    meta: dict


def read_manifest(path: str | Path) -> Release:
    path = Path(path)
    if path.suffix == ".pt":
        raise WeightsError(
            f"{path.name} is a training checkpoint; serving runs a release's ONNX files "
            "(make them with facemask-release, or load it with training.predictor in Python)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"keypoint release {path} could not be read: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != RELEASE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise WeightsError(
            f"{path.name}: not a keypoint release of format {RELEASE_FORMAT} (found {found!r})"
        )
    normalization = manifest.get("input", {})
    if not (
        np.allclose(normalization.get("mean", ()), IMAGENET_MEAN, atol=1e-3)
        and np.allclose(normalization.get("std", ()), IMAGENET_STD, atol=1e-3)
    ):
        raise WeightsError(
            f"{path.name}: its input normalisation is not core.keypoints.preprocess's"
        )
    files = []
    for member in manifest["members"]:
        file = path.with_name(member["file"])
        verify_file(file, member["sha256"])
        files.append(file)
    return Release(
        path, manifest["name"], int(manifest["input_size"]), tuple(files),
        dict(manifest.get("meta", {})),
    )  # fmt: skip


class KeypointPredictor:
    """The keypoint network on face boxes: :meth:`load` the shipped release.

    ``forward`` reads (N, 3, S, S) float32 crops (``core.keypoints.preprocess.normalize``) and
    answers (N, 68, 2) unit points, or those and (N,) heatmap spreads. The product's is a
    release's ONNX files on ONNX Runtime (:meth:`load`); training builds one around a
    network in training (``training.predictor``), the same path with its own forward.
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], Any],
        size: int,
        meta: dict | None = None,
        backend: str = "onnxruntime",
        refine_whole: bool = True,
        unsure_spread: float = UNSURE_SPREAD,
        unsure_spread_whole: float = UNSURE_SPREAD_WHOLE,
    ) -> None:
        self.forward = forward
        self.size = size
        self.meta = meta or {}
        self.backend = backend
        self.refine_whole = refine_whole
        self.unsure_spread = unsure_spread
        self.unsure_spread_whole = unsure_spread_whole

    @classmethod
    def load(
        cls, release: str | Path | None = None, threads: int | None = None, **options: Any
    ) -> KeypointPredictor:
        """The predictor of a release manifest (default: the shipped one, see
        :func:`shipped_release`) on ONNX Runtime. ``threads`` overrides ``core.threads``."""
        configure_threads(threads=threads)
        found = read_manifest(Path(release) if release else shipped_release())
        try:
            forward = runtime.OnnxModule([m.read_bytes() for m in found.members], threads)
        except Exception as err:
            raise WeightsError(f"keypoint release {found.name} could not be loaded: {err}") from err
        runtime.trim_heap()  # the files' parsed copies: ~30 MB resident otherwise
        log.info("loaded keypoint model %s (onnxruntime-int8)", found.name)
        predictor = cls(forward, found.input_size, found.meta, "onnxruntime-int8", **options)
        predictor.release = found
        return predictor

    def look(
        self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 68, 2) image points and (N,) heatmap spreads (NaN: the model has no
        heatmaps) for N face boxes, in one batch."""
        return read_crops(self.forward, [image_rgb] * len(boxes), boxes, self.size)

    def predict_boxes(self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """(N, 68, 2) image points for N face boxes, in one batch."""
        return self.look(image_rgb, boxes)[0]

    def predict(self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """(N, 68, 2) image points for N detected faces (``core.detection.base.Detection.box``),
        read in the :func:`quieter` photo."""
        if not len(boxes):
            return np.zeros((0, 68, 2), np.float32)
        image_rgb = quieter(image_rgb)
        return detected_points(
            lambda _, crops: self.look(image_rgb, crops), list(boxes), self.unsure_spread
        )

    def predict_whole_image(self, image_rgb: np.ndarray) -> np.ndarray:
        """(68, 2) image points, the whole image being the face."""
        box = whole_image_box(*image_rgb.shape[:2])
        return whole_image_points(
            lambda _, crops: self.look(image_rgb, crops),
            [box],
            self.unsure_spread_whole,
            self.refine_whole,
        )[0]
