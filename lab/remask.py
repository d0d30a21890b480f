"""``python -m lab.remask --out DIR``: our mask over a mask the face already wears.

Each scene is scikit-image's astronaut, enlarged or shrunk, turned and moved on a canvas,
wearing a mask drawn by ``training.damage.worn_mask`` (plain, striped or printed cloth, a
respirator, one of our own). Each gets one row of the picture ``DIR/remask.png``:

    old mask | ours, cover off | ours, cover on   (the points the product reads itself)
             | ours, cover off | ours, cover on   (the points the scene was drawn from)

The first pair is the product's own path (``FaceMasker.mask_pixels``: detector, keypoint
model, ``core.render.warp.apply_masks``), with the cover step off and on; the second pair lays the
mask on the points the scene was drawn from (the model's reading of the bare astronaut,
moved with her), so the cover step can be judged apart from the keypoint model, which
reads masked faces less well. Every tile is the face's surroundings,
at one height. ``--weights`` picks other keypoint weights than the shipped ones.

``--before WEIGHTS`` also writes ``DIR/before-after.png``: old mask | the product with
those weights and no cover step (as it was before) | the product as it is now, one row per
scene. The README's before/after pair comes from it.

``--time`` also prints what the cover step costs on a 1280x960 photo with one face (the
astronaut enlarged 1.875 times), bare and wearing a plain cloth mask: the median of 50 runs
of ``core.render.cover.find_worn_mask`` and of ``core.render.warp.apply_masks`` with it off and on.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.api import FaceMasker
from core.errors import NoFaceFoundError
from core.render import cover, warp
from core.results import Mode
from training.damage import worn_mask

log = logging.getLogger(__name__)

TILE = 240  # tile height, pixels
GAP = 4
HEADER = 40
COLUMNS = (
    "old mask",
    "model: cover off",
    "model: cover on",
    "bare-face points: off",
    "bare-face points: on",
)


@dataclass(frozen=True)
class Scene:
    kind: str  # training.damage.worn_mask's kind
    mask_id: int  # ours, laid over it
    scale: float  # the astronaut's size, times her own 512 px
    angle: float  # degrees, counter-clockwise
    seed: int  # the worn mask's colours and pattern


SCENES = (
    Scene("cloth-plain", 1, 1.0, 0.0, 1),
    Scene("cloth-striped", 7, 1.875, 0.0, 2),  # a 1280x960 photo
    Scene("cloth-printed", 2, 0.8, 10.0, 3),
    Scene("respirator", 1, 1.25, -8.0, 4),
    Scene("respirator", 4, 1.0, 0.0, 9),
    Scene("ours", 6, 1.0, 0.0, 5),
    Scene("cloth-plain", 5, 2.0, 6.0, 6),
    Scene("cloth-striped", 3, 1.0, -12.0, 7),
)


def build(
    scene: Scene, photo: np.ndarray, points: np.ndarray, wear: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The scene's photo (4:3, the face left of centre) with its worn mask (``wear``), and
    its points."""
    height = round(512 * scene.scale)
    width = round(height * 4 / 3)
    centre = points[[27, 8]].mean(axis=0)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), scene.angle, scene.scale)
    m[:, 2] = np.array([0.42 * width, 0.45 * height]) - m[:, :2] @ centre
    image = cv2.warpAffine(
        photo, m, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    moved = points @ m[:, :2].T + m[:, 2]
    if not wear:
        return image, moved
    worn, _ = worn_mask(image, moved, np.random.default_rng(scene.seed), kind=scene.kind)
    return worn, moved


def tiles(masker: FaceMasker, scene: Scene, worn: np.ndarray, points: np.ndarray) -> list:
    """The row's five pictures, whole (cropped later)."""
    picture = masker.picture(scene.mask_id)
    try:
        faces = masker.find_faces(worn, Mode.FACES)
        found = [f.points for f in faces]
        model_off = warp.apply_masks(worn, picture, found, cover=False)
        model_on = masker.mask_pixels(worn, scene.mask_id, Mode.FACES)[1]
    except NoFaceFoundError:
        log.warning("no face found in the %s scene", scene.kind)
        model_off = model_on = None
    true_off = warp.apply_masks(worn, picture, [points], cover=False)
    true_on = warp.apply_masks(worn, picture, [points])
    return [worn, model_off, model_on, true_off, true_on]


def crop_face(image: np.ndarray | None, points: np.ndarray, shape) -> np.ndarray:
    """The face's surroundings (from above the brows to under the chin), ``TILE`` high."""
    size = float(np.ptp(points[:, 1]) * 1.7)
    cx, cy = points[:, 0].mean(), points[:, 1].mean() + 0.08 * size
    x0, y0 = int(max(cx - 0.55 * size, 0)), int(max(cy - 0.5 * size, 0))
    x1, y1 = int(min(cx + 0.55 * size, shape[1])), int(min(cy + 0.5 * size, shape[0]))
    width = round(TILE * (x1 - x0) / (y1 - y0))
    if image is None:
        return np.full((TILE, width, 3), 128, np.uint8)
    return cv2.resize(image[y0:y1, x0:x1], (width, TILE), interpolation=cv2.INTER_AREA)


def sheet(
    rows: list[list[np.ndarray]], labels: list[str], columns: tuple[str, ...] = COLUMNS
) -> Image.Image:
    """The rows under a header naming the columns, each row's label on its first tile."""
    widths = [max(row[c].shape[1] for row in rows) for c in range(len(columns))]
    total_w = sum(widths) + GAP * (len(widths) + 1)
    total_h = HEADER + len(rows) * (TILE + GAP) + GAP
    out = Image.new("RGB", (total_w, total_h), "white")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=15)
    x = GAP
    for name, w in zip(columns, widths, strict=True):
        draw.text((x + 4, 12), name, fill="black", font=font)
        x += w + GAP
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        y = HEADER + r * (TILE + GAP)
        x = GAP
        for tile, w in zip(row, widths, strict=True):
            out.paste(Image.fromarray(tile), (x, y))
            x += w + GAP
        draw.text(
            (GAP + 4, y + 4), label, fill="white", font=font, stroke_width=2, stroke_fill="black"
        )
    return out


