"""facemask-label-noise: how much the data set's labels jitter from frame to frame.

    facemask-label-noise --data ../shared/data/face-keypoints [--model] [--json]

The images are frames of YouTube clips: ``Name_31.jpg`` is frame 1 of clip 3, so frames
0, 1 and 2 of a clip are neighbours. The middle frame's 68 labels are compared with the
mean of its neighbours' labels, each aligned onto it by a similarity transform (moving,
turning or zooming the head costs nothing); what is left, in NME units, is label noise
plus the face's real non-rigid change between frames. ``--model`` measures the same on
the shipped model's predictions for the same frames: the model's own jitter plus the same
real change. Together they bound how low any model's NME can go against these labels.
Training people only (never the validation people, never test/).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from training.data import Sample, load_splits
from training.metrics import interocular

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


def middle_residual(before: np.ndarray, middle: np.ndarray, after: np.ndarray) -> float:
    """NME of the middle frame's points against its aligned neighbours' mean."""
    expected = (align(before, middle) + align(after, middle)) / 2
    return float(np.linalg.norm(expected - middle, axis=1).mean() / interocular(middle))


def measure(
    clips: list[tuple[Sample, Sample, Sample]],
    points_of: Callable[[Sample], np.ndarray] | None = None,
) -> np.ndarray:
    """Per clip: the residual of the labels, or of ``points_of(sample)`` where given."""
    out = []
    for trio in clips:
        pts = [np.asarray(points_of(s) if points_of else s.points, np.float64) for s in trio]
        out.append(middle_residual(*pts))
    return np.array(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-label-noise",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument("--model", action="store_true", help="also the shipped model's predictions")
    p.add_argument("--limit", type=int, default=300, help="clips for --model (0: all)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)

    clips = triplets(load_splits(args.data).train)
    if not clips:
        raise SystemExit("facemask-label-noise: no clips with frames 0, 1 and 2 found")
    labels = measure(clips)
    res = {"clips": len(clips), "labels_mean": float(labels.mean())}
    res["labels_median"] = float(np.median(labels))
    print(f"{len(clips)} clips of training people, frames 0-1-2")
    print(f"labels: middle frame vs aligned neighbours, NME mean {100 * labels.mean():.2f}%, "
          f"median {100 * np.median(labels):.2f}%")  # fmt: skip
    if args.model:
        from core.detect import default_detector
        from core.landmarks import KeypointPredictor
        from core.preprocess import box_from_points
        from training.data import read_image
        from training.metrics import matching_detection

        predictor, detector = KeypointPredictor.load(threads=2), default_detector()

        def predicted(s: Sample) -> np.ndarray:
            image = read_image(s.path)
            found = matching_detection(detector.detect(image), s.points)
            if found is None:  # rare: the labels' box, so that the clip still counts
                return predictor.predict_boxes(image, [box_from_points(s.points)])[0]
            return predictor.predict(image, [found.box], [found.angle])[0]

        some = clips[: args.limit] if args.limit else clips
        model = measure(some, predicted)
        same = labels[: len(some)]
        res.update(
            model_clips=len(some),
            model_mean=float(model.mean()),
            labels_mean_same_clips=float(same.mean()),
        )
        print(f"on the first {len(some)} clips: labels {100 * same.mean():.2f}%, the shipped "
              f"model's predictions {100 * model.mean():.2f}%")  # fmt: skip
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
