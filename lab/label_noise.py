"""facemask-label-noise: how much of the model's error is the labels' own noise.

    facemask-label-noise --data ../shared/data/face-keypoints [--split val|train] [--model]

The images are frames of YouTube clips: ``Name_31.jpg`` is frame 1 of clip 3, so frames
0, 1 and 2 of a clip are neighbours. For the middle frame of every clip three squared
NMEs are measured (each the mean over points of the squared distance over the squared
inter-ocular distance), the neighbours' labels first aligned onto the middle frame by a
similarity transform (moving, turning or zooming the head costs nothing):

    A = |model - labels|^2            = e^2 + s^2            (needs --model)
    B = |model - neighbours' labels|^2 = e^2 + m^2 + s^2 / 2  (needs --model)
    C = |labels - neighbours' labels|^2 = m^2 + 3 s^2 / 2

with ``s`` the labels' noise in one frame (independent from frame to frame), ``e`` the
model's own error and ``m`` the face's real non-rigid change between frames that the
alignment leaves. Three equations, three unknowns: ``s^2 = (A - B + C) / 2``. A perfect
model would still score ``s`` against these labels: that is the floor. Labels alone (no
``--model``) give C, which bounds ``s`` from above. Values are root-mean-square NMEs; the
mean NME of the usual tables is ~0.85x its RMS here. Validation people by default (the
model never saw them); ``--split train`` for the 922 clips of the training people.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.data import Sample, load_splits
from training.metrics import interocular, nme

FRAME = re.compile(r"(?P<clip>.+_\d)(?P<frame>\d)\.[^.]+$")


def align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` under the similarity transform (scale, rotation, shift) that best fits ``dst``."""
    za = (src[:, 0] - src[:, 0].mean()) + 1j * (src[:, 1] - src[:, 1].mean())
    zb = (dst[:, 0] - dst[:, 0].mean()) + 1j * (dst[:, 1] - dst[:, 1].mean())
    z = (np.vdot(za, zb) / np.vdot(za, za)) * za
    return np.stack([z.real, z.imag], axis=1) + dst.mean(axis=0)


def triplets(samples: list[Sample]) -> list[tuple[Sample, Sample, Sample]]:
    """(frame 0, frame 1, frame 2) of every clip that has all three."""
    frames: dict[tuple[str, int], Sample] = {}
    for s in samples:
        m = FRAME.match(s.path.name)
        if m:
            frames[(m["clip"], int(m["frame"]))] = s
    return [
        (frames[(clip, 0)], s, frames[(clip, 2)])
        for (clip, f), s in sorted(frames.items())
        if f == 1 and (clip, 0) in frames and (clip, 2) in frames
    ]


