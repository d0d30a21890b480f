"""The styles' gallery (issue 26), drawn with the real model on scikit-image's astronaut.

    python -m lab.draw_styles [--out docs]

- ``styles.png``: the seven masks, each plain and in three styles (a colour, a pattern, another
  pattern), one row per mask;
- ``style-own.png``: a picture of one's own (drawn here: a sunset over the sea) printed on the
  black cloth mask, next to the picture;
- ``style-mix.png``: a group photo (five astronauts) masked with ``/mask mix``: five masks.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.api import FaceMasker
from core.render.style import Style
from core.results import Mode
from masks import catalog, mix

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("plain", "#0473e2", "camo", "hearts")
CELL = 200
#: the astronaut's face, with room around it (x0, y0, x1, y1 of her 512 px photo)
CROP = (130, 30, 330, 230)


def jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=93)
    return out.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def sunset(width: int = 480, height: int = 360) -> np.ndarray:
    """A picture someone might print on their mask: a sun going down over the sea."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.dstack([250 - ys * 0.2, 120 + ys * 0.25, 90 + ys * 0.1])
    sea = np.dstack([20 + 0 * xs, 60 + 20 * np.sin(xs / 9 + ys / 3), 120 + 0 * xs])
    horizon = height * 0.6
    rgb = np.where((ys < horizon)[..., None], sky, sea)
    sun = np.hypot(xs - width * 0.5, ys - horizon) < height * 0.22
    rgb[sun & (ys < horizon)] = (255, 214, 80)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def label(image: Image.Image, text: str, xy: tuple[int, int]) -> None:
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    box = draw.textbbox(xy, text, font=font)
    draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(0, 0, 0))
    draw.text(xy, text, fill="white", font=font)


def styles_grid(masker: FaceMasker, photo: bytes) -> Image.Image:
    masks = catalog.masks()
    grid = Image.new("RGB", (CELL * len(STYLES), CELL * len(masks)), "white")
    for row, spec in enumerate(masks):
        for col, name in enumerate(STYLES):
            style = None if name == "plain" else name
            rgb = decode(masker.apply(photo, spec.id, Mode.FACES, style).image)
            x0, y0, x1, y1 = CROP
            tile = Image.fromarray(rgb[y0:y1, x0:x1]).resize((CELL, CELL), Image.LANCZOS)
            grid.paste(tile, (col * CELL, row * CELL))
            label(grid, f"{spec.id} {spec.label}, {name}", (col * CELL + 4, row * CELL + CELL - 20))
    return grid


def own_picture(masker: FaceMasker, photo: bytes) -> Image.Image:
    picture = sunset()
    style = Style.from_picture(jpeg(picture))
    rgb = decode(masker.apply(photo, 4, Mode.FACES, style).image)
    x0, y0, x1, y1 = CROP
    face = Image.fromarray(rgb[y0:y1, x0:x1]).resize((360, 360), Image.LANCZOS)
    out = Image.new("RGB", (360 + 480 + 10, 360), "white")
    out.paste(Image.fromarray(picture), (0, 0))
    out.paste(face, (490, 0))
    label(out, "your picture", (6, 338))
    label(out, "on the cloth mask", (496, 338))
    return out


def group_photo(count: int = 5, side: int = 360) -> np.ndarray:
    """``count`` astronauts side by side, each turned a little differently."""
    from skimage import data

    cells = []
    for n in range(count):
        angle = (n - count // 2) * 4.0
        turn = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
        face = cv2.warpAffine(data.astronaut(), turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
        cells.append(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA))
    return np.hstack(cells)


def mixed(masker: FaceMasker) -> Image.Image:
    photo = jpeg(group_photo())
    order = mix.choose()
    rgb = decode(masker.apply(photo, order, Mode.FACES).image)
    return Image.fromarray(rgb)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.draw_styles", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args(argv)
    from skimage import data

    masker = FaceMasker()
    photo = jpeg(data.astronaut())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, picture in (
        ("styles.png", styles_grid(masker, photo)),
        ("style-own.png", own_picture(masker, photo)),
        ("style-mix.png", mixed(masker)),
    ):
        path = args.out / name
        picture.save(path, optimize=True)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    cv2.setNumThreads(1)
    raise SystemExit(main())
