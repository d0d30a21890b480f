"""facemask-mirror: where a mirror image puts this data set's points, measured.

    facemask-mirror --data ../shared/data/face-keypoints [--split train|val] [--limit 700]

A model trained on unmirrored crops reads each photo twice: as it is, and mirrored
(pixel x -> W - 1 - x), with the box of the (mirrored) labels; the mirrored reading is
mirrored back (the 68-point permutation, x -> W - 1 - x). If the labels sat where a mirror
puts them, the two readings would scatter about the labels alike. They do not: the
mirrored reading lands left of the labels by ``px + frac x W``, fitted by least squares
over all points, which is the shift ``training.augment.MIRROR_SHIFT`` undoes on mirrored
training crops. Also printed: NME of both readings, mirrored straight and shifted, and
what a further per-point offset (in eye distances) would still explain. Training people
by default (the fit may choose training's constants; validation people only to check).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.keypoints.face68 import FLIP_PERMUTATION
from training.data import Sample, load_splits, read_image
from training.metrics import interocular, nme


def mirror_points(points: np.ndarray, width: int) -> np.ndarray:
    """The points of the mirror image (x -> W - 1 - x), as its own face's points 0..67."""
    out = np.array(points, np.float64)[FLIP_PERMUTATION]
    out[:, 0] = width - 1 - out[:, 0]
    return out


def fit_shift(dx: np.ndarray, widths: np.ndarray) -> tuple[float, float]:
    """Least squares ``dx ~ px + frac * W`` over rows of (image, point) -> (px, frac)."""
    a = np.stack([np.ones_like(widths, dtype=np.float64), widths.astype(np.float64)], axis=1)
    px, frac = np.linalg.lstsq(a, dx, rcond=None)[0]
    return float(px), float(frac)


def measure(samples: list[Sample], weights: Path | None = None) -> dict:
    from core.keypoints.landmarks import level_boxes
    from training.predictor import load_predictor

    predictor = load_predictor(weights, threads=2)
    truth, direct, mirrored, widths = [], [], [], []
    for s in samples:
        image = read_image(s.path)
        w = image.shape[1]
        labels = np.asarray(s.points, np.float64)
        direct.append(predictor.predict_boxes(image, level_boxes(labels[None]))[0])
        flipped = np.ascontiguousarray(image[:, ::-1])
        box = level_boxes(mirror_points(labels, w)[None])
        mirrored.append(mirror_points(predictor.predict_boxes(flipped, box)[0], w))
        truth.append(labels)
        widths.append(w)
    truth, direct, mirrored = np.array(truth), np.array(direct), np.array(mirrored)
    widths = np.asarray(widths, np.float64)
    dx = (mirrored - truth)[..., 0]
    px, frac = fit_shift(dx.ravel(), np.repeat(widths, 68))
    shifted = mirrored.copy()
    shifted[..., 0] -= px + frac * widths[:, None]
    # what is left, per point, in eye distances: the bound of a per-point correction
    left = (shifted - truth) / interocular(truth)[:, None, None]
    offsets = left.mean(0)
    return {
        "n": len(samples),
        "shift_px": px,
        "shift_frac_of_width": frac,
        "nme_direct": float(nme(direct, truth).mean()),
        "nme_mirrored_straight": float(nme(mirrored, truth).mean()),
        "nme_mirrored_shifted": float(nme(shifted, truth).mean()),
        "nme_mirrored_shifted_and_offset": float(np.linalg.norm(left - offsets, axis=-1).mean()),
        "per_point_offset_rms": float(np.sqrt((offsets**2).sum(-1).mean())),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-mirror",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument("--split", choices=["train", "val"], default="train")
    p.add_argument("--weights", type=Path, help="weights to read with (default: the shipped)")
    p.add_argument("--limit", type=int, default=700, help="a random sample of this many (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)

    samples = getattr(load_splits(args.data), args.split)
    if args.limit and len(samples) > args.limit:
        pick = np.random.default_rng(args.seed).choice(len(samples), args.limit, replace=False)
        samples = [samples[i] for i in sorted(pick)]
    res = measure(samples, args.weights)
    print(f"{res['n']} {args.split} images, read as they are and mirrored")
    print(
        f"mirrored reading - labels, x: {res['shift_px']:+.2f} px "
        f"{100 * res['shift_frac_of_width']:+.2f}% of the width"
    )
    print(f"NME as they are         {100 * res['nme_direct']:.2f}%")
    print(f"mirrored straight       {100 * res['nme_mirrored_straight']:.2f}%")
    print(f"mirrored, shifted       {100 * res['nme_mirrored_shifted']:.2f}%")
    print(
        f"  + per-point offsets   {100 * res['nme_mirrored_shifted_and_offset']:.2f}% "
        f"(offsets rms {100 * res['per_point_offset_rms']:.2f}% of the eye distance)"
    )
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
