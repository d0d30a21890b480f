"""facemask-eval: NME of the shipped pipeline on labelled images.

    facemask-eval --images DIR --labels CSV [--weights PATH] [--whole-image]
                  [--people FILE] [--json] [--grid OUT.png]

Default is the product's path: the project's detector finds the face (the detection
whose centre lies inside the ground truth's keypoint box), searching the image turned
where no face is sure upright, as the product does (``core.detection.turns.detect_with_turns``);
the model predicts on that box. An image where no such face is found counts as a failure
(NME = inf).
``--whole-image`` is the seed's protocol instead: the whole image is the face crop.
``--people FILE`` keeps only the images of the people named in FILE (one per line), so
the validation people's images in training/ and test/ can be scored together.
``--turn DEG`` turns every image (on a canvas big enough to keep it whole) and its labels
by DEG degrees counter-clockwise first: how the pipeline copes with tilted heads.
``--doubt`` also measures the model's doubt (the spread of its heatmaps) on every found face
the right way up (turned with its labelled eyes) and upside down: a release checks that
``core.keypoints.landmarks.UNSURE_SPREAD`` (whole images: ``UNSURE_SPREAD_WHOLE``) lies between.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.api import read_faces
from core.detection.base import Detection, FaceDetector
from core.detection.boxes import whole_image_box
from core.detection.registry import default_detector
from core.detection.turns import detect_with_turns, turn_image
from core.keypoints.face68 import REGIONS
from core.keypoints.landmarks import UNSURE_SPREAD, UNSURE_SPREAD_WHOLE, KeypointPredictor
from core.keypoints.preprocess import eye_angle, reorient
from lab.options import add_detector_option
from training.data import Sample, read_image, read_labels, read_validation_people
from training.metrics import matching_detection, point_errors, summarize
from training.predictor import load_predictor

log = logging.getLogger(__name__)


def turn(image: np.ndarray, points: np.ndarray, degrees: float):
    """The image turned counter-clockwise about its centre, uncropped (the corners filled
    by the edge's pixels, as a tilted camera would see more of the scene), and its points."""
    turned, matrix = turn_image(image, degrees, cv2.BORDER_REPLICATE)
    return turned, points @ matrix[:, :2].T + matrix[:, 2]


def product_prediction(
    predictor: KeypointPredictor, detector: FaceDetector, image: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray | None, Detection | None]:
    """The product's path on one labelled photo: its face search (turned where no face is
    sure upright), the detection matching the labels, the model on that box; the points
    and that detection. None, None: no detection matches (the face was missed)."""
    found = product_detection(detector, image, truth)
    points = None if found is None else product_points(predictor, image, found)
    return (None, None) if points is None else (points, found)


def product_points(
    predictor: KeypointPredictor, image: np.ndarray, found: Detection
) -> np.ndarray | None:
    """The model's points on a found face as the product reads them, or None where the
    product would not keep the face (:func:`confirmed`)."""
    read = read_faces(predictor, image, [found.box])
    return read.points[0] if confirmed(found, image, read.judged[0]) else None


def confirmed(found, image: np.ndarray, judged: np.ndarray) -> bool:
    """Whether the product would keep a found face as a face: a detection below its
    detector's own bar (``unsure``) only where the face verifier is sure of it, as the gate
    asks (``FaceGate.min_face_unsure``, on the first look's points); any other, yes (the
    gate's other bars are measured by ``lab.false_masks``' damage set)."""
    if not found.unsure:
        return True
    from core.keypoints.plausibility import FaceGate
    from core.keypoints.verifier import shipped_verifier

    verifier = shipped_verifier()
    if verifier is None:
        return False
    face = float(verifier.judge(image, [judged], look=False)[0][0])
    return face >= FaceGate().min_face_unsure


def product_detection(detector: FaceDetector, image: np.ndarray, truth: np.ndarray):
    """The product's face search on one labelled photo (turned where no face is sure
    upright) and the detection that matches the labels; None where none does."""
    return matching_detection(detect_with_turns(detector, image), truth)


def half_turn_spreads(
    predictor: KeypointPredictor, image: np.ndarray, truth: np.ndarray, found: Detection | None
) -> np.ndarray:
    """The heatmap spreads of a face's crop turned with its labelled eyes, and of the same
    crop upside down: of the matched detection's box, or (None) of the whole image."""
    angle = eye_angle(truth)
    if found is None:
        whole = whole_image_box(*image.shape[:2])
        boxes = [replace(whole, angle=angle + t) for t in (0.0, 180.0)]
    else:
        boxes = [reorient(found.box, angle + t) for t in (0.0, 180.0)]
    return predictor.look(image, boxes)[1]


def evaluate(
    samples: list[Sample],
    predictor: KeypointPredictor,
    detector: FaceDetector | None,
    progress: bool = True,
    turn_degrees: float = 0.0,
    doubt: bool = False,
) -> tuple[dict, list[tuple[Sample, np.ndarray | None, float]]]:
    """Per-image NME on the product's path (detector given) or whole-image path; with
    ``doubt``, also the heatmap spreads of every found face both ways up (``spread``)."""
    per_face, regions, results, missed, ms = [], {k: [] for k in REGIONS}, [], 0, []
    spreads = []
    for s in tqdm(samples, desc="evaluating", disable=not progress):
        image = read_image(s.path)
        if turn_degrees:
            image, truth = turn(image, s.points, turn_degrees)
            s = Sample(s.path, truth.astype(np.float32))
        t0 = time.perf_counter()
        if detector is None:
            pred, found = predictor.predict_whole_image(image), None
        else:
            pred, found = product_prediction(predictor, detector, image, s.points)
        ms.append((time.perf_counter() - t0) * 1000)
        if pred is None:
            missed += 1
            per_face.append(math.inf)
            results.append((s, None, math.inf))
            continue
        if doubt:
            spreads.append(half_turn_spreads(predictor, image, s.points, found))
        errs = point_errors(pred, s.points)
        for k, part in REGIONS.items():
            regions[k].append(errs[part].mean())
        per_face.append(float(errs.mean()))
        results.append((s, pred, float(errs.mean())))
    finite = np.asarray([e for e in per_face if math.isfinite(e)])
    summary = summarize(np.asarray(per_face), None)
    # the mean over failures-as-inf is inf; report the mean over found faces beside it
    summary["nme_mean"] = float(finite.mean()) if finite.size else float("nan")
    summary["regions"] = {k: float(np.mean(v)) for k, v in regions.items() if v}
    summary["missed"] = missed
    summary["ms_per_image_p50"] = float(np.median(ms)) if ms else float("nan")
    if doubt:
        threshold = UNSURE_SPREAD_WHOLE if detector is None else UNSURE_SPREAD
        summary["spread"] = doubt_summary(np.reshape(spreads, (-1, 2)), threshold)
    return summary, results


def doubt_summary(spreads: np.ndarray, threshold: float) -> dict:
    """(N, 2) spreads, right way up and upside down: their ranges, and whether the path's
    threshold (``UNSURE_SPREAD``, whole images ``UNSURE_SPREAD_WHOLE``) lies between them."""
    if not len(spreads):
        return {"n": 0}
    up, down = spreads[:, 0], spreads[:, 1]
    return {
        "n": len(up),
        "right_way_up": {
            "p50": float(np.median(up)),
            "p99": float(np.percentile(up, 99)),
            "max": float(up.max()),
        },
        "upside_down": {
            "min": float(down.min()),
            "p5": float(np.percentile(down, 5)),
            "p50": float(np.median(down)),
        },
        "unsure_spread": threshold,
        "right_way_up_doubted": float((up > threshold).mean()),  # also looked at turned
        "upside_down_trusted": float((down <= threshold).mean()),  # left upside down
        "separates": bool(up.max() < threshold < down.min()),
    }


def format_doubt(d: dict) -> str:
    if not d["n"]:
        return "heatmap spread: no faces found"
    up, down = d["right_way_up"], d["upside_down"]
    return "\n".join(
        [
            f"heatmap spread on {d['n']} faces",
            f"  right way up: median {up['p50']:.3f}, 99th percentile {up['p99']:.3f}, "
            f"max {up['max']:.3f}",
            f"  upside down:  min {down['min']:.3f}, 5th percentile {down['p5']:.3f}, "
            f"median {down['p50']:.3f}",
            f"  threshold {d['unsure_spread']:.3f}: "
            + ("lies between them" if d["separates"] else "does NOT lie between them")
            + f" ({100 * d['right_way_up_doubted']:.1f}% of the faces right way up doubted,"
            f" {100 * d['upside_down_trusted']:.1f}% upside down trusted)",
        ]
    )


def draw_grid(results, path: Path, n: int = 16, seed: int = 0, turn_degrees: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(results), size=min(n, len(results)), replace=False)
    tiles = []
    for i in pick:
        s, pred, err = results[i]
        img = np.ascontiguousarray(read_image(s.path))
        if turn_degrees:
            img, _ = turn(img, s.points, turn_degrees)  # s.points are turned already
        scale = 256 / max(img.shape[:2])
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.zeros((256, 256, 3), np.uint8)
        canvas[: img.shape[0], : img.shape[1]] = img
        for x, y in s.points * scale:
            cv2.circle(canvas, (round(x), round(y)), 2, (0, 255, 0), -1, cv2.LINE_AA)
        if pred is not None:
            for x, y in pred * scale:
                cv2.circle(canvas, (round(x), round(y)), 2, (255, 40, 40), -1, cv2.LINE_AA)
        label = "missed" if pred is None else f"NME {100 * err:.1f}%"
        cv2.putText(canvas, label, (6, 248), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
        tiles.append(canvas)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)])
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def format_table(summary: dict, title: str) -> str:
    rows = [
        ("faces", f"{summary['n']}"),
        ("missed by the detector", f"{summary['missed']}"),
        ("NME mean (found faces)", f"{100 * summary['nme_mean']:.2f}%"),
        ("NME median", f"{100 * summary['nme_median']:.2f}%"),
        ("failures NME > 0.08", f"{100 * summary['fail_0.08']:.2f}%"),
        ("failures NME > 0.10", f"{100 * summary['fail_0.10']:.2f}%"),
    ]
    rows += [(f"  {k}", f"{100 * v:.2f}%") for k, v in summary["regions"].items()]
    rows.append(("ms per image (p50)", f"{summary['ms_per_image_p50']:.1f}"))
    width = max(len(r[0]) for r in rows)
    return "\n".join([title] + [f"{k:<{width}}  {v}" for k, v in rows])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--images",
        type=Path,
        required=True,
        action="append",
        help="image folder (repeat together with --labels for several)",
    )
    p.add_argument("--labels", type=Path, required=True, action="append", help="upstream CSV")
    p.add_argument("--weights", type=Path, help="default: the shipped weights")
    p.add_argument("--whole-image", action="store_true", help="the seed's protocol")
    add_detector_option(p)
    p.add_argument("--people", type=Path, help="keep only these people (validation_people.txt)")
    p.add_argument("--exclude-people", type=Path, help="drop these people")
    p.add_argument("--limit", type=int, help="score only the first N images")
    p.add_argument("--turn", type=float, default=0.0, help="turn images by DEG degrees first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    p.add_argument("--grid", type=Path, help="PNG of predictions (red) and truth (green)")
    p.add_argument(
        "--doubt", action="store_true", help="heatmap spreads right way up and upside down"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if len(args.images) != len(args.labels):
        p.error("give --images and --labels the same number of times")
    samples: list[Sample] = []
    for images, labels in zip(args.images, args.labels):
        if not labels.exists():
            sys.exit(f"facemask-eval: no such labels file: {labels}")
        samples += read_labels(labels, images)
    if args.people:
        keep = read_validation_people(args.people)
        samples = [s for s in samples if s.person in keep]
    if args.exclude_people:
        drop = read_validation_people(args.exclude_people)
        samples = [s for s in samples if s.person not in drop]
    if args.limit:
        samples = samples[: args.limit]
    if not samples:
        sys.exit("facemask-eval: no labelled images to score")

    predictor = load_predictor(args.weights, threads=args.threads)
    detector = None if args.whole_image else default_detector(args.detector)
    summary, results = evaluate(
        samples,
        predictor,
        detector,
        progress=not args.json,
        turn_degrees=args.turn,
        doubt=args.doubt,
    )
    summary["turn_degrees"] = args.turn
    summary["protocol"] = "whole-image" if args.whole_image else args.detector
    summary["weights"] = str(args.weights or "shipped")
    mode = "whole image as the face" if args.whole_image else "product path: detector + model"
    if args.turn:
        mode += f", turned {args.turn:g} deg"
    print(format_table(summary, f"NME on {len(samples)} images ({mode})"))
    if args.grid:
        draw_grid(results, args.grid, turn_degrees=args.turn)
        print(f"grid: {args.grid}")
    if args.doubt:
        print(format_doubt(summary["spread"]))
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
