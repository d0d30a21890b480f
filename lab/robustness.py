"""facemask-robustness: the product's path on faces as people really photograph them.

    facemask-robustness --data ../shared/data/face-keypoints [--conditions dark worn-mask]
                        [--detector auto] [--limit N] [--json] [--out FILE.json]

Every image of the validation people (training/ and test/ together, never trained on) is
rewritten with one real-world condition at a time (:mod:`training.damage`: heavy JPEG, dark,
low resolution, sunglasses, an already-worn mask, chin or forehead out of frame, a hand
or a cup over the mouth), its labels kept, and run through the product's path as
``facemask-eval --people`` does (:func:`lab.evaluate.product_prediction`: the face search
turned where no face is sure, the detection matching the labels, the model on it). A face
the detector misses counts as a failure, and so does one found only below its detector's bar
(``unsure``) that the face verifier does not confirm, as the product's gate would drop it.
Points a cut left outside the image still count.

Per condition: ``n``, ``missed`` (no matching face found), ``nme_mean`` (over the faces
found), ``nme_median`` and ``fail_0.10`` (over all faces, a miss counting as infinite
error), NME being :func:`training.metrics.nme`. One table; ``--json`` adds one JSON line
per condition, ``--out`` writes them all to one file.

``--box-constants N`` instead measures how a detector's raw boxes sit on the 68-point box
of N training crops (training people only): the constants its adapter in
:mod:`core.detection` maps them with.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.detection.base import FaceDetector
from core.detection.registry import default_detector
from lab.evaluate import product_detection, product_points
from lab.options import add_detector_option
from training.damage import CONDITIONS, Condition, damaged, select
from training.data import Sample, load_splits, read_image
from training.metrics import centre_inside, nme, summarize

log = logging.getLogger(__name__)


def spread_subset(samples: list[Sample], limit: int | None) -> list[Sample]:
    """``limit`` samples spread evenly over the list (the first N would be a few people)."""
    if not limit or limit >= len(samples):
        return samples
    picks = np.linspace(0, len(samples) - 1, limit).round().astype(int)
    return [samples[i] for i in picks]


def compare(
    samples: list[Sample],
    conditions: list[Condition],
    predictors: list,
    detector: FaceDetector,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, dict]]:
    """Per keypoint model, per condition key, the summary of the product path's NME on the
    damaged images. Each image is read once and damaged with every condition in turn (a
    condition's random choices depend on the seed, the image's place in ``samples`` and its
    name only); each damaged image is searched for its face once (the search does not
    depend on the model), then every model reads that face. One summary per model, in
    order; each model's time includes the search."""
    keys = [c.key for c in conditions]
    errors = [{k: [] for k in keys} for _ in predictors]
    ms = [{k: [] for k in keys} for _ in predictors]
    for index, sample in enumerate(tqdm(samples, desc="robustness", disable=not progress)):
        original = read_image(sample.path)
        for condition in conditions:
            image, truth = damaged(condition, original, sample.points, seed, index)
            started = time.perf_counter()
            found = product_detection(detector, image, truth)
            search_ms = (time.perf_counter() - started) * 1000
            for k, predictor in enumerate(predictors):
                started = time.perf_counter()
                pred = None
                if found is not None:
                    pred = product_points(predictor, image, found)
                ms[k][condition.key].append(search_ms + (time.perf_counter() - started) * 1000)
                err = math.inf if pred is None else float(nme(pred, truth))
                errors[k][condition.key].append(err)
    return [
        {key: summary(errs, times[key]) for key, errs in per_model.items()}
        for per_model, times in zip(errors, ms)
    ]


def summary(errors: list[float], ms: list[float]) -> dict:
    per_face = np.asarray(errors, float)
    found = per_face[np.isfinite(per_face)]
    out = summarize(per_face)
    # the mean over misses-as-inf is inf: the mean over the faces found, misses counted apart
    out["nme_mean"] = float(found.mean()) if found.size else float("nan")
    out["missed"] = int((~np.isfinite(per_face)).sum())
    out["ms_per_image_p50"] = float(np.median(ms)) if ms else float("nan")
    return out


