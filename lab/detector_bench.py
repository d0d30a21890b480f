"""facemask-detector-bench: recall and false positives of the face detector on group photos.

    facemask-detector-bench --data ../shared/data/face-keypoints [--photos 40] [--json]

No labelled group photos ship with the data set, so this builds them from real faces:
each 1280x960 photo holds 4-9 faces of the validation people (never trained on), each cut
as a loose crop and scaled so its outer eye corners are 12-120 px apart, laid on a
face-free background (another crop's tiles, shuffled and blurred). A face counts as found
when a detection's centre lies inside its keypoint box; every other detection is a false
positive, reported apart when it lies on the background. Recall is
reported by inter-ocular distance, the size the product promises to handle (>= 20 px).
With ``--masked`` the count is of what the product masks: the detector's boxes that keep a
face shape and pass the plausibility gate after the keypoint model
(``FaceMasker.find_faces``); ``--no-gate`` leaves the gate out.

``--faces clean blurred sunglasses mirrored`` runs the same photos (same layout, same
people) once per condition of their faces: ``blurred`` out of focus (a Gaussian blur of
a tenth of the eye distance, after scaling), ``sunglasses`` and ``mirrored`` drawn as
``training.damage`` draws them (opaque or mirrored lenses, rims and temples), before
scaling.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from core.detection.base import Detection, FaceDetector
from core.detection.registry import default_detector
from core.errors import NoFaceFoundError
from core.keypoints.preprocess import box_from_points
from core.results import Mode
from lab.options import add_detector_option, add_gate_option, gate_with
from training.damage import sunglasses
from training.data import load_splits, read_image
from training.metrics import interocular, point_inside

BUCKETS = [(12, 20), (20, 30), (30, 50), (50, 120)]

#: (image, points, rng) -> (image, points), drawn on a face crop before it is pasted
FaceChange = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def blurred(image: np.ndarray, points: np.ndarray, rng: np.random.Generator, share=0.1):
    """Out of focus: a Gaussian blur of ``share`` of the eye distance (at the final size)."""
    sigma = max(0.5, share * float(interocular(points)))
    return cv2.GaussianBlur(image, (0, 0), sigma), points


#: what happens to each face; "before" scaling (drawn on the crop) or "after" (at its size)
FACE_CONDITIONS: dict[str, tuple[str, FaceChange | None]] = {
    "clean": ("after", None),
    "blurred": ("after", blurred),
    "sunglasses": ("before", partial(sunglasses, mirror=False)),
    "mirrored": ("before", partial(sunglasses, mirror=True)),
}


def shuffled_background(image: np.ndarray, rng: np.random.Generator, size, tiles=8):
    """A photo's colours and textures without its face: its tiles in a random order."""
    h, w = size
    small = cv2.resize(image, (tiles * 32, tiles * 32), interpolation=cv2.INTER_AREA)
    blocks = small.reshape(tiles, 32, tiles, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)
    blocks = blocks[rng.permutation(len(blocks))].reshape(tiles, tiles, 32, 32, 3)
    mosaic = blocks.transpose(0, 2, 1, 3, 4).reshape(tiles * 32, tiles * 32, 3)
    return cv2.GaussianBlur(cv2.resize(mosaic, (w, h)), (0, 0), 6)


def paste_free(
    photo: np.ndarray, taken: np.ndarray, img: np.ndarray, rng: np.random.Generator, tries: int
) -> tuple[int, int] | None:
    """Paste ``img`` into ``photo`` at a random spot none of ``taken`` covers (marked taken
    then); its (x, y), or None when ``tries`` spots were all taken."""
    h, w = taken.shape
    ih, iw = img.shape[:2]
    for _ in range(tries):
        y, x = int(rng.integers(0, h - ih)), int(rng.integers(0, w - iw))
        if not taken[y : y + ih, x : x + iw].any():
            photo[y : y + ih, x : x + iw] = img
            taken[y : y + ih, x : x + iw] = True
            return x, y
    return None


def make_photo(
    samples,
    rng: np.random.Generator,
    size=(960, 1280),
    condition: str = "clean",
    change_rng: np.random.Generator | None = None,
):
    """(photo, each face's 68 points, where crops were pasted) for one group photo; each
    face under ``condition`` (:data:`FACE_CONDITIONS`), drawn with ``change_rng`` so that
    the layout (``rng``) is the same under every condition."""
    when, change = FACE_CONDITIONS[condition]
    change_rng = change_rng if change_rng is not None else np.random.default_rng(0)
    h, w = size
    # a blurred face as the background was found, rightly, as a face by MTCNN: shuffle it
    bg_src = read_image(samples[int(rng.integers(len(samples)))].path)
    photo = shuffled_background(bg_src, rng, size)
    faces, taken = [], np.zeros((h, w), bool)
    for _ in range(int(rng.integers(4, 10))):
        s = samples[int(rng.integers(len(samples)))]
        img, pts = read_image(s.path), s.points
        if change is not None and when == "before":
            img, pts = change(img, pts, change_rng)
        scale = rng.uniform(12, 120) / interocular(pts)
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pts = (pts + 0.5) * scale - 0.5
        if change is not None and when == "after":
            img, pts = change(img, pts, change_rng)
        ih, iw = img.shape[:2]
        if ih >= h or iw >= w:
            continue
        spot = paste_free(photo, taken, img, rng, tries=20)
        if spot is not None:
            faces.append(pts + spot)
    return photo, faces, taken


