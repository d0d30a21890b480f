"""The inline keyboard under a photo: seven masks and the Crop toggle.

Callback data is tiny (``"mask:3"``, ``"crop"``), far below Telegram's 64-byte limit; which
photo a keyboard belongs to and whether crop is on live in ``chat_data``, keyed by the
keyboard message's id, so the buttons keep working after a restart.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from masks.catalog import MaskSpec

MASK_PREFIX = "mask:"
CROP = "crop"
CALLBACK_PATTERN = rf"^({MASK_PREFIX}\d+|{CROP})$"
COLUMNS = 3


def mask_keyboard(masks: list[MaskSpec], crop: bool) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(m.button, callback_data=f"{MASK_PREFIX}{m.id}") for m in masks]
    rows = [buttons[i : i + COLUMNS] for i in range(0, len(buttons), COLUMNS)]
    rows.append([InlineKeyboardButton(texts.crop_button(crop), callback_data=CROP)])
    return InlineKeyboardMarkup(rows)


def mask_id(callback_data: str) -> int | None:
    """The mask a button asks for, or None for the Crop toggle."""
    if callback_data.startswith(MASK_PREFIX):
        return int(callback_data.removeprefix(MASK_PREFIX))
    return None
