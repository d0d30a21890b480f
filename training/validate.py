"""Batched validation on the pack, the product's way: detector box, then refine pass.

Mirrors core.landmarks.KeypointPredictor (same boxes, same two passes, same matrices)
but batched on the training device, so it can run every epoch.
"""

from __future__ import annotations

import numpy as np
import torch

from core.preprocess import (
    FaceBox,
    box_from_detection,
    box_from_points,
    points_from_unit,
    whole_image_box,
)
from training.augment import crop_batch, normalize_tensor
from training.data import Pack
from training.metrics import nme


@torch.no_grad()
def predict_boxes(
    model, images: torch.Tensor, boxes: list[FaceBox], size: int, batch: int = 128
) -> np.ndarray:
    out = []
    for i in range(0, len(boxes), batch):
        b = boxes[i : i + batch]
        crops, matrices = crop_batch(images[i : i + batch], b, size, np.zeros(len(b), bool))
        x = normalize_tensor(crops).contiguous(memory_format=torch.channels_last)
        unit = model(x).float().cpu().numpy().astype(np.float64)
        out.extend(points_from_unit(u, m, size) for u, m in zip(unit, matrices))
    return np.stack(out)


def validate(model, pack: Pack, images: torch.Tensor, size: int, refine: bool = True) -> dict:
    """NME on the product's path (detector boxes; misses reported, not scored) and whole-image."""
    was_training = model.training
    model.eval()
    found = ~np.isnan(pack.detections).any(1)
    res: dict = {"n": len(pack), "missed": int((~found).sum())}
    for mode in ("detector", "whole"):
        if mode == "detector":
            idx = np.flatnonzero(found)
            boxes = [box_from_detection(tuple(pack.detections[i])) for i in idx]
        else:
            idx = np.arange(len(pack))
            boxes = [whole_image_box(int(h), int(w)) for h, w in pack.sizes[idx]]
        if len(idx) == 0:  # the detector found none of these faces
            res[mode] = res[f"{mode}_pass1"] = res[f"{mode}_fail_0.10"] = float("nan")
            continue
        imgs = images[torch.as_tensor(idx, device=images.device)]
        pred = predict_boxes(model, imgs, boxes, size)
        res[f"{mode}_pass1"] = float(nme(pred, pack.points[idx]).mean())
        if refine:
            pred = predict_boxes(model, imgs, [box_from_points(p) for p in pred], size)
        errors = nme(pred, pack.points[idx])
        res[mode] = float(errors.mean())
        res[f"{mode}_fail_0.10"] = float((errors > 0.10).mean())
    if was_training:
        model.train()
    # the selection metric: the product's path, or the whole image if nothing was detected
    res["score"] = res["detector"] if np.isfinite(res["detector"]) else res["whole"]
    return res