def bench_photos(samples, photos: int, seed: int = 0, condition: str = "clean"):
    """The bench's group photos, :func:`make_photo`'s (photo, faces, taken) each: the same
    layout under every condition, each photo's changes drawn from its own seed."""
    rng = np.random.default_rng(seed)
    for k in range(photos):
        yield make_photo(
            samples, rng, condition=condition, change_rng=np.random.default_rng([seed, k])
        )


class MaskedFaces:
    """The faces the product masks: detector, keypoint model and the face-shape check."""

    def __init__(self, detector: FaceDetector, gate: bool = True) -> None:
        from core.api import FaceMasker

        self.masker = FaceMasker(detector=detector)
        if not gate:
            self.masker.gate = None

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        try:
            faces = self.masker.find_faces(image_rgb, Mode.FACES)
        except NoFaceFoundError:
            return []
        return [Detection(box_from_points(f.points), 1.0) for f in faces]


def run(
    samples,
    photos: int,
    seed: int,
    detector: FaceDetector | None = None,
    dump: Path | None = None,
    condition: str = "clean",
) -> dict:
    """Recall by face size and false boxes; ``dump`` saves each false box's surroundings.
    Every face is under ``condition`` (:data:`FACE_CONDITIONS`)."""
    detector = detector or default_detector()
    found = {b: [0, 0] for b in BUCKETS}
    false_pos, on_background, ms = 0, 0, []
    if dump:
        dump.mkdir(parents=True, exist_ok=True)
    for k, (photo, faces, taken) in enumerate(bench_photos(samples, photos, seed, condition)):
        t = time.perf_counter()
        dets = detector.detect(photo)
        ms.append((time.perf_counter() - t) * 1000)
        used = set()
        for pts in faces:
            hit = [i for i, d in enumerate(dets) if point_inside(d.box.cx, d.box.cy, pts)]
            used.update(hit)
            iod = interocular(pts)
            for b in BUCKETS:
                if b[0] <= iod < b[1]:
                    found[b][0] += bool(hit)
                    found[b][1] += 1
        for i in set(range(len(dets))) - used:
            x0, y0, x1, y1 = (int(round(v)) for v in dets[i].box.face_xyxy())
            cx = min(max((x0 + x1) // 2, 0), photo.shape[1] - 1)
            cy = min(max((y0 + y1) // 2, 0), photo.shape[0] - 1)
            false_pos += 1
            on_background += not taken[cy, cx]
            if dump:
                pad = (x1 - x0) // 2
                patch = photo[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
                cv2.imwrite(str(dump / f"photo{k:03d}-x{x0}-y{y0}.png"), patch[..., ::-1])
    return {
        "photos": photos,
        "condition": condition,
        "recall": {f"{a}-{b}px": (f / n if n else None) for (a, b), (f, n) in found.items()},
        "faces": {f"{a}-{b}px": n for (a, b), (_, n) in found.items()},
        "recall_20px_up": sum(f for (a, _), (f, _) in found.items() if a >= 20)
        / max(1, sum(n for (a, _), (_, n) in found.items() if a >= 20)),
        "false_positives_per_photo": false_pos / photos,
        "false_positives_on_background_per_photo": on_background / photos,
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
    add_detector_option(p)
    p.add_argument(
        "--masked",
        action="store_true",
        help="count the faces the product masks (detector + keypoints + face-shape check)",
    )
    p.add_argument("--no-gate", action="store_true", help="with --masked: without the gate")
    add_gate_option(p)
    p.add_argument(
        "--faces",
        nargs="+",
        default=["clean"],
        choices=list(FACE_CONDITIONS),
        help="the faces' conditions, each on the same photos (default: clean)",
    )
    p.add_argument("--dump", type=Path, help="save every false box's surroundings here (PNG)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    cv2.setNumThreads(2)
    detector = default_detector(args.detector)
    if args.masked:
        detector = MaskedFaces(detector, gate=not args.no_gate)
        if detector.masker.gate is not None:
            detector.masker.gate = gate_with(p, detector.masker.gate, args.gate)
    samples = load_splits(args.data).val
    what = "masked faces" if args.masked else "detections"
    if args.masked and args.no_gate:
        what += " without the gate"
    print(f"{args.photos} group photos of 1280x960, validation people's faces, {args.detector}, "
          f"{what}")  # fmt: skip
    results = {}
    for condition in args.faces:
        res = run(samples, args.photos, args.seed, detector, args.dump, condition)
        res["detector"] = args.detector
        res["masked"] = args.masked
        res["gate"] = args.masked and not args.no_gate
        results[condition] = res
        print_result(res, args.masked)
    if len(results) > 1:
        print("recall, eyes >= 20 px apart: " + ", ".join(
            f"{c} {100 * r['recall_20px_up']:.1f}%" for c, r in results.items()
        ))  # fmt: skip
    if args.json:
        one = results[args.faces[0]] if len(results) == 1 else {"conditions": results}
        print(json.dumps(one))


def print_result(res: dict, masked: bool) -> None:
    print(f" faces {res['condition']}:")
    for key, r in res["recall"].items():
        if r is None:
            continue
        print(f"  eyes {key:>9} apart: recall {100 * r:5.1f}% of {res['faces'][key]} faces")
    print(f"  recall, eyes >= 20 px apart: {100 * res['recall_20px_up']:.1f}%")
    print(f"  false positives per photo: {res['false_positives_per_photo']:.2f}")
    background = res["false_positives_on_background_per_photo"]
    print(f"    on the background: {background:.2f}; the rest lie in a pasted crop, off its")
    print("    labelled face (often a second person in the frame: look with --dump)")
    print(f"  {'find_faces' if masked else 'detector'} p50: {res['detect_ms_p50']:.0f} ms")


if __name__ == "__main__":
    main()
