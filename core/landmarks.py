"""68 keypoints for faces in an image: crop -> model -> image points.

A face found by the detector takes one look: the model was trained on crops jittered
like the detector's boxes (a second look gained nothing on the validation people:
4.46% -> 4.41%). A whole image taken as the face takes two: the first finds the face,
the second looks again at the box of the first look's points, level with its eyes
(5.67% -> 4.51%). Every look cuts its crop with core.preprocess, exactly as training does.

Where the model doubts a face (the spread of its heatmaps, see UNSURE_SPREAD) the face may
lie on its side or upside down, as a detector sure of it can report it: the quarter turns
of its crop are looked at too, then the surest one again level with its eyes.

These choices live in module functions (:func:`detected_points`, :func:`whole_image_points`)
over a ``look`` that reads a batch of crops, so that training's validation
(``training.validate``) takes the product's path with its own network, batched over many
images: the checkpoint it selects is the best at what ships.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core import runtime
from core.errors import WeightsError
from core.preprocess import (
    FaceBox,
    box_from_points,
    crop_image,
    eye_angle,
    normalize,
    points_from_unit,
    reorient,
    whole_image_box,
)
from core.threads import configure as configure_threads

if TYPE_CHECKING:  # torch and the networks load only where a torch model is used
    from core.model import KeypointEnsemble, KeypointNet, ModelConfig, WithSpread

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Above this heatmap spread (core.model.IntegralHead, in unit crop coordinates) the model
# doubts its face, and its crop's quarter turns are looked at too. Measured with release 7's
# weights (facemask-eval --doubt) on MTCNN's boxes of the 426 validation faces: at most
# 0.167 the right way up (99th percentile 0.163), 0.171 and up on the same crops upside
# down (5th percentile 0.190). Release 6's 0.18 let 1.4% of upside-down faces through:
# `facemask-eval --turn 180` read 4.14% with it, 3.82% with 0.17; `--turn 135` 4.82% with
# 0.175, 3.85% with 0.17 (the occluded conditions of facemask-robustness moved by a face or
# two either way). MTCNN can be sure (0.99+) of a face upside down: in photos turned by
# 90 / 180 degrees it did so for 4 / 9 faces, whose points then lay upside down (NME ~1);
# the quarter turns read them.
UNSURE_SPREAD = 0.17
# The same for a whole image taken as the face: the face fills less of that crop, and the
# heatmaps are narrower. Release 7 on the 426 whole validation images: right way up median
# 0.114, 99th percentile 0.138; upside down 0.138 and up (5th percentile 0.155). The doubt
# starts lower than a turned reading must reach to be kept (SURE_SPREAD_WHOLE): with one
# threshold for both, 0.15 read photos upside down 7.16% and 0.13 10-15% (right readings
# rejected); doubting above 0.13 and keeping turned readings up to 0.15 reads them 4.37%.
UNSURE_SPREAD_WHOLE = 0.13
SURE_SPREAD_WHOLE = 0.15
QUARTER_TURNS = (90.0, 180.0, 270.0)
# A turned reading must be this much surer than the first look to replace it. A face
# already wearing a mask reads doubtful upright (spread 0.17-0.22), and a crop turned
# upside down and moved onto its covered lower half can read a little less doubtful with
# every point wrong. On 293 masked validation faces (plain cloth, striped cloth,
# respirator; release 7's weights) the share read wrong (NME > 0.10) is 14.3% without a
# margin, 9.6% with 0.02, 8.2% with 0.03 (with 0.04 the same); never turning: 10.9%. A face
# truly on its side or upside down reads 0.06 and more surer turned the right way.
TURN_MARGIN = 0.03


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
    forward: Callable[[Any], object],
    images: Sequence[np.ndarray],
    boxes: Sequence[FaceBox],
    size: int,
    channels_last: bool = False,
    arrays: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The network ``forward`` on box k cut from ``images[k]``: (N, 68, 2) image points and
    (N,) heatmap spreads (NaN: the network has no heatmaps), in one batch.

    ``forward`` takes a torch tensor of the crops (channels-last with ``channels_last``)
    and answers torch tensors, or, with ``arrays``, numpy arrays both ways (ONNX Runtime:
    no torch in the process)."""
    if not boxes:
        return np.zeros((0, 68, 2), np.float32), np.zeros(0, np.float32)
    crops, matrices = zip(*(crop_image(im, b, size) for im, b in zip(images, boxes, strict=True)))
    x = normalize(np.stack(crops))
    if arrays:
        out = forward(x)
    else:
        import torch

        tensor = torch.from_numpy(x)
        if channels_last:  # ONNX Runtime takes the planes as they are
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = forward(tensor)
        out = tuple(o.float().cpu().numpy() for o in out) if isinstance(out, tuple) else out
        out = out if isinstance(out, tuple) else out.float().cpu().numpy()
    unit, spread = out if isinstance(out, tuple) else (out, np.full(len(x), np.nan))
    unit = np.asarray(unit, np.float64)
    points = np.stack([points_from_unit(u, m, size) for u, m in zip(unit, matrices)])
    return points.astype(np.float32), np.asarray(spread, np.float32)


