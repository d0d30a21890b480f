"""The inline keyboards: under a photo (seven masks, the Crop and Full quality toggles, "All 7"),
under a masked photo ("Sticker"), and under an album.

Callback data names the button and the photo it works on (``"mask:3:812"``, ``"crop:812"``,
``"file:812"``, ``"all:812"``, ``"stk:3:812"``, a group's "⋯ More" ``"more:812"`` or, under a
masked photo, ``"more:3:812"``; an album's ``"am:3:812"``, ``"ac:812"``), far below Telegram's
64-byte limit; keyboards already in chats send these, so they stay. What
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
#: "⋯ More" under a group's compact keyboard (bot.handlers.more)
MORE_PATTERN = r"^more:(\d+:)?\d+$"
#: the buttons of bot.albums, bot.full_quality and bot.stickers
ALL_SEVEN_PATTERN = r"^all:\d+$"
QUALITY_PATTERN = r"^file:\d+$"
ALBUM_PATTERN = r"^(am:\d+|ac):\d+$"
STICKER_PATTERN = r"^stk:\d+:\d+$"
#: bot.video: a mask ("vm:3:812"), the Crop toggle ("vc:812") and Cancel under the progress
#: message ("vx:812"), 812 being the video's message id
VIDEO_PATTERN = r"^(vm:\d+|vc|vx):\d+$"
COLUMNS = 3


def mask_keyboard(
    masks: list[MaskSpec],
    photo_id: int,
    mode: Mode,
    t: Translator = ENGLISH,
    *,
    as_file: bool = False,
    compact: bool = False,
) -> InlineKeyboardMarkup:
    """The seven masks, the Crop and Full quality toggles and "All 7", in ``t``'s language;
    ``compact`` (groups, where a big keyboard under every photo crowds the chat): the seven
    masks and "⋯ More", which shows the rest."""
    rows = _mask_rows(masks, "mask", photo_id, t)
    if compact:
        rows.append([InlineKeyboardButton(t(texts.MORE), callback_data=f"more:{photo_id}")])
        return InlineKeyboardMarkup(rows)
    toggle = InlineKeyboardButton(texts.crop_button(mode, t), callback_data=f"crop:{photo_id}")
    quality = InlineKeyboardButton(
        texts.quality_button(as_file, t), callback_data=f"file:{photo_id}"
    )
    rows.append([toggle, quality])
    rows.append([InlineKeyboardButton(t(texts.ALL_SEVEN), callback_data=f"all:{photo_id}")])
    return InlineKeyboardMarkup(rows)


def result_keyboard(
    masks: list[MaskSpec],
    photo_id: int,
    mask_id: int,
    mode: Mode,
    t: Translator = ENGLISH,
    *,
    as_file: bool = False,
    with_masks: bool = False,
    compact: bool = False,
) -> InlineKeyboardMarkup:
    """Under a masked photo: "Sticker" (that mask on that photo), after the mask keyboard
    when ``with_masks``; ``compact`` with masks: the seven masks and "⋯ More", which shows
    the rest, Sticker included."""
    sticker = InlineKeyboardButton(
        t(texts.STICKER_BUTTON), callback_data=f"stk:{mask_id}:{photo_id}"
    )
    rows: list[list[InlineKeyboardButton]] = []
    if with_masks and compact:
        rows = _mask_rows(masks, "mask", photo_id, t)
        more = InlineKeyboardButton(t(texts.MORE), callback_data=f"more:{mask_id}:{photo_id}")
        return InlineKeyboardMarkup([*rows, [more]])
    if with_masks:
        keyboard = mask_keyboard(masks, photo_id, mode, t, as_file=as_file)
        rows = [list(row) for row in keyboard.inline_keyboard]
    rows.append([sticker])
    return InlineKeyboardMarkup(rows)


def album_keyboard(
    masks: list[MaskSpec], album_id: int, mode: Mode, t: Translator = ENGLISH
) -> InlineKeyboardMarkup:
    """An album's keyboard: the seven masks and the Crop toggle, for every photo at once."""
    return _masks_and_crop(masks, ("am", "ac"), album_id, mode, t)


def video_keyboard(
    masks: list[MaskSpec], video_id: int, mode: Mode, t: Translator = ENGLISH
) -> InlineKeyboardMarkup:
    """A video's keyboard: the seven masks and the Crop toggle."""
    return _masks_and_crop(masks, ("vm", "vc"), video_id, mode, t)


def cancel_keyboard(video_id: int, t: Translator = ENGLISH) -> InlineKeyboardMarkup:
    """Under a video's progress message: Cancel."""
    button = InlineKeyboardButton(t(texts.VIDEO_CANCEL), callback_data=f"vx:{video_id}")
    return InlineKeyboardMarkup([[button]])


def _mask_rows(
    masks: list[MaskSpec], action: str, target_id: int, t: Translator
) -> list[list[InlineKeyboardButton]]:
    """The mask buttons, :data:`COLUMNS` a row, each sending ``"<action>:<mask>:<target>"``."""
    buttons = [
        InlineKeyboardButton(
            texts.mask_button(mask, t), callback_data=f"{action}:{mask.id}:{target_id}"
        )
        for mask in masks
    ]
    return [buttons[i : i + COLUMNS] for i in range(0, len(buttons), COLUMNS)]


def _masks_and_crop(
    masks: list[MaskSpec], actions: tuple[str, str], target_id: int, mode: Mode, t: Translator
) -> InlineKeyboardMarkup:
    """The mask buttons, then the Crop toggle; ``actions``: their callback data's first part."""
    mask_action, crop_action = actions
    rows = _mask_rows(masks, mask_action, target_id, t)
    crop_data = f"{crop_action}:{target_id}"
    rows.append([InlineKeyboardButton(texts.crop_button(mode, t), callback_data=crop_data)])
    return InlineKeyboardMarkup(rows)


def parse(callback_data: str) -> tuple[int | None, int]:
    """``(mask id, photo message id)`` of a mask button, the mode toggle or "⋯ More"; the mask
    id is None for the toggle and for "⋯ More" under a photo (not a masked one)."""
    action, _, photo_id = callback_data.rpartition(":")
    _, _, mask = action.partition(":")
    return (int(mask) if mask.isdigit() else None), int(photo_id)
