"""Button callback data, built and read in one place.

Every inline button of the bot sends a short string naming what it does and the message it
works on: ``"mask:3:812"`` (mask 3 on the photo whose message id is 812), ``"crop:812"``
(the Crop button: :class:`~core.results.Mode` FACES <-> WHOLE), ``"set:lang:de"`` (a
/settings choice). :func:`encode` writes it and :func:`decode` reads it back as a
:class:`Tap`; handlers register with :func:`matches`, so no other module knows the layout.

The layout is version 1, and keyboards already in chats send exactly it, so it carries no
marker. A later layout starts with its version (``"2!..."``, :data:`VERSION_MARK`): this
version decodes such data, and any it does not understand, to None, and the tap is answered
"send it again" (``bot.handlers.unknown_button``) instead of being misread. Telegram allows 64
bytes of callback data (:data:`MAX_BYTES`); :func:`encode` refuses more.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

#: Telegram's limit on a button's callback data, in bytes
MAX_BYTES = 64
#: the layout this version writes; version 1 is written without a marker (see the docstring)
VERSION = 1
#: a later layout's data starts with its version and this mark: ``"2!..."``
VERSION_MARK = "!"


class Action(enum.StrEnum):
    """What a button does; the value is what its callback data starts with (kept short, and
    kept as it is: keyboards in chats send these)."""

    MASK = "mask"  # a mask on a photo
    MODE = "crop"  # the photo's Crop button: every face, or the whole photo as one face
    QUALITY = "file"  # the photo's Full quality toggle
    ALL_SEVEN = "all"  # every mask on a photo, as an album
    STICKER = "stk"  # the masked face in the tapper's sticker set
    MORE = "more"  # a group's compact keyboard: the rest of the buttons
    ALBUM_MASK = "am"
    ALBUM_MODE = "ac"
    VIDEO_MASK = "vm"
    VIDEO_MODE = "vc"
    VIDEO_CANCEL = "vx"  # under a video's progress message
    VIDEO_STICKER = "vs"  # under a masked video: its face, moving, in the tapper's sticker set
    SETTINGS = "set"  # a /settings menu choice
    STYLE = "sty"  # under a masked photo: the palette for that mask (bot.styles)
    STYLE_PICK = "sp"  # a colour or pattern of the palette: ``sp:<style>:<mask>:<photo>``
    STYLE_BACK = "sb"  # the palette's way back
    MIX = "mix"  # a different mask on every face


#: actions whose data names a mask: always, or (MORE) under a masked photo only
_WITH_MASK = {
    Action.MASK, Action.STICKER, Action.ALBUM_MASK, Action.VIDEO_MASK, Action.STYLE,
    Action.STYLE_PICK, Action.STYLE_BACK, Action.VIDEO_STICKER,
}  # fmt: skip
_MASK_OPTIONAL = {Action.MORE}
#: actions whose data also names a choice before the mask (a style's id)
_WITH_CHOICE = {Action.STYLE_PICK}
#: the data's layouts: ``<action>:<mask>:<target>``, ``<action>:<target>``,
#: ``<action>:<choice>:<mask>:<target>``, ``set:<choice>``
_TARGETED = re.compile(r"(?P<action>[a-z]+)(?::(?P<mask>\d{1,9}))?:(?P<target>\d{1,19})")
_PICKED = re.compile(
    r"(?P<action>[a-z]+):(?P<choice>[a-z][a-z0-9_-]{0,15}):(?P<mask>\d{1,9}):(?P<target>\d{1,19})"
)
_CHOICE = re.compile(r"set:(?P<choice>.*)", re.DOTALL)  # the menu reads its own choices


@dataclass(frozen=True)
class Tap:
    """A button's callback data, read: what it does, the message it works on (a photo, album
    or video, by message id; 0 for /settings), the mask it names, a settings choice."""

    action: Action
    target_id: int = 0
    mask_id: int | None = None
    choice: str = ""


class CallbackDataError(ValueError):
    """Data that no button of this version could send (a bug in the caller)."""


def encode(
    action: Action, target_id: int = 0, mask_id: int | None = None, *, choice: str = ""
) -> str:
    """The callback data of a button; :func:`decode` reads it back as the same :class:`Tap`."""
    if action is Action.SETTINGS:
        data = f"{action}:{choice}"
    elif action in _WITH_CHOICE:
        data = f"{action}:{choice}:{mask_id}:{target_id}"
    elif choice:
        raise CallbackDataError(f"{action.name} takes no choice")
    elif mask_id is not None and (action in _WITH_MASK or action in _MASK_OPTIONAL):
        data = f"{action}:{mask_id}:{target_id}"
    elif action in _WITH_MASK:
        raise CallbackDataError(f"{action.name} names a mask")
    else:
        data = f"{action}:{target_id}"
    if decode(data) != Tap(action, target_id, mask_id, choice):
        raise CallbackDataError(f"{data!r} would not read back as written")
    if len(data.encode()) > MAX_BYTES:
        raise CallbackDataError(f"{data!r} is over Telegram's {MAX_BYTES} bytes")
    return data


def decode(data: str | None) -> Tap | None:
    """The :class:`Tap` behind ``data``; None for data of another layout version, another
    bot, or no button at all."""
    if not data or VERSION_MARK in data:
        return None  # a later layout (or garbage): the tap gets "send it again"
    if (found := _CHOICE.fullmatch(data)) is not None:
        return Tap(Action.SETTINGS, choice=found["choice"])
    if (found := _PICKED.fullmatch(data)) is not None:
        if found["action"] not in {a.value for a in _WITH_CHOICE}:
            return None
        action = Action(found["action"])
        return Tap(action, int(found["target"]), int(found["mask"]), found["choice"])
    found = _TARGETED.fullmatch(data)
    if found is None:
        return None
    try:
        action = Action(found["action"])
    except ValueError:
        return None
    mask = int(found["mask"]) if found["mask"] is not None else None
    if action is Action.SETTINGS or action in _WITH_CHOICE:
        return None
    if (mask is None and action in _WITH_MASK) or (
        mask is not None and action not in _WITH_MASK | _MASK_OPTIONAL
    ):
        return None
    return Tap(action, int(found["target"]), mask)


def matches(*actions: Action) -> Callable[[object], bool]:
    """A ``CallbackQueryHandler`` pattern: data that decodes to one of ``actions``."""

    def pattern(data: object) -> bool:
        tap = decode(data) if isinstance(data, str) else None
        return tap is not None and tap.action in actions

    return pattern