def surest_points(
    look: Look,
    boxes: Sequence[FaceBox],
    turned: Callable[[int, float], FaceBox],
    unsure_spread: float,
    refine: bool,
    turn_margin: float = TURN_MARGIN,
    sure_spread: float | None = None,
) -> np.ndarray:
    """(N, 68, 2) points of N faces, one box each; ``turned(i, degrees)`` is face i's box
    turned by that much more.

    One look at every box. A face the model doubts (heatmap spread above ``unsure_spread``)
    may lie on its side or upside down (a detector can be sure of such views, see
    UNSURE_SPREAD): its quarter turns are looked at too, then once more level with the eyes
    of the surest turn and of the first look (a small face in a big crop, a whole photo,
    can read doubtful until looked at closer), and the surest look of all is kept; a
    turned look only where it is sure (``sure_spread``, default ``unsure_spread``) and
    ``turn_margin`` surer than the first. With
    ``refine``, a second look level with the eyes of the points so far (a tilted close-up).
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
    if refine and len(points):
        points = look(faces, level_boxes(points))[0]
    return points


def detected_points(
    look: Look, boxes: Sequence[FaceBox], unsure_spread: float = UNSURE_SPREAD
) -> np.ndarray:
    """(N, 68, 2) points of N detected faces (their face boxes): the product's path."""
    return surest_points(
        look,
        boxes,
        lambda i, degrees: reorient(boxes[i], boxes[i].angle + degrees),
        unsure_spread,
        refine=False,
    )


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


def shipped_weights() -> Path:
    """The weight file shipped in core/weights ($FACEMASK_WEIGHTS overrides it).

    A release replaces the file (names carry a hash, not a date); were there several, the
    last by name is taken and a warning says so.
    """
    override = os.environ.get("FACEMASK_WEIGHTS")
    if override:
        return Path(override)
    files = sorted(WEIGHTS_DIR.glob("keypoints-*.pt"))
    if not files:
        raise WeightsError(f"no keypoint weights found in {WEIGHTS_DIR}")
    if len(files) > 1:
        log.warning("%d weight files in %s; using %s", len(files), WEIGHTS_DIR, files[-1].name)
    return files[-1]


def int8_path(weights: Path) -> Path:
    """Where the int8 network of ``weights`` (NAME.pt) lies: NAME.int8.onnx beside it."""
    return weights.with_name(weights.stem + ".int8.onnx")


def int8_file(weights: Path) -> Path | None:
    """The int8 network that ``facemask-release`` wrote beside ``weights`` (``int8_path``),
    if there is one and it was made from these very weights (their SHA-256 is in its
    metadata); a stale one is ignored with a warning."""
    path = int8_path(weights)
    if not path.is_file():
        return None
    try:
        made_from = runtime.metadata(path).get("source_sha256")
    except Exception as err:  # a damaged file: the float network serves
        log.warning("ignoring %s: %s", path.name, err)
        return None
    if made_from != runtime.file_sha256(weights):
        log.warning("ignoring %s: made from other weights than %s", path.name, weights.name)
        return None
    return path


def read_release(weights: Path) -> tuple[list[dict], dict]:
    """A weight file's member configs (``core.model.ModelConfig`` fields) and metadata,
    read without torch and without reading its tensors (:mod:`core.torchfile`)."""
    from core import torchfile

    blob = torchfile.load(weights, tensors=False)
    entries = blob["members"] if "members" in blob else [blob]
    return [dict(entry["config"]) for entry in entries], dict(blob.get("meta", {}))


