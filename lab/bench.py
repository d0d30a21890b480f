"""``facemask-bench``: how long each stage takes on a 1280x960 photo.

Two photos are built from scikit-image's astronaut: one face, and four faces tiled on a
canvas. For each, every stage (decode, detect, landmarks, warp, encode) is timed on its
own, the whole ``FaceMasker.apply`` call end to end, and ``FaceMasker.apply_many`` with all
seven masks (the bot's "All 7"; printed as a ratio to one mask); medians over ``--repeat`` runs
after a warm-up. ``--baseline`` times the first release's pipeline (Haar cascade, model on
torch) in the same run, so the two can be compared on one machine at one moment. With
``--json`` the last line is JSON with ``total_ms_p50`` (the one-face photo's end-to-end
median) and every stage's median per photo.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from core import imageio, warp
from core.results import Mode

WIDTH, HEIGHT = 1280, 960
ALL_SEVEN = (1, 2, 3, 4, 5, 6, 7)  # FaceMasker.apply_many, timed against one mask


def one_face_photo() -> np.ndarray:
    """The astronaut at 960x960, centred on a 1280x960 canvas (face about 170 px wide)."""
    from skimage import data

    face = cv2.resize(data.astronaut(), (HEIGHT, HEIGHT), interpolation=cv2.INTER_CUBIC)
    pad = (WIDTH - HEIGHT) // 2
    return cv2.copyMakeBorder(face, 0, 0, pad, WIDTH - HEIGHT - pad, cv2.BORDER_REPLICATE)


def group_photo(rows: int = 2, cols: int = 2) -> np.ndarray:
    """``rows`` x ``cols`` copies of the astronaut on a 1280x960 canvas."""
    from skimage import data

    cell_w, cell_h = WIDTH // cols, HEIGHT // rows
    face = cv2.resize(data.astronaut(), (cell_h, cell_h), interpolation=cv2.INTER_AREA)
    pad = (cell_w - cell_h) // 2
    cell = cv2.copyMakeBorder(face, 0, 0, pad, cell_w - cell_h - pad, cv2.BORDER_REPLICATE)
    return np.vstack([np.hstack([cell] * cols)] * rows)


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def template_in_box(box: tuple[float, float, float, float]) -> np.ndarray:
    """The mean face placed in a face's box: face-sized points for an untrained model."""
    from masks import catalog

    t = catalog.template().points
    unit = (t - t.min(axis=0)) / np.ptp(t, axis=0)
    x0, y0, x1, y1 = box  # a face's box is its 68-point box (core.results.Face)
    return (unit * [x1 - x0, y1 - y0] + [x0, y0]).astype(np.float32)


def bench_photo(
    masker, jpeg: bytes, mask_id: int, repeat: int, trained: bool = True
) -> dict[str, float]:
    decoded = imageio.decode(jpeg)
    rgb = decoded.rgb
    boxes = [d.box for d in masker.detector.detect(rgb)]  # all of them cost landmark time
    faces = masker.find_faces(rgb, Mode.FACES)  # the ones that get a mask
    points = np.asarray([f.points for f in faces]).reshape(-1, 68, 2)
    if not trained:  # random points would time the warp on a random-sized region
        points = np.asarray([template_in_box(f.box) for f in faces]).reshape(-1, 68, 2)
    picture = masker.picture(mask_id)
    masked = warp.apply_masks(rgb, picture, list(points))
    stages = {
        "decode": median_ms(lambda: imageio.decode(jpeg), repeat),
        "detect": median_ms(lambda: masker.detector.detect(rgb), repeat),
        "landmarks": median_ms(lambda: masker.predictor.predict(rgb, boxes), repeat),
        "warp": median_ms(lambda: warp.apply_masks(rgb, picture, list(points)), repeat),
        "encode": median_ms(lambda: imageio.encode_like(decoded, masked), repeat),
        "total": median_ms(lambda: masker.apply(jpeg, mask_id, Mode.FACES), repeat),
        # the bot's "All 7": faces found and read once, seven masks drawn and encoded
        "all_seven": median_ms(lambda: masker.apply_many(jpeg, ALL_SEVEN, Mode.FACES), repeat),
    }
    timings = {k: round(v, 2) for k, v in stages.items()}
    ratio = round(stages["all_seven"] / stages["total"], 2)
    return {"detections": len(boxes), "faces": len(faces), **timings, "all_seven_ratio": ratio}


