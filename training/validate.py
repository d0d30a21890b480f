"""Validation on the product's path, batched: the epoch it selects is the best at what ships.

Each validation face is read by the functions the product reads faces with
(:mod:`core.keypoints.landmarks`), only batched over many images and run by the network in training:

* ``detector``: the face box the product's detector found in the pack (its angle included)
  takes one look, and a face the model doubts its quarter turns and level looks too
  (``core.keypoints.landmarks.detected_points``); faces the detector missed are counted, not scored;
* ``whole``: the whole image taken as the face, a first look and a second one level with
  its eyes (``core.keypoints.landmarks.whole_image_points``).

Crops are cut from the pack's images by ``core.keypoints.preprocess.crop_image``, as the
product cuts them from a photo. What still differs from ``facemask-eval``: the pack's images
were shrunk to fit its canvas (and the detector ran there), and the product runs the released
network (float16 weights, int8 backbones on ONNX Runtime) where this runs the one in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.detection.boxes import FaceBox, whole_image_box
from core.keypoints.landmarks import (
    UNSURE_SPREAD,
    UNSURE_SPREAD_WHOLE,
    Look,
    detected_points,
    read_crops,
    whole_image_points,
)
from training.data import Pack
from training.metrics import nme
from training.model import WithSpread
from training.predictor import numpy_forward

BATCH = 256


def batched_look(model: torch.nn.Module, images: Sequence[np.ndarray], size: int) -> Look:
    """A ``core.keypoints.landmarks.Look`` over ``images`` (face i is images[i]) for a network in
    training, on its own device, ``BATCH`` crops at a time."""
    forward = numpy_forward(WithSpread(model), next(model.parameters()).device)

    def look(faces: Sequence[int], boxes: Sequence[FaceBox]) -> tuple[np.ndarray, np.ndarray]:
        parts = [
            read_crops(
                forward,
                [images[f] for f in faces[k : k + BATCH]],
                boxes[k : k + BATCH],
                size,
            )
            for k in range(0, len(boxes), BATCH)
        ]
        if not parts:
            return np.zeros((0, 68, 2), np.float32), np.zeros(0, np.float32)
        return np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])

    return look


def validate(
    model: torch.nn.Module,
    pack: Pack,
    size: int,
    unsure_spread: float = UNSURE_SPREAD,
    unsure_spread_whole: float = UNSURE_SPREAD_WHOLE,
) -> dict:
    """NME of ``model`` on the pack's faces, on the product's two paths (see above)."""
    was_training = model.training
    model.eval()
    images = [img[:h, :w] for img, (h, w) in zip(pack.images, pack.sizes)]
    found = [i for i in range(len(pack)) if pack.face_box(i) is not None]
    res: dict = {"n": len(pack), "missed": len(pack) - len(found)}
    for mode in ("detector", "whole"):
        if mode == "detector":
            idx = np.asarray(found, int)
            look = batched_look(model, [images[i] for i in idx], size)
            pred = detected_points(look, [pack.face_box(i) for i in idx], unsure_spread)
        else:
            idx = np.arange(len(pack))
            look = batched_look(model, images, size)
            boxes = [whole_image_box(int(h), int(w)) for h, w in pack.sizes]
            pred = whole_image_points(look, boxes, unsure_spread_whole)
        if len(idx) == 0:  # the detector found none of these faces
            res[mode] = res[f"{mode}_fail_0.10"] = float("nan")
            continue
        errors = nme(pred, pack.points[idx])
        res[mode] = float(errors.mean())
        res[f"{mode}_fail_0.10"] = float((errors > 0.10).mean())
    if was_training:
        model.train()
    # the selection metric: the product's path, or the whole image if nothing was detected
    res["score"] = res["detector"] if np.isfinite(res["detector"]) else res["whole"]
    return res
