"""Crops to train the face verifier on (``core.keypoints.verifier``), as the product sees them.

Every crop is the picture laid out by a set of 68 points (:func:`core.keypoints.verifier.aligned`).

Faces (label 1), from the training people only (never the validation people, the data
set's rule), each photo clean and under one damage condition drawn from
``training.damage`` (the conditions the keypoint model's occlusion training holds out stay
held out here too: striped cloth, mirrored lenses, a cup):

* ``product-face``: the points the product reads for the labelled face (the shipped
  detector and keypoint model, no gate);
* ``label-face``: the labelled points, moved a little (turn, scale, shift: what a reading
  off by a few per cent looks like).

Not faces (label 0):

* ``product-free``: every face the product masks in the face-free photos of the
  *training* sources (``lab.false_masks.source_split``: 2 in 5 of the sources; the other
  3 in 5 are the false-mask benchmark's held-out part), in 40 variants each (turned,
  cropped, scaled, re-encoded, darker, warmer), with the shipped detector and with a
  more eager one (lower thresholds: more of what a detector takes for a face);
* ``product-off``: what the product masks off the labelled face in the training
  people's photos and their hair close-ups;
* ``placed-free``: a face's points laid at random on the face-free photos;
* ``hair``: a face's points moved up onto the hair above it;
* ``turned``: a face's points turned a quarter or a half turn (a face read sideways).

``--val`` writes the same for the validation people (faces and hair; for picking the
training epoch and the threshold) instead.

    python -m lab.verifier_data --data $D --wheels DIR [--deb gcompris-qt-data_3.1-2_all.deb] \
        --out .cache/verifier/train.npz
    python -m lab.verifier_data --data $D --val --out .cache/verifier/val.npz

``--deb`` adds the photos of animals, fish, things and hands in GCompris' data package
(:mod:`lab.debian_images`; ``apt-get download gcompris-qt-data``) to the training sources,
``--deb-variants`` (12) variants each (release 12's second look: dogs, cats and apes that the
benchmark's packages do not ship on the training side).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.api import FaceMasker
from core.detection.centerface import CenterFaceDetector
from core.detection.combined import MtcnnThenCenterFace
from core.detection.mtcnn import MtcnnFaceDetector
from core.errors import NoFaceFoundError
from core.keypoints.face68 import BROWS
from core.keypoints.verifier import aligned
from core.results import Mode
from lab.debian_images import deb_sources
from lab.false_masks import (
    QUARTER_TURNS,
    fit,
    jpeg,
    on_labelled,
    package_sources,
    source_split,
    turn,
)
from training.damage import CONDITIONS, damaged
from training.data import load_splits, read_image
from training.metrics import interocular
from training.occlusion import HELD_OUT

log = logging.getLogger(__name__)


class Crops:
    def __init__(self) -> None:
        self.crops: list[np.ndarray] = []
        self.labels: list[int] = []
        self.kinds: list[str] = []
        self.groups: list[str] = []

    def add(self, image: np.ndarray, points: np.ndarray, label: int, kind: str, group: str):
        self.crops.append(aligned(image, points))
        self.labels.append(label)
        self.kinds.append(kind)
        self.groups.append(group)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            crops=np.stack(self.crops),
            labels=np.array(self.labels, np.uint8),
            kinds=np.array(self.kinds),
            groups=np.array(self.groups),
        )
        kinds, counts = np.unique(self.kinds, return_counts=True)
        print(
            f"{path}: {len(self.labels)} crops; "
            + ", ".join(f"{k} {n}" for k, n in zip(kinds, counts))
        )


def faces_of(masker: FaceMasker, image: np.ndarray) -> list:
    try:
        return masker.find_faces(image, Mode.FACES)
    except NoFaceFoundError:
        return []


def eager_masker() -> FaceMasker:
    """The product without its gate, its detectors readier to call something a face."""
    detector = MtcnnThenCenterFace()
    detector.first = MtcnnFaceDetector(thresholds=(0.6, 0.6, 0.5))
    detector.second = detector.fallback = CenterFaceDetector(threshold=0.2)
    return FaceMasker(detector=detector, gate=None)


def moved(points: np.ndarray, rng: np.random.Generator, turn_deg=8.0, scale=0.08, shift=0.06):
    """``points`` turned, scaled and shifted a little about their centre."""
    degrees = rng.uniform(-turn_deg, turn_deg)
    s = np.exp(rng.uniform(-scale, scale))
    d = rng.uniform(-shift, shift, 2) * interocular(points)
    return turned_about_centre(points, degrees, s) + d


def turned_about_centre(points: np.ndarray, degrees: float, scale: float = 1.0) -> np.ndarray:
    """``points`` turned by ``degrees`` (and scaled) about their centre."""
    a = np.deg2rad(degrees)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = points.mean(0)
    return (points - centre) @ rot.T + centre


def inside(points: np.ndarray, shape, margin: float = 0.1) -> bool:
    h, w = shape[:2]
    lo, hi = points.min(0), points.max(0)
    pad = margin * (hi - lo)
    return bool((lo - pad >= 0).all() and hi[0] + pad[0] < w and hi[1] + pad[1] < h)


def random_variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A face-free source as somebody might send it."""
    h, w = image.shape[:2]
    if rng.random() < 0.6:
        f = rng.uniform(0.3, 0.9)
        ch, cw = max(32, int(h * f)), max(32, int(w * rng.uniform(0.3, 0.9)))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        image = image[y : y + ch, x : x + cw]
    image = fit(image, int(rng.choice([320, 480, 640, 960, 1280])))
    if rng.random() < 0.5:
        image = turn(image, int(rng.choice(QUARTER_TURNS)))
    if rng.random() < 0.5:
        image = image[:, ::-1].copy()
    r = rng.random()
    if r < 0.2:
        linear = (image.astype(np.float32) / 255) ** 2.2
        image = (255 * (linear * rng.uniform(0.1, 0.4)) ** (1 / 2.2)).astype(np.uint8)
    elif r < 0.35:
        tint = np.array([rng.uniform(0.85, 1.2), 1.0, rng.uniform(0.75, 1.1)], np.float32)
        image = np.clip(image.astype(np.float32) * tint, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        image = jpeg(image, int(rng.integers(15, 60)))
    return np.ascontiguousarray(image)


def people_part(crops: Crops, samples, masker: FaceMasker, rng, held_out: bool, desc: str):
    """Faces (product and labelled), what the product reads off them, hair and turned
    faces, for each sample clean and under one damage condition."""
    conditions = [c for c in CONDITIONS if c.key != "clean" and (held_out or c.key not in HELD_OUT)]
    for index, sample in enumerate(tqdm(samples, desc=desc, mininterval=10)):
        original = read_image(sample.path)
        person = sample.person
        condition = conditions[int(rng.integers(len(conditions)))]
        for image, truth in (
            (original, sample.points),
            damaged(condition, original, sample.points, 1, index),
        ):
            truth = np.asarray(truth, np.float64)
            for face in faces_of(masker, image):
                on = on_labelled(face, [truth])
                crops.add(
                    image, face.points, int(on), "product-face" if on else "product-off", person
                )
            crops.add(image, moved(truth, rng), 1, "label-face", person)
            if rng.random() < 0.3:
                degrees = int(rng.choice([90, 180, 270]))
                crops.add(image, turned_about_centre(truth, degrees), 0, "turned", person)
            height = truth[:, 1].max() - truth[BROWS][:, 1].min()
            up = truth - (0, rng.uniform(1.4, 2.0) * height)
            if inside(up, image.shape, 0.0):
                crops.add(image, up, 0, "hair", person)
        # a hair close-up of the photo, as lab.false_masks cuts them
        iod = float(interocular(sample.points))
        cut = int(sample.points[BROWS][:, 1].min() - 0.15 * iod)
        if cut >= max(0.5 * iod, 24):
            hair = fit(original[:cut], 480)
            for face in faces_of(masker, hair):
                crops.add(hair, face.points, 0, "product-off", person)


def scipy_raccoon(wheels: list[Path]):
    """(name, RGB) of the raccoon face in scipy 1.9's wheel (``scipy/misc/face.dat``: a
    bz2'd 768x1024 RGB array; BSD, Wikimedia commons CC BY-SA), a training-only source:
    an animal's face, eyes and nose included, that is no person's."""
    import bz2
    import zipfile

    for folder in wheels:
        for wheel in sorted(folder.glob("scipy-1.9*.whl")):
            with zipfile.ZipFile(wheel) as z:
                raw = bz2.decompress(z.read("scipy/misc/face.dat"))
            yield "scipy/face.dat", np.frombuffer(raw, np.uint8).reshape(768, 1024, 3).copy()


def free_part(
    crops: Crops, wheels: list[Path], samples, rng, variants: int,
    debs: list[Path] = (), deb_variants: int = 12,
) -> None:  # fmt: skip
    """What the product (and a readier detector) masks in the training sources' face-free
    photos, and faces' points laid on them at random (``deb_variants`` of each photo from
    a Debian package: :mod:`lab.debian_images`)."""
    shipped, eager = FaceMasker(gate=None), eager_masker()
    sources = [(*source, variants) for w in wheels or [None] for source in package_sources(w)]
    sources += [(*source, variants) for source in scipy_raccoon(wheels)]
    sources += [(*source, deb_variants) for deb in debs for source in deb_sources(deb)]
    seen = set()
    for name, image, count in tqdm(sources, desc="face-free sources", mininterval=10):
        if name in seen or source_split(name) != "train":
            continue
        seen.add(name)
        for _ in range(count):
            photo = random_variant(image, rng)
            for masker in (shipped, eager):
                for face in faces_of(masker, photo):
                    crops.add(photo, face.points, 0, "product-free", name)
            for _ in range(3):
                s = samples[int(rng.integers(len(samples)))]
                pts = np.asarray(s.points, np.float64)
                size = rng.uniform(24, max(25.0, 0.5 * min(photo.shape[:2])))
                pts = (pts - pts.mean(0)) * (size / interocular(pts))
                pts = turned_about_centre(pts, int(rng.uniform(-30, 30)))
                h, w = photo.shape[:2]
                pts += (rng.uniform(0, w), rng.uniform(0, h))
                crops.add(photo, pts, 0, "placed-free", name)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.verifier_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--data", type=Path, required=True, help="the face-keypoints folder")
    p.add_argument(
        "--wheels", type=Path, action="append", default=[],
        help="a folder of wheels whose images are face-free sources (repeatable)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--val", action="store_true", help="the validation people instead")
    p.add_argument("--limit", type=int, help="at most N people's photos")
    p.add_argument("--variants", type=int, default=40, help="variants of each face-free source")
    p.add_argument(
        "--deb", type=Path, action="append", default=[],
        help="a Debian package whose photos are face-free training sources "
        "(gcompris-qt-data: lab.debian_images; repeatable)",
    )  # fmt: skip
    p.add_argument("--deb-variants", type=int, default=12, help="variants of each of its photos")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    splits = load_splits(args.data)
    samples = splits.val if args.val else splits.train
    if args.limit:
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, args.limit).astype(int)]
    crops, started = Crops(), time.time()
    people_part(crops, samples, FaceMasker(gate=None), rng, args.val, "people")
    if not args.val:
        free_part(crops, args.wheels, splits.train, rng, args.variants, args.deb, args.deb_variants)
    crops.save(args.out)
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
