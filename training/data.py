"""The face-keypoint data set: upstream CSV reader, the person split, and a pack.

The pack is the training cache: every image decoded once, resized to fit a square
canvas (default 384 px, padded with black), with its points, person and split, and for the
validation people the face the product's detector finds there (its face box, angle
included). Saved as one .npz so a run (or a GPU machine) starts in seconds instead of
decoding JPEGs; a pack written by another version of this layout (``PACK_VERSION``) is
refused with a :class:`StalePack` error, never misread.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.detection.boxes import FaceBox
from core.keypoints.face68 import NUM_POINTS
from training.metrics import matching_detection

log = logging.getLogger(__name__)

# What a pack file holds. 2: the detector's face box (cx, cy, side, angle) replaces its
# box in the Haar cascade's convention (x0, y0, x1, y1).
PACK_VERSION = 2


class StalePack(ValueError):
    """A pack file written by another version of the layout: rebuild it."""


@dataclass(frozen=True)
class Sample:
    path: Path
    points: np.ndarray  # (68, 2) float32, pixels of the image

    @property
    def person(self) -> str:
        return person_of(self.path.name)


def person_of(file_name: str) -> str:
    """'Abdel_Aziz_Al-Hakim_00.jpg' -> 'Abdel_Aziz_Al-Hakim' (the name less '_NN.jpg')."""
    stem = file_name.rsplit(".", 1)[0]
    return stem.rsplit("_", 1)[0]


def read_labels(csv_path: str | Path, images_dir: str | Path | None = None) -> list[Sample]:
    """Rows of 'file,x0,y0,...,x67,y67' after a header row."""
    csv_path = Path(csv_path)
    images_dir = Path(images_dir) if images_dir else csv_path.parent
    samples = []
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 1 + 2 * NUM_POINTS:
                raise ValueError(f"{csv_path}:{line}: expected 137 columns, found {len(row)}")
            pts = np.asarray(row[1:], np.float32).reshape(NUM_POINTS, 2)
            samples.append(Sample(images_dir / row[0], pts))
    return samples


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8, by content not extension (test/ holds PNGs named .jpg)."""
    data = np.fromfile(str(path), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"cannot decode image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_validation_people(path: str | Path) -> set[str]:
    return {ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()}


@dataclass
class DataSplits:
    train: list[Sample]  # training/ minus the validation people
    val: list[Sample]  # every image of the validation people, training/ and test/
    test: list[Sample]  # test/ minus the validation people (report only)


def load_splits(data_dir: str | Path) -> DataSplits:
    root = Path(data_dir)
    people = read_validation_people(root / "validation_people.txt")
    train_all = read_labels(root / "training_frames_keypoints.csv", root / "training")
    test_all = read_labels(root / "test_frames_keypoints.csv", root / "test")
    return DataSplits(
        train=[s for s in train_all if s.person not in people],
        val=[s for s in train_all + test_all if s.person in people],
        test=[s for s in test_all if s.person not in people],
    )


@dataclass
class Pack:
    """Images on one square canvas each; points in canvas pixels."""

    images: np.ndarray  # (N, C, C, 3) uint8
    points: np.ndarray  # (N, 68, 2) float32
    sizes: np.ndarray  # (N, 2) int: height, width of the image on the canvas
    names: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) str: train | val | test
    # (N, 4) float32: the detected face's box on the canvas, cx, cy, side, angle
    # (core.detection.boxes.FaceBox); NaN where the detector missed it or was not run
    face_boxes: np.ndarray

    def select(self, split: str) -> Pack:
        keep = self.split == split
        return Pack(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    def face_box(self, i: int) -> FaceBox | None:
        """Image i's detected face box, None where there is none."""
        row = self.face_boxes[i]
        return None if np.isnan(row).any() else FaceBox(*(float(v) for v in row))

    def save(self, path: str | Path, jpeg_quality: int | None = None) -> None:
        """As raw pixels, or (jpeg_quality set) JPEG-compressed to travel light."""
        arrays = {f: getattr(self, f) for f in self.__dataclass_fields__}
        arrays["version"] = np.asarray(PACK_VERSION)
        if jpeg_quality:
            blobs = [
                cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1]
                for img in self.images
            ]
            arrays["images"] = np.concatenate(blobs)
            arrays["jpeg_offsets"] = np.cumsum([0] + [len(b) for b in blobs])
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Pack:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["version"]) if "version" in z else 1
            if version != PACK_VERSION:
                raise StalePack(
                    f"{path} is a version {version} pack, this code reads version "
                    f"{PACK_VERSION}: build it again (facemask-train --data DIR --cache ...)"
                )
            arrays = {f: z[f] for f in cls.__dataclass_fields__}
            if "jpeg_offsets" in z:
                off, buf = z["jpeg_offsets"], arrays["images"]
                arrays["images"] = np.stack(
                    [
                        cv2.imdecode(buf[a:b], cv2.IMREAD_COLOR)[:, :, ::-1]
                        for a, b in zip(off[:-1], off[1:])
                    ]
                )
        return cls(**arrays)

    def __len__(self) -> int:
        return len(self.points)


def fit_canvas(
    image: np.ndarray, points: np.ndarray, canvas: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Image (shrunk to fit if needed) on a black canvas; its points; its size there."""
    h, w = image.shape[:2]
    scale = min(1.0, canvas / max(h, w))
    if scale < 1.0:
        image = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
        points = (points + 0.5) * scale - 0.5
    out = np.zeros((canvas, canvas, 3), np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out, points.astype(np.float32), image.shape[:2]


def build_pack(
    splits: dict[str, list[Sample]],
    canvas: int = 384,
    detector=None,
    detect_splits: tuple[str, ...] = ("val",),
    progress: bool = True,
) -> Pack:
    """Decode every sample once; search ``detect_splits`` for their faces as the product
    does (``core.detection.turns.detect_with_turns``), for validation on the product's path."""
    images, points, sizes, names, split_names, dets = [], [], [], [], [], []
    for split, samples in splits.items():
        for s in tqdm(samples, desc=f"pack {split}", disable=not progress):
            img, pts, (h, w) = fit_canvas(read_image(s.path), s.points, canvas)
            box = np.full(4, np.nan, np.float32)
            if detector is not None and split in detect_splits:
                box = _face_box(detector, img[:h, :w], pts)
            images.append(img)
            points.append(pts)
            sizes.append((h, w))
            names.append(s.path.name)
            split_names.append(split)
            dets.append(box)
    return Pack(
        np.stack(images),
        np.stack(points),
        np.asarray(sizes, np.int32),
        np.asarray(names),
        np.asarray(split_names),
        np.stack(dets).astype(np.float32),
    )


def _face_box(detector, image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The face box (cx, cy, side, angle) of the product's detection that matches the
    ground truth (``metrics.matching_detection``), NaN if none does."""
    from core.detection.turns import detect_with_turns

    found = matching_detection(detect_with_turns(detector, image), points)
    if found is None:
        return np.full(4, np.nan, np.float32)
    b = found.box
    return np.asarray([b.cx, b.cy, b.side, b.angle], np.float32)