def format_table(results: dict[str, dict], title: str) -> str:
    header = ("condition", "n", "missed", "NME mean", "NME median", "fail >0.10", "ms p50")
    rows = [
        (
            key,
            f"{s['n']}",
            f"{s['missed']}",
            f"{100 * s['nme_mean']:.2f}%",
            f"{100 * s['nme_median']:.2f}%",
            f"{100 * s['fail_0.10']:.2f}%",
            f"{s['ms_per_image_p50']:.0f}",
        )
        for key, s in results.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        return "  ".join([first, *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:]))])

    return "\n".join([title, line(header), *(line(r) for r in rows)])


def format_comparison(names: list[str], runs: list[dict[str, dict]]) -> str:
    """One line per condition: each model's NME mean and faces lost, side by side."""

    def cell(s: dict) -> str:
        return f"{100 * s['nme_mean']:.2f}% / {100 * s['fail_0.10']:.1f}%"

    width = max(len(k) for k in runs[0])
    head = f"{'NME mean / lost':<{width}}" + "".join(f"  {n[-24:]:>24}" for n in names)
    rows = [f"{key:<{width}}" + "".join(f"  {cell(r[key]):>24}" for r in runs) for key in runs[0]]
    return "\n".join([head, *rows])


def box_constants(detector, samples: list[Sample], progress: bool = True) -> dict:
    """How a raw detector's best matching box sits on the 68-point box (side ``s``): its
    side ((w + h) / 2) over ``s``, and its centre's offset from the 68-point box's centre
    along the face's own right and down directions (from the detector's eyes), over ``s``.

    ``detector`` is a raw one (``core.detection.mtcnn.Mtcnn``,
    ``core.detection.centerface.CenterFace``): called on an RGB image, it returns faces with
    ``box``, ``score`` and five ``points``.
    """
    from core.detection.boxes import face_axes, keypoint_box

    sides, dxs, dys, missed = [], [], [], 0
    for s in tqdm(samples, desc="box constants", disable=not progress):
        image = read_image(s.path)
        face = next((f for f in detector(image) if centre_inside(f.box, s.points)), None)
        if face is None:
            missed += 1
            continue
        cx, cy, side = keypoint_box(s.points)
        x0, y0, x1, y1 = face.box
        (lx, ly), (rx, ry) = face.points[0], face.points[1]
        right, down = face_axes(float(np.degrees(np.arctan2(ry - ly, rx - lx))))
        offset = np.array([(x0 + x1) / 2 - cx, (y0 + y1) / 2 - cy]) / side
        sides.append(((x1 - x0) + (y1 - y0)) / 2 / side)
        dxs.append(float(offset @ right))
        dys.append(float(offset @ down))

    def stats(v: list[float]) -> dict:
        return {"mean": float(np.mean(v)), "sd": float(np.std(v))} if v else {}

    return {
        "n": len(samples),
        "missed": missed,
        "side_ratio": stats(sides),
        "dx": stats(dxs),
        "dy": stats(dys),
    }


def raw_recall(
    detectors: dict[str, object],
    samples: list[Sample],
    conditions: list[Condition],
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, int]]:
    """Per condition, how many damaged faces each raw detector finds upright (a box whose
    centre lies in the keypoint box), and how many either of them finds: the recall a
    combination of the two could reach, before the product's turned search and model."""
    counts = {c.key: {name: 0 for name in [*detectors, "either", "n"]} for c in conditions}
    for index, sample in enumerate(tqdm(samples, desc="raw recall", disable=not progress)):
        original = read_image(sample.path)
        for condition in conditions:
            image, truth = damaged(condition, original, sample.points, seed, index)
            row = counts[condition.key]
            hits = {
                name: any(centre_inside(f.box, truth) for f in detect(image))
                for name, detect in detectors.items()
            }
            for name, hit in hits.items():
                row[name] += hit
            row["either"] += any(hits.values())
            row["n"] += 1
    return counts


RAW_DETECTORS = ("mtcnn", "centerface")


