"""The inline keyboard under a photo: seven masks and the Crop toggle (the mode).

Callback data names the button and the photo it works on (``"mask:3:812"``, ``"crop:812"``),
far below Telegram's 64-byte limit; keyboards already in chats send these, so they stay. What
the bot knows about that photo (its file, its mode) lives in the chat's
:class:`~bot.state.ChatState`, stored before the keyboard is sent, so a tap can never arrive
before its state and the buttons keep working after a restart.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.i18n import ENGLISH, Translator
from core.results import Mode
from masks.catalog import MaskSpec

CALLBACK_PATTERN = r"^(mask:\d+|crop):\d+$"
COLUMNS = 3


def mask_keyboard(
    masks: list[MaskSpec], photo_id: int, mode: Mode, t: Translator = ENGLISH
) -> InlineKeyboardMarkup:
    """The seven masks and the Crop toggle, labelled in ``t``'s language."""
    buttons = [
        InlineKeyboardButton(texts.mask_button(mask, t), callback_data=f"mask:{mask.id}:{photo_id}")
        for mask in masks
    ]
    rows = [buttons[i : i + COLUMNS] for i in range(0, len(buttons), COLUMNS)]
    toggle = InlineKeyboardButton(texts.crop_button(mode, t), callback_data=f"crop:{photo_id}")
    rows.append([toggle])
    return InlineKeyboardMarkup(rows)


def parse(callback_data: str) -> tuple[int | None, int]:
    """``(mask id, photo message id)``; the mask id is None for the mode toggle."""
    action, _, photo_id = callback_data.rpartition(":")
    mask_id = int(action.removeprefix("mask:")) if action.startswith("mask:") else None
    return mask_id, int(photo_id)
