"""The inline keyboards: under a photo (seven masks, the Crop and Full quality toggles, "All 7"),
under a masked photo ("Sticker"), under an album, under a video and its progress message.

Each button's callback data names what it does and the message it works on, written by
:func:`bot.callbacks.encode` (the one place that knows its layout). What the bot knows about
that message (its file, its mode) lives in the chat's :class:`~bot.state.ChatState`, stored
before the keyboard is sent, so a tap can never arrive before its state and the buttons keep
working after a restart.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.callbacks import Action, encode
from bot.i18n import ENGLISH, Translator
from core.results import Mode
from masks.catalog import MaskSpec

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
    """The seven masks, the Crop (mode) and Full quality toggles and "All 7", in ``t``'s
    language; ``compact`` (groups, where a big keyboard under every photo crowds the chat): the
    seven masks and "⋯ More", which shows the rest."""
    rows = _mask_rows(masks, Action.MASK, photo_id, t)
    if compact:
        rows.append([_button(t(texts.MORE), Action.MORE, photo_id)])
        return InlineKeyboardMarkup(rows)
    mode_button = _button(texts.mode_button(mode, t), Action.MODE, photo_id)
    quality = _button(texts.quality_button(as_file, t), Action.QUALITY, photo_id)
    rows.append([mode_button, quality])
    mix = _button(t(texts.MIX_BUTTON), Action.MIX, photo_id)  # bot.styles answers it
    rows.append([mix, _button(t(texts.ALL_SEVEN), Action.ALL_SEVEN, photo_id)])
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
    sticker = _button(t(texts.STICKER_BUTTON), Action.STICKER, photo_id, mask_id)
    rows: list[list[InlineKeyboardButton]] = []
    if with_masks and compact:
        rows = _mask_rows(masks, Action.MASK, photo_id, t)
        more = _button(t(texts.MORE), Action.MORE, photo_id, mask_id)
        return InlineKeyboardMarkup([*rows, [more]])
    if with_masks:
        keyboard = mask_keyboard(masks, photo_id, mode, t, as_file=as_file)
        rows = [list(row) for row in keyboard.inline_keyboard]
    # the palette for this mask on this photo (bot.styles answers it)
    rows.append([_button(t(texts.STYLE_BUTTON), Action.STYLE, photo_id, mask_id)])
    rows.append([sticker])
    return InlineKeyboardMarkup(rows)


def album_keyboard(
    masks: list[MaskSpec], album_id: int, mode: Mode, t: Translator = ENGLISH
) -> InlineKeyboardMarkup:
    """An album's keyboard: the seven masks and the Crop button, for every photo at once."""
    return _masks_and_mode(masks, Action.ALBUM_MASK, Action.ALBUM_MODE, album_id, mode, t)


def video_keyboard(
    masks: list[MaskSpec], video_id: int, mode: Mode, t: Translator = ENGLISH
) -> InlineKeyboardMarkup:
    """A video's keyboard: the seven masks and the Crop button."""
    return _masks_and_mode(masks, Action.VIDEO_MASK, Action.VIDEO_MODE, video_id, mode, t)


def cancel_keyboard(video_id: int, t: Translator = ENGLISH) -> InlineKeyboardMarkup:
    """Under a video's progress message: Cancel."""
    return InlineKeyboardMarkup([[_button(t(texts.VIDEO_CANCEL), Action.VIDEO_CANCEL, video_id)]])


def _button(
    text: str, action: Action, target_id: int, mask_id: int | None = None
) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=encode(action, target_id, mask_id))


def _mask_rows(
    masks: list[MaskSpec], action: Action, target_id: int, t: Translator
) -> list[list[InlineKeyboardButton]]:
    """The mask buttons, :data:`COLUMNS` a row, each naming its mask and ``target_id``."""
    buttons = [_button(texts.mask_button(mask, t), action, target_id, mask.id) for mask in masks]
    return [buttons[i : i + COLUMNS] for i in range(0, len(buttons), COLUMNS)]


def _masks_and_mode(
    masks: list[MaskSpec],
    mask_action: Action,
    mode_action: Action,
    target_id: int,
    mode: Mode,
    t: Translator,
) -> InlineKeyboardMarkup:
    """The mask buttons, then the Crop button (the mode)."""
    rows = _mask_rows(masks, mask_action, target_id, t)
    rows.append([_button(texts.mode_button(mode, t), mode_action, target_id)])
    return InlineKeyboardMarkup(rows)
