"""The /masks picture: the seven mask pictures on one sheet, each with its number."""

from __future__ import annotations

import io
import logging
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

CELL = 240
LABEL_HEIGHT = 40
COLUMNS = 4


def picture(masks: list[MaskSpec]) -> bytes | None:
    """A PNG of every mask, or None when the mask pictures are not there."""
    return _sheet(tuple(masks))


@lru_cache(maxsize=1)  # the masks never change while the bot runs
def _sheet(masks: tuple[MaskSpec, ...]) -> bytes | None:
    if not masks or not all(mask.file and mask.path.is_file() for mask in masks):
        logger.warning("mask pictures are missing; /masks answers with a list")
        return None
    rows = -(-len(masks) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * CELL, rows * (CELL + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=24)
    for index, mask in enumerate(masks):
        left = (index % COLUMNS) * CELL
        top = (index // COLUMNS) * (CELL + LABEL_HEIGHT)
        with Image.open(mask.path) as source:
            art = source.convert("RGBA")
        art.thumbnail((CELL - 20, CELL - 20))
        offset = (left + (CELL - art.width) // 2, top + (CELL - art.height) // 2)
        sheet.paste(art, offset, art)
        draw.text(
            (left + CELL // 2, top + CELL + LABEL_HEIGHT // 2),
            # the number only: the caption names the masks in the chat's language, which
            # Pillow's built-in font cannot draw (Cyrillic, for one)
            str(mask.id),
            fill="black",
            font=font,
            anchor="mm",
        )
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()