def make_masker(args, detector: str, backend: str):
    from core.api import MAX_SHAPE_ERROR, FaceMasker
    from core.detect import default_detector
    from core.errors import WeightsError
    from core.landmarks import KeypointPredictor

    try:
        predictor = KeypointPredictor.load(args.weights, threads=args.threads, backend=backend)
        weights = "shipped" if args.weights is None else str(args.weights)
    except WeightsError as err:
        # Untrained weights cost exactly the same time; only the points are meaningless.
        print(
            f"facemask-bench: {err}; timing an untrained model instead "
            "(the warp stage then uses the mean face placed in each detector box)"
        )
        predictor = KeypointPredictor.untrained()
        weights = "untrained"
    # Random points are never face-shaped: keep every detection when the model is untrained.
    masker = FaceMasker(
        predictor=predictor,
        detector=default_detector(detector),
        max_shape_error=MAX_SHAPE_ERROR if weights != "untrained" else None,
    )
    return masker, weights


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if "--video" in given:  # moving pictures have their own bench (lab/video_bench.py)
        from lab.video_bench import main as video_main

        return video_main([a for a in given if a != "--video"])
    p = argparse.ArgumentParser(prog="facemask-bench", description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=30, help="timed runs per stage (median reported)")
    p.add_argument("--mask", type=int, default=1)
    p.add_argument("--weights", type=Path, default=None, help="keypoint weights (default: shipped)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--detector", choices=["mtcnn", "haar"], default="mtcnn")
    p.add_argument("--backend", choices=["auto", "onnxruntime", "torch"], default="auto")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also time the first release's pipeline (Haar cascade, model on torch) in this run",
    )
    p.add_argument("--json", action="store_true", help="last line: JSON with total_ms_p50")
    args = p.parse_args(argv)

    setups = [(args.detector, args.backend)]
    if args.baseline:
        setups.append(("haar", "torch"))
    photos = [("one_face", one_face_photo()), ("four_faces", group_photo())]
    jpegs = {name: imageio.encode(photo, None, "JPEG") for name, photo in photos}
    stages = ["decode", "detect", "landmarks", "warp", "encode", "total", "all_seven"]
    runs = []
    for detector, backend in setups:
        masker, weights = make_masker(args, detector, backend)
        results = {
            name: bench_photo(masker, jpeg, args.mask, args.repeat, weights != "untrained")
            for name, jpeg in jpegs.items()
        }
        setup = f"{detector} + {masker.predictor.backend}"
        runs.append((setup, results))
        print(f"{WIDTH}x{HEIGHT} JPEG, mask {args.mask}, median of {args.repeat} runs (ms), "
              f"{os.cpu_count()} CPUs, weights: {weights}, detector+runtime: {setup}")  # fmt: skip
        print(f"{'photo':<11} {'boxes':>5} {'faces':>5} " + " ".join(f"{s:>9}" for s in stages))
        for name, r in results.items():
            row = " ".join(f"{r[s]:>9.1f}" for s in stages)
            print(f"{name:<11} {r['detections']:>5} {r['faces']:>5} {row}")
        for name, r in results.items():  # the target: all seven <= 2.5x one mask
            print(f"{name}: all seven masks {r['all_seven']:.1f} ms = {r['all_seven_ratio']:.2f}x "
                  f"one mask ({r['total']:.1f} ms)")  # fmt: skip
    if args.json:
        setup, results = runs[0]
        summary = {
            "total_ms_p50": results["one_face"]["total"],
            "setup": setup,
            "photos": results,
            "size": [WIDTH, HEIGHT],
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "weights": weights,
        }
        if args.baseline:
            summary["baseline"] = {"setup": runs[1][0], "photos": runs[1][1]}
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