def before_after(
    masker: FaceMasker, before: Path, photo: np.ndarray, points: np.ndarray
) -> Image.Image:
    """Old mask | the product with ``before``'s weights, no cover step | the product now."""
    from training.predictor import load_predictor

    old = FaceMasker(predictor=load_predictor(before))
    rows, labels = [], []
    for scene in SCENES:
        worn, moved = build(scene, photo, points)
        try:
            found = [f.points for f in old.find_faces(worn, Mode.FACES)]
            then = warp.apply_masks(worn, old.picture(scene.mask_id), found, cover=False)
        except NoFaceFoundError:
            then = None
        try:
            now = masker.mask_pixels(worn, scene.mask_id, Mode.FACES)[1]
        except NoFaceFoundError:
            now = None
        rows.append([crop_face(t, moved, worn.shape) for t in (worn, then, now)])
        labels.append(f"{scene.kind} -> {scene.mask_id}")
    return sheet(rows, labels, ("old mask", f"before ({before.stem})", "now"))


def median_ms(work, repeat: int = 50) -> float:
    work()  # warm
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return 1000 * float(np.median(runs))


def print_times(masker: FaceMasker, photo: np.ndarray, points: np.ndarray) -> None:
    """The cover step's cost on a 1280x960 photo, bare and with a worn cloth mask."""
    big, moved = build(Scene("cloth-plain", 1, 1.875, 0.0, 1), photo, points)
    bare, _ = build(Scene("cloth-plain", 1, 1.875, 0.0, 1), photo, points, wear=False)
    picture = masker.picture(1)
    eyes = float(np.linalg.norm(moved[45] - moved[36]))
    print(f"1280x960 photo, one face {eyes:.0f} px between the outer eye corners")
    for name, image in (("bare", bare), ("masked", big)):
        find = median_ms(lambda image=image: cover.find_worn_mask(image, moved))
        off = median_ms(lambda image=image: warp.apply_masks(image, picture, [moved], cover=False))
        on = median_ms(lambda image=image: warp.apply_masks(image, picture, [moved]))
        print(
            f"{name:>7}: find_worn_mask {find:5.1f} ms; apply_masks cover off {off:5.1f} ms,"
            f" on {on:5.1f} ms (+{on - off:.1f} ms)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.remask", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for remask.png")
    parser.add_argument("--weights", type=Path, help="keypoint weights (default: the shipped ones)")
    parser.add_argument("--time", action="store_true", help="also print the cover step's cost")
    parser.add_argument(
        "--before", type=Path, help="earlier weights: also write before-after.png against them"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from skimage import data

    from training.predictor import load_predictor

    masker = FaceMasker(predictor=load_predictor(args.weights))
    photo = data.astronaut()
    # her points as the product reads them before any mask is drawn, where it is surest
    points = masker.landmarks(photo, Mode.FACES)[0].points.astype(np.float64)
    rows, labels = [], []
    for scene in SCENES:
        worn, moved = build(scene, photo, points)
        row = tiles(masker, scene, worn, moved)
        rows.append([crop_face(t, moved, worn.shape) for t in row])
        labels.append(f"{scene.kind} -> {scene.mask_id}, {worn.shape[1]}x{worn.shape[0]}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "remask.png"
    sheet(rows, labels).save(path)
    print(f"wrote {path} ({len(rows)} scenes)")
    if args.before:
        path = args.out / "before-after.png"
        before_after(masker, args.before, photo, points).save(path)
        print(f"wrote {path}")
    if args.time:
        print_times(masker, photo, points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