class KeypointPredictor:
    """The keypoint network on face boxes: :meth:`load` the shipped one.

    Built from a torch model (``core.model``), it runs that model, folded and exported to
    ONNX Runtime where it is installed. Loaded from a release whose int8 network matches its
    weights (the served case), it runs that file on ONNX Runtime without importing torch;
    :attr:`model`, the torch model, is then read from the weights on first use.
    """

    def __init__(
        self,
        model: KeypointNet | KeypointEnsemble,
        meta: dict | None = None,
        refine_whole: bool = True,
        unsure_spread: float = UNSURE_SPREAD,
        unsure_spread_whole: float = UNSURE_SPREAD_WHOLE,
        optimize: bool = True,
        backend: str = "auto",
        int8: Path | None = None,
    ) -> None:
        import torch

        from core.model import WithSpread

        self.weights: Path | None = None
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.size = model.config.input_size
        # the module as trained stays in self.model; self.forward runs it, BatchNorm folded,
        # on ONNX Runtime where it is installed (2.5x faster on a CPU, see core.runtime)
        self.backend = "torch"
        self.forward = WithSpread(self.model)
        on_onnx = backend == "onnxruntime" or (backend == "auto" and runtime.available())
        if optimize and on_onnx and int8 is not None:
            # the release's int8 network, made from these weights: nothing to fold or export
            self.forward = runtime.OnnxModule(int8.read_bytes())
            self.backend = "onnxruntime-int8"
        elif optimize:
            self.forward = self._optimized(self.model)
            if on_onnx:
                self.forward = runtime.OnnxModule(self.forward, self.size)
                self.backend = "onnxruntime"
        self._settle(meta, refine_whole, unsure_spread, unsure_spread_whole)

    def _settle(
        self, meta: dict | None, refine_whole: bool, unsure_spread: float, unsure_whole: float
    ) -> None:
        self.meta = meta or {}
        self.refine_whole = refine_whole
        self.unsure_spread = unsure_spread
        self.unsure_spread_whole = unsure_whole

    @classmethod
    def on_int8(
        cls,
        weights: Path,
        int8: Path,
        refine_whole: bool = True,
        unsure_spread: float = UNSURE_SPREAD,
        unsure_spread_whole: float = UNSURE_SPREAD_WHOLE,
    ) -> KeypointPredictor:
        """The release's int8 network (``int8_file(weights)``) on ONNX Runtime, torch not
        imported: the input size and metadata are read from the weights without it."""
        configs, meta = read_release(weights)
        sizes = {config["input_size"] for config in configs}
        if len(sizes) != 1:
            raise WeightsError(f"{weights.name}: its networks read different crop sizes {sizes}")
        predictor = cls.__new__(cls)
        predictor.weights = weights
        predictor._model = None
        predictor.size = sizes.pop()
        predictor.forward = runtime.OnnxModule(int8.read_bytes())
        predictor.backend = "onnxruntime-int8"
        predictor._settle(meta, refine_whole, unsure_spread, unsure_spread_whole)
        return predictor

    @property
    def model(self) -> KeypointNet | KeypointEnsemble:
        """The torch model (on an int8 predictor read from its weights now: imports torch)."""
        if self._model is None:
            import torch

            from core.model import load_weights

            model = load_weights(self.weights)[0].eval()
            self._model = model.to(memory_format=torch.channels_last)
        return self._model

    @model.setter
    def model(self, model: KeypointNet | KeypointEnsemble) -> None:
        self._model = model

    @classmethod
    def load(
        cls,
        weights: str | Path | None = None,
        threads: int | None = None,
        int8: bool = True,
        **options,
    ) -> KeypointPredictor:
        """The predictor for a weight file (default: the shipped one); with ``int8``, its
        int8 network where the release made one (``int8_file``) and ONNX Runtime is here,
        without torch (:meth:`on_int8`). ``threads`` overrides ``core.threads``' count."""
        configure_threads(threads=threads)
        path = Path(weights) if weights else shipped_weights()
        if not path.is_file():
            raise WeightsError(f"keypoint weights not found: {path}")
        backend = options.get("backend", "auto")
        on_onnx = backend == "onnxruntime" or (backend == "auto" and runtime.available())
        quantized = int8_file(path) if int8 and on_onnx and options.get("optimize", True) else None
        if quantized is not None:
            kept = {k: options[k] for k in options if k not in ("backend", "optimize")}
            try:
                predictor = cls.on_int8(path, quantized, **kept)
            except WeightsError:
                raise
            except Exception as err:
                problem = f"keypoint network {quantized.name} could not be loaded: {err}"
                raise WeightsError(problem) from err
            runtime.trim_heap()  # the file's parsed copies: ~30 MB resident otherwise
            log.info("loaded keypoint model %s (%s)", path.name, predictor.backend)
            return predictor
        from core.model import describe, load_weights

        try:
            model, meta = load_weights(path)
        except Exception as err:
            raise WeightsError(f"keypoint weights could not be loaded from {path}: {err}") from err
        configure_threads()  # torch is loaded now: give it this process's count
        predictor = cls(model, meta, **options)
        log.info("loaded keypoint model %s (%s, %s)", path.name, describe(model), predictor.backend)
        return predictor

    @staticmethod
    def _optimized(model: KeypointNet | KeypointEnsemble) -> WithSpread:
        """The network as the forward pass runs it: BatchNorm folded into the convolutions."""
        import torch

        from core.model import WithSpread, fold_batchnorm

        folded = fold_batchnorm(copy.deepcopy(model))
        return WithSpread(folded.to(memory_format=torch.channels_last))

    @classmethod
    def untrained(cls, config: ModelConfig | None = None) -> KeypointPredictor:
        """Random weights: for tests of code paths that don't care where the points land."""
        from core.model import KeypointNet, ModelConfig

        return cls(KeypointNet(config or ModelConfig()), optimize=False)

    def predict_boxes(self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """(N, 68, 2) image points for N face boxes, in one batch."""
        return self.look(image_rgb, boxes)[0]

    def look(
        self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 68, 2) image points and (N,) heatmap spreads (NaN: the model has no
        heatmaps) for N face boxes, in one batch."""
        on_torch = self.backend == "torch"
        return read_crops(
            self.forward, [image_rgb] * len(boxes), boxes, self.size, on_torch, not on_torch
        )

    def predict(self, image_rgb: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """(N, 68, 2) image points for N detected faces (``core.detect.Detection.box``)."""
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