def raw_detector(name: str):
    if name == "mtcnn":
        from core.detection.mtcnn import BIG_FACE, BIG_PNET, Mtcnn

        # as MtcnnFaceDetector's upright search (detect_borderline)
        return Mtcnn(min_face=40.0, thresholds=(0.7, 0.7, 0.8), big=(BIG_FACE, BIG_PNET))
    if name == "centerface":
        from core.detection.centerface import CenterFace

        return CenterFace()
    raise ValueError(f"no raw detector {name!r}: choose one of {', '.join(RAW_DETECTORS)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-robustness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument(
        "--conditions",
        nargs="+",
        metavar="NAME",
        help="conditions (all variants) or condition/variant; default all: "
        + " ".join(dict.fromkeys(c.name for c in CONDITIONS)),
    )
    p.add_argument("--limit", type=int, help="score N images spread over the validation people")
    add_detector_option(p)
    p.add_argument(
        "--weights",
        nargs="+",
        metavar="W",
        help="keypoint weights, a release's .json or a checkpoint (default: the shipped "
        "ones, also named 'shipped'); several are compared on the same faces, each face "
        "searched for once",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="the damage's random choices")
    p.add_argument(
        "--unsure-spread",
        type=float,
        help="the model's doubt threshold (core.keypoints.landmarks.UNSURE_SPREAD; inf: never)",
    )
    p.add_argument("--json", action="store_true", help="also one JSON line per condition")
    p.add_argument("--out", type=Path, help="write every condition's summary to this JSON file")
    p.add_argument(
        "--box-constants",
        type=int,
        metavar="N",
        help="measure a raw detector's box against the 68 points on N training crops instead",
    )
    p.add_argument("--raw-detector", choices=RAW_DETECTORS, default="centerface")
    p.add_argument(
        "--raw-recall",
        action="store_true",
        help="count the damaged faces each raw detector finds upright instead (no model)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if not (args.data / "validation_people.txt").exists():
        sys.exit(f"facemask-robustness: no data set at {args.data} (validation_people.txt)")
    splits = load_splits(args.data)
    if args.box_constants:
        samples = spread_subset(splits.train, args.box_constants)
        res = box_constants(raw_detector(args.raw_detector), samples, progress=not args.json)
        res["detector"] = args.raw_detector
        print(json.dumps(res))
        return
    try:
        conditions = select(args.conditions)
    except ValueError as err:
        p.error(str(err))
    samples = spread_subset(splits.val, args.limit)
    if not samples:
        sys.exit("facemask-robustness: the data set has no validation people's images")
    if args.raw_recall:
        raw = {name: raw_detector(name) for name in RAW_DETECTORS}
        counts = raw_recall(raw, samples, conditions, args.seed, progress=not args.json)
        print(f"faces found upright by each raw detector, of {len(samples)} images")
        print(f"{'condition':<28}" + "".join(f"{k:>12}" for k in [*RAW_DETECTORS, "either"]))
        for key, row in counts.items():
            print(f"{key:<28}" + "".join(f"{row[k]:>12}" for k in [*RAW_DETECTORS, "either"]))
        if args.json:
            print(json.dumps(counts))
        return

    from training.predictor import load_predictor

    names = args.weights or ["shipped"]
    predictors = [
        load_predictor(None if w == "shipped" else Path(w), threads=args.threads) for w in names
    ]
    for predictor in predictors:
        if args.unsure_spread is not None:
            predictor.unsure_spread = args.unsure_spread
    detector = default_detector(args.detector)
    started = time.perf_counter()
    runs = compare(samples, conditions, predictors, detector, args.seed, progress=not args.json)
    minutes = (time.perf_counter() - started) / 60
    title = (
        f"product path ({args.detector}) on {len(samples)} images of the validation people, "
        f"seed {args.seed}, {minutes:.1f} min"
    )
    metas = [
        {
            "detector": args.detector,
            "weights": name,
            "seed": args.seed,
            "unsure_spread": predictor.unsure_spread,
        }
        for name, predictor in zip(names, predictors)
    ]
    for name, results, meta in zip(names, runs, metas):
        print(format_table(results, title + (f", weights {name}" if len(names) > 1 else "")))
        if args.json:
            for key, s in results.items():
                print(json.dumps({"condition": key, **s, **meta}))
    if len(names) > 1:
        print(format_comparison(names, runs))
    if args.out:
        blobs = [
            {**meta, "minutes": minutes, "conditions": results}
            for meta, results in zip(metas, runs)
        ]
        args.out.write_text(json.dumps(blobs[0] if len(blobs) == 1 else blobs, indent=1))


if __name__ == "__main__":
    main()