def neighbours(before: np.ndarray, middle: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The mean of the neighbours' points, each aligned onto the middle frame's."""
    return (align(before, middle) + align(after, middle)) / 2


def squared_nme(points: np.ndarray, other: np.ndarray, labels: np.ndarray) -> float:
    """Mean over points of the squared distance, over the labels' squared eye distance."""
    return float(((points - other) ** 2).sum(-1).mean() / interocular(labels) ** 2)


@dataclass(frozen=True)
class Split:
    """Root-mean-square NMEs: label noise, model error, non-rigid motion between frames."""

    label_noise: float
    model_error: float
    motion: float

    @property
    def noise_share(self) -> float:
        """The part of the model's squared error against the labels that is label noise."""
        return self.label_noise**2 / (self.label_noise**2 + self.model_error**2)


def decompose(a: float, b: float, c: float) -> Split:
    """The three mean squared NMEs of the module's docstring -> s, e, m (clipped at 0)."""
    s2 = max(0.0, (a - b + c) / 2)
    return Split(
        float(np.sqrt(s2)), float(np.sqrt(max(0.0, a - s2))), float(np.sqrt(max(0.0, c - 1.5 * s2)))
    )


def _points(s: Sample) -> np.ndarray:
    return np.asarray(s.points, np.float64)


def measure(
    clips: list[tuple[Sample, Sample, Sample]],
    predict: Callable[[Sample], np.ndarray] | None = None,
) -> dict:
    """Per-clip NME of the labels (and of the model, where ``predict`` is given) -> summary."""
    labels_nme, a, b, c, model_nme = [], [], [], [], []
    for before, middle, after in clips:
        truth = _points(middle)
        expected = neighbours(_points(before), truth, _points(after))
        labels_nme.append(nme(expected, truth))
        c.append(squared_nme(expected, truth, truth))
        if predict is not None:
            p = np.asarray(predict(middle), np.float64)
            model_nme.append(nme(p, truth))
            a.append(squared_nme(p, truth, truth))
            b.append(squared_nme(p, expected, truth))
    res: dict = {
        "clips": len(clips),
        "labels_mean": float(np.mean(labels_nme)),
        "labels_median": float(np.median(labels_nme)),
        "labels_rms": float(np.sqrt(np.mean(c))),
        # the model-free bound: all of C label noise, none of it motion
        "label_noise_at_most": float(np.sqrt(np.mean(c) / 1.5)),
    }
    if predict is not None:
        split = decompose(float(np.mean(a)), float(np.mean(b)), float(np.mean(c)))
        res.update(
            model_nme_mean=float(np.mean(model_nme)),
            model_rms=float(np.sqrt(np.mean(a))),
            model_vs_neighbours_rms=float(np.sqrt(np.mean(b))),
            **asdict(split),
            noise_share=split.noise_share,
            # a perfect model's mean NME, scaled from the model's by the noise's share
            floor_nme_mean=float(np.mean(model_nme) * np.sqrt(split.noise_share)),
        )
    return res


def product_path(weights: Path | None = None) -> Callable[[Sample], np.ndarray]:
    """The product's path for one labelled image: detector, then the model (shipped default)."""
    from core.detection.registry import default_detector
    from core.keypoints.preprocess import box_from_points
    from lab.evaluate import product_prediction
    from training.data import read_image
    from training.predictor import load_predictor

    predictor, detector = load_predictor(weights, threads=2), default_detector()

    def predict(s: Sample) -> np.ndarray:
        image = read_image(s.path)
        pred, _ = product_prediction(predictor, detector, image, s.points)
        if pred is None:  # rare: the labels' box, so that the clip still counts
            return predictor.predict_boxes(image, [box_from_points(s.points)])[0]
        return pred

    return predict


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-label-noise",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument(
        "--split",
        choices=["val", "train"],
        default="val",
        help="validation people (default; never trained on) or training people",
    )
    p.add_argument("--model", action="store_true", help="split the shipped model's error too")
    p.add_argument("--weights", type=Path, help="with --model: these weights, not the shipped")
    p.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)

    splits = load_splits(args.data)
    clips = triplets(splits.val if args.split == "val" else splits.train)
    if args.limit:
        clips = clips[: args.limit]
    if not clips:
        raise SystemExit("facemask-label-noise: no clips with frames 0, 1 and 2 found")
    res = measure(clips, product_path(args.weights) if args.model else None)
    who = "validation" if args.split == "val" else "training"
    print(f"{res['clips']} clips of {who} people, frames 0-1-2 (NME in % of the eye distance)")
    print(f"labels, middle frame vs its aligned neighbours: mean {100 * res['labels_mean']:.2f}%, "
          f"median {100 * res['labels_median']:.2f}%, RMS {100 * res['labels_rms']:.2f}% "
          f"-> label noise at most {100 * res['label_noise_at_most']:.2f}% RMS")  # fmt: skip
    if args.model:
        print(f"model vs the labels: mean {100 * res['model_nme_mean']:.2f}%, RMS "
              f"{100 * res['model_rms']:.2f}%; vs the neighbours' labels: RMS "
              f"{100 * res['model_vs_neighbours_rms']:.2f}%")  # fmt: skip
        print(f"split (RMS): label noise {100 * res['label_noise']:.2f}%, model error "
              f"{100 * res['model_error']:.2f}%, motion between frames {100 * res['motion']:.2f}%; "
              f"label noise is {100 * res['noise_share']:.0f}% of the model's squared error "
              f"-> a perfect model: mean NME ~{100 * res['floor_nme_mean']:.2f}%")  # fmt: skip
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
