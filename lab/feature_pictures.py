"""``python -m lab.feature_pictures``: the README's pictures of "All 7" and of a sticker.

Renders, from scikit-image's astronaut and the shipped model, ``docs/album.png`` (the album
"All 7" answers with: seven photos, each captioned with its mask, laid out as Telegram shows an
album) and ``docs/sticker.png`` (the sticker "Sticker" adds, on a chat-like background so the
white outline and the transparency show).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core import imageio
from core.results import Mode
from masks import catalog

CELL = 256
GAP = 6
CAPTION = 34
BACKGROUND = (223, 231, 214)  # a chat wallpaper's green-grey


def album(masker, jpeg: bytes) -> Image.Image:
    """The seven masked photos in a 4 + 3 grid, each with its mask's caption under it."""
    results = masker.apply_many(jpeg, [mask.id for mask in catalog.masks()], Mode.FACES)
    columns, rows = 4, 2
    sheet = Image.new(
        "RGB", (columns * (CELL + GAP) + GAP, rows * (CELL + CAPTION + GAP) + GAP), "white"
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=17)
    for n, (mask, result) in enumerate(zip(catalog.masks(), results, strict=True)):
        left = GAP + (n % columns) * (CELL + GAP)
        top = GAP + (n // columns) * (CELL + CAPTION + GAP)
        with Image.open(io.BytesIO(result.image)) as photo:
            sheet.paste(photo.convert("RGB").resize((CELL, CELL)), (left, top))
        draw.text((left + 4, top + CELL + 8), f"{mask.id} {mask.name}", fill="black", font=font)
    return sheet


def sticker(masker, jpeg: bytes, mask_id: int = 7) -> Image.Image:
    """The sticker on a chat background, as it appears when sent."""
    with Image.open(io.BytesIO(masker.sticker(jpeg, Mode.FACES, mask_id))) as made:
        art = made.convert("RGBA")
    canvas = Image.new("RGBA", (art.width + 80, art.height + 80), BACKGROUND + (255,))
    canvas.alpha_composite(art, (40, 40))
    return canvas.convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.feature_pictures", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    from skimage import data

    from core.api import FaceMasker

    masker = FaceMasker()
    jpeg = imageio.encode(np.asarray(data.astronaut()), None, "JPEG")
    args.out.mkdir(parents=True, exist_ok=True)
    album(masker, jpeg).save(args.out / "album.png", optimize=True)
    sticker(masker, jpeg).save(args.out / "sticker.png", optimize=True)
    print(f"wrote {args.out / 'album.png'} and {args.out / 'sticker.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
