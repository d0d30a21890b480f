"""Button callback data: one codec (bot.callbacks) writes and reads every button's data."""

from __future__ import annotations

import pytest
from telegram.constants import InlineKeyboardButtonLimit

from bot import callbacks, i18n, keyboards, settings_menu, video
from bot.callbacks import Action, CallbackDataError, Tap
from bot.state import ChatSettings
from core.results import Mode
from masks import catalog

#: the largest ids a button may carry: Bot API ids fit in 64 bits (message ids in 32 today)
BIGGEST_MESSAGE_ID = 2**63 - 1
BIGGEST_MASK_ID = 999_999_999
NAMES_A_MASK = {
    Action.MASK, Action.STICKER, Action.ALBUM_MASK, Action.VIDEO_MASK, Action.STYLE,
    Action.STYLE_PICK, Action.STYLE_BACK, Action.VIDEO_STICKER,
}  # fmt: skip
#: the buttons of bot.styles (its own keyboards)
STYLES = {Action.STYLE, Action.STYLE_PICK, Action.STYLE_BACK, Action.MIX}


def every_tap() -> list[Tap]:
    taps = []
    for action in Action:
        if action is Action.SETTINGS:
            continue
        if action is Action.STYLE_PICK:
            taps.append(Tap(action, BIGGEST_MESSAGE_ID, BIGGEST_MASK_ID, "x" * 16))
            continue
        if action in NAMES_A_MASK or action is Action.MORE:
            taps.append(Tap(action, BIGGEST_MESSAGE_ID, BIGGEST_MASK_ID))
        if action not in NAMES_A_MASK:
            taps.append(Tap(action, BIGGEST_MESSAGE_ID))
    choices = ["mode", "quiet", "auto", "done", "back", "lang", f"lang:{settings_menu.AUTOMATIC}"]
    choices += [f"lang:{code}" for code in i18n.LANGUAGES]
    return taps + [Tap(Action.SETTINGS, choice=choice) for choice in choices]


@pytest.mark.parametrize("tap", every_tap(), ids=lambda tap: f"{tap.action.name}:{tap.choice}")
def test_every_button_kind_reads_back_and_fits_in_64_bytes(tap: Tap) -> None:
    data = callbacks.encode(tap.action, tap.target_id, tap.mask_id, choice=tap.choice)
    assert len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
    assert callbacks.decode(data) == tap
    assert callbacks.matches(tap.action)(data)
    assert not callbacks.matches(*(a for a in Action if a is not tap.action))(data)


def test_every_keyboard_is_written_by_the_codec_in_every_language() -> None:
    masks, big = catalog.masks(), BIGGEST_MESSAGE_ID
    seen: set[Action] = set()
    for language in i18n.LANGUAGES:
        t = i18n.translator(language)
        markups = [
            keyboards.mask_keyboard(masks, big, Mode.WHOLE, t, as_file=True),
            keyboards.mask_keyboard(masks, big, Mode.FACES, t, compact=True),
            keyboards.result_keyboard(masks, big, 7, Mode.FACES, t, with_masks=True),
            keyboards.result_keyboard(masks, big, 7, Mode.FACES, t, with_masks=True, compact=True),
            keyboards.album_keyboard(masks, big, Mode.FACES, t),
            keyboards.video_keyboard(masks, big, Mode.WHOLE, t),
            keyboards.cancel_keyboard(big, t),
            video.result_keyboard(big, masks[-1], t),
            settings_menu.menu_keyboard(t, ChatSettings(), True),
            settings_menu.language_keyboard(t, "pt_BR"),
        ]
        for markup in markups:
            for row in markup.inline_keyboard:
                for button in row:
                    data = button.callback_data
                    assert len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
                    tap = callbacks.decode(data)
                    assert tap is not None, data
                    seen.add(tap.action)
    assert seen >= set(Action) - STYLES


@pytest.mark.parametrize(
    ("data", "tap"),
    [  # what keyboards already in chats send (the layout before the codec)
        ("mask:3:812", Tap(Action.MASK, 812, 3)),
        ("crop:812", Tap(Action.MODE, 812)),
        ("file:812", Tap(Action.QUALITY, 812)),
        ("all:812", Tap(Action.ALL_SEVEN, 812)),
        ("stk:3:812", Tap(Action.STICKER, 812, 3)),
        ("more:812", Tap(Action.MORE, 812)),
        ("more:3:812", Tap(Action.MORE, 812, 3)),
        ("am:3:812", Tap(Action.ALBUM_MASK, 812, 3)),
        ("ac:812", Tap(Action.ALBUM_MODE, 812)),
        ("vm:3:812", Tap(Action.VIDEO_MASK, 812, 3)),
        ("vc:812", Tap(Action.VIDEO_MODE, 812)),
        ("vx:812", Tap(Action.VIDEO_CANCEL, 812)),
        ("vs:3:812", Tap(Action.VIDEO_STICKER, 812, 3)),
        ("set:lang:pt_BR", Tap(Action.SETTINGS, choice="lang:pt_BR")),
        ("set:mode", Tap(Action.SETTINGS, choice="mode")),
        ("sty:3:812", Tap(Action.STYLE, 812, 3)),
        ("sp:navy:3:812", Tap(Action.STYLE_PICK, 812, 3, "navy")),
        ("sb:3:812", Tap(Action.STYLE_BACK, 812, 3)),
        ("mix:812", Tap(Action.MIX, 812)),
    ],
)
def test_keyboards_already_in_chats_still_parse(data: str, tap: Tap) -> None:
    assert callbacks.decode(data) == tap


@pytest.mark.parametrize(
    "data",
    [
        "2!mask:3:812",  # a later layout: "send it again", never misread
        "mask:812",  # a mask button without its mask
        "crop:3:812",  # a toggle with a mask
        "paint:3:812",  # an action this version does not have
        "mask:3:",
        "mask:x:812",
        "sp:3:812",  # a style pick without its style
        "mask:navy:3:812",  # a choice where none belongs
        "",
        None,
    ],
)
def test_data_this_version_cannot_read_is_none(data: str | None) -> None:
    assert callbacks.decode(data) is None
    assert not callbacks.matches(*Action)(data)


def test_the_codec_refuses_what_no_button_may_send() -> None:
    with pytest.raises(CallbackDataError):
        callbacks.encode(Action.MASK, 812)  # no mask
    with pytest.raises(CallbackDataError):
        callbacks.encode(Action.SETTINGS, choice="x" * 64)  # over 64 bytes
    with pytest.raises(CallbackDataError):
        callbacks.encode(Action.MODE, 812, choice="mode")  # a choice where none belongs
