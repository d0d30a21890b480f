"""facemask-detector-bench: recall and false positives of the face detector on group photos.

    facemask-detector-bench --data ../shared/data/face-keypoints [--photos 40] [--json]

No labelled group photos ship with the data set, so this builds them from real faces:
each 1280x960 photo holds 4-9 faces of the validation people (never trained on), each cut
as a loose crop and scaled so its eyes (points 36 and 45) are 12-120 px apart, laid on a
blurred background made of other crops. A face counts as found when a detection's centre
lies inside its keypoint box; every other detection is a false positive. Recall is
reported by inter-ocular distance, the size the product promises to handle (>= 20 px).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from core.detect import DETECTORS, FaceDetector, default_detector
from training.data import load_splits, read_image
from training.metrics import centre_inside, interocular

BUCKETS = [(12, 20), (20, 30), (30, 50), (50, 120)]


def make_photo(samples, rng: np.random.Generator, size=(960, 1280)):
    h, w = size
    bg_src = read_image(samples[int(rng.integers(len(samples)))].path)
    photo = cv2.GaussianBlur(cv2.resize(bg_src, (w, h)), (0, 0), 15)
    faces, taken = [], np.zeros((h, w), bool)
    for _ in range(int(rng.integers(4, 10))):
        s = samples[int(rng.integers(len(samples)))]
        img, pts = read_image(s.path), s.points
        scale = rng.uniform(12, 120) / interocular(pts)
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pts = (pts + 0.5) * scale - 0.5
        ih, iw = img.shape[:2]
        if ih >= h or iw >= w:
            continue
        for _ in range(20):  # a free spot
            y, x = int(rng.integers(0, h - ih)), int(rng.integers(0, w - iw))
            if not taken[y : y + ih, x : x + iw].any():
                photo[y : y + ih, x : x + iw] = img
                taken[y : y + ih, x : x + iw] = True
                faces.append(pts + (x, y))
                break
    return photo, faces


def run(samples, photos: int, seed: int, detector: FaceDetector | None = None) -> dict:
    rng = np.random.default_rng(seed)
    detector = detector or default_detector()
    found = {b: [0, 0] for b in BUCKETS}
    false_pos, ms = 0, []
    for _ in range(photos):
        photo, faces = make_photo(samples, rng)
        t = time.perf_counter()
        dets = detector.detect(photo)
        ms.append((time.perf_counter() - t) * 1000)
        used = set()
        for pts in faces:
            hit = [i for i, d in enumerate(dets) if centre_inside(d.box, pts)]
            used.update(hit)
            iod = interocular(pts)
            for b in BUCKETS:
                if b[0] <= iod < b[1]:
                    found[b][0] += bool(hit)
                    found[b][1] += 1
        false_pos += len(dets) - len(used)
    return {
        "photos": photos,
        "recall": {f"{a}-{b}px": (f / n if n else None) for (a, b), (f, n) in found.items()},
        "faces": {f"{a}-{b}px": n for (a, b), (_, n) in found.items()},
        "recall_20px_up": sum(f for (a, _), (f, _) in found.items() if a >= 20)
        / max(1, sum(n for (a, _), (_, n) in found.items() if a >= 20)),
        "false_positives_per_photo": false_pos / photos,
        "detect_ms_p50": float(np.median(ms)),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-detector-bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument("--photos", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detector", choices=sorted(DETECTORS), default="mtcnn")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    cv2.setNumThreads(2)
    res = run(load_splits(args.data).val, args.photos, args.seed, default_detector(args.detector))
    res["detector"] = args.detector
    print(f"{args.photos} group photos of 1280x960, validation people's faces, {args.detector}")
    for key, r in res["recall"].items():
        print(f"  eyes {key:>9} apart: recall {100 * r:5.1f}% of {res['faces'][key]} faces")
    print(f"  recall, eyes >= 20 px apart: {100 * res['recall_20px_up']:.1f}%")
    print(f"  false positives per photo: {res['false_positives_per_photo']:.2f}")
    print(f"  detector p50: {res['detect_ms_p50']:.0f} ms")
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
