"""What the bot remembers per chat and per user, typed, and how it is written down.

python-telegram-bot makes one :class:`ChatState` per chat (``context.chat_data``) and one
:class:`UserState` per user (``context.user_data``) through :data:`CONTEXT_TYPES`;
:mod:`bot.persistence` keeps them so keyboards keep working after a restart, written by
:func:`encode_state` as JSON of their fields with a format version, and read back by
:func:`decode_state`, which builds only the classes of this module (:data:`STATE_CLASSES`),
checking each field against its type. Never a pickle: reading one can run any code.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from core.results import Mode

logger = logging.getLogger(__name__)

#: photos remembered per chat; buttons of older photos answer "send it again"
KEEP_PHOTOS = 100
#: albums remembered per chat (their photos are also among the chat's photos)
KEEP_ALBUMS = 20
#: masked photos remembered per user for inline mode, newest first
KEEP_SHARED = 20
#: videos (video notes, GIFs, videos) remembered per chat
KEEP_VIDEOS = 50

T = TypeVar("T")
R = TypeVar("R")  # a request with a keyboard


class _Toggles:
    """The Crop toggle of a request with a keyboard (its dataclass holds ``mode``)."""

    mode: Mode

    def toggle_mode(self) -> Mode:
        self.mode = Mode.WHOLE if self.mode is Mode.FACES else Mode.FACES
        return self.mode


def _keep(kept: dict[int, R], key: int, request: R, limit: int) -> R:
    """The request kept for ``key`` (an earlier one wins), forgetting the oldest past ``limit``."""
    request = kept.setdefault(key, request)
    while len(kept) > limit:
        kept.pop(next(iter(kept)))
    return request


@dataclass
class PhotoRequest(_Toggles):
    """A photo that has a mask keyboard: where to fetch it and how to mask it."""

    file_id: str  # Telegram's reference to the picture, never the picture itself
    as_file: bool  # sent as a file: the answer goes back as a file, at full quality
    mode: Mode = Mode.FACES


@dataclass
class AlbumRequest(_Toggles):
    """An album with one mask keyboard: its photos' message ids in order, and its mode."""

    photo_ids: list[int]
    mode: Mode = Mode.FACES


@dataclass
class VideoRequest(_Toggles):
    """A video note, GIF or video with a mask keyboard (bot.video): where to fetch it, what it
    comes back as, and what Telegram said about it before any download."""

    file_id: str  # Telegram's reference to the file, never the file itself
    kind: str  # the answer's kind: "video_note" | "animation" | "video"
    duration_s: float = 0.0  # as Telegram reported it (0: it did not say)
    width: int = 0
    height: int = 0
    file_size: int = 0
    mode: Mode = Mode.FACES


@dataclass
class ChatSettings:
    """What /settings changes for one chat (bot.settings_menu)."""

    mode: Mode = Mode.FACES  # how a new photo's keyboard starts: every face, or the whole photo
    language: str | None = None  # a shipped language (bot.i18n); None: each person's own
    quiet: bool = False  # groups: /mask with a mask given answers with the photo alone
    auto: bool = False  # groups: every photo posted gets the keyboard (the bot must see them)


@dataclass
class ChatState:
    """One chat's state: its photos with keyboards, by the photo's message id, and settings."""

    photos: dict[int, PhotoRequest] = field(default_factory=dict)
    # a state stored before settings existed gets the defaults (bot.persistence fills in
    # fields an older version lacked)
    settings: ChatSettings = field(default_factory=ChatSettings)
    # albums with a keyboard, by their first photo's message id (bot.albums)
    albums: dict[int, AlbumRequest] = field(default_factory=dict)
    # videos with a keyboard, by the video's message id (bot.video)
    videos: dict[int, VideoRequest] = field(default_factory=dict)
    # the last mix's masks, faces left to right: the next mix changes every face (bot.styles)
    last_mix: list[int] = field(default_factory=list)

    def remember(self, photo_id: int, request: PhotoRequest) -> PhotoRequest:
        """The request kept for this photo (an earlier one wins), forgetting the oldest."""
        return _keep(self.photos, photo_id, request, KEEP_PHOTOS)

    def remember_album(self, album_id: int, request: AlbumRequest) -> AlbumRequest:
        """The request kept for this album (an earlier one wins), forgetting the oldest."""
        return _keep(self.albums, album_id, request, KEEP_ALBUMS)

    def remember_video(self, video_id: int, request: VideoRequest) -> VideoRequest:
        """The request kept for this video (an earlier one wins), forgetting the oldest."""
        return _keep(self.videos, video_id, request, KEEP_VIDEOS)

    @classmethod
    def restore(cls, stored: object) -> ChatState:
        """A stored chat state; the dicts an earlier version stored are converted."""
        if isinstance(stored, cls):
            return stored
        photos: dict[int, PhotoRequest] = {}
        if isinstance(stored, dict) and isinstance(stored.get("photos"), dict):
            for photo_id, request in stored["photos"].items():
                try:
                    photos[int(photo_id)] = PhotoRequest(
                        file_id=str(request["file_id"]),
                        as_file=bool(request.get("as_file", False)),
                        mode=Mode.from_crop(bool(request.get("crop", True))),
                    )
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # one unreadable entry costs one keyboard, not the chat
        return cls(photos=photos)


@dataclass
class SharedPhoto:
    """A masked photo the bot sent this user: Telegram's reference to it, for inline mode."""

    file_id: str
    mask_id: int


@dataclass
class AvatarMasks:
    """The user's profile photo in every mask, posted to INLINE_CACHE_CHAT_ID (bot.inline)."""

    photo_id: str  # the profile photo's file_unique_id ("" when the user showed none)
    file_ids: dict[int, str]  # mask id -> the masked photo's file id
    checked: float  # when the profile photo was last looked up


@dataclass
class UserState:
    """One user's state: when they last had photos masked (for the throttle), their masked
    photos and profile photo for inline mode, their sticker set, their last style and their
    own picture."""

    recent_jobs: list[float] = field(default_factory=list)
    shared: list[SharedPhoto] = field(default_factory=list)  # newest first
    avatar: AvatarMasks | None = None
    sticker_set: str | None = None  # the set's name once the bot has made it (bot.stickers)
    style: str = ""  # the style this person chose last, offered first (bot.styles)
    # Telegram's file id of this person's own picture for the cloth (/pattern), never the picture
    pattern_file_id: str | None = None

    def throttle(self, jobs: int, seconds: float, count: int = 1) -> int:
        """Seconds to wait before ``count`` more masked photos; 0 records them now.

        An album counts as its photos; one larger than ``jobs`` needs the whole window free.
        """
        now = time.time()
        self.recent_jobs = [t for t in self.recent_jobs if now - t < seconds]
        count = max(1, min(count, jobs))
        over = len(self.recent_jobs) + count - jobs
        if over > 0:
            return max(1, round(self.recent_jobs[over - 1] + seconds - now))
        self.recent_jobs.extend([now] * count)
        return 0

    def share(self, file_id: str, mask_id: int) -> None:
        """Remember a masked photo sent to this user, for inline mode (newest first)."""
        self.shared = [s for s in self.shared if s.file_id != file_id]
        self.shared.insert(0, SharedPhoto(file_id, mask_id))
        del self.shared[KEEP_SHARED:]

    @classmethod
    def restore(cls, stored: object) -> UserState:
        """A stored user state; the dicts an earlier version stored are converted."""
        if isinstance(stored, cls):
            return stored
        recent = stored.get("recent_jobs", []) if isinstance(stored, dict) else []
        try:
            return cls(recent_jobs=[float(t) for t in recent])
        except (TypeError, ValueError):
            return cls()


CONTEXT_TYPES = ContextTypes(chat_data=ChatState, user_data=UserState)
Context = CallbackContext[ExtBot[None], UserState, ChatState, dict[str, Any]]


# ----------------------------------------------------------------------------- the stored form

#: bump it when a field changes meaning or type (adding a field with a default needs no bump:
#: an older state reads back with the default)
STATE_FORMAT_VERSION = 1


class StateFormatError(ValueError):
    """A stored state that is not one of ours in a format this version reads."""


def _state_classes() -> dict[str, type]:
    return {cls.__name__: cls for cls in (
        PhotoRequest, AlbumRequest, VideoRequest, ChatSettings, ChatState, SharedPhoto,
        AvatarMasks, UserState,
    )}  # fmt: skip


def encode_state(state: ChatState | UserState) -> bytes:
    """``state`` as JSON: ``{"v": version, "type": class name, "fields": {...}}``. A field an
    older object lacks is left out, so it reads back with its default."""
    if type(state) not in (ChatState, UserState):
        raise TypeError(f"{type(state).__name__} is not a chat or user state")
    document = {"v": STATE_FORMAT_VERSION, "type": type(state).__name__,
                "fields": _plain(state)}  # fmt: skip
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def _plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value) not in STATE_CLASSES.values():
            raise TypeError(f"{type(value).__name__} is not part of the bot's state")
        present = vars(value)
        return {f.name: _plain(present[f.name]) for f in dataclasses.fields(value)
                if f.name in present}  # fmt: skip
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"{type(value).__name__} is not part of the bot's state")


def decode_state(data: bytes, expected: type[T]) -> T:
    """The state that :func:`encode_state` wrote, as ``expected`` (ChatState or UserState); a
    :class:`StateFormatError` for anything else."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise StateFormatError(f"not JSON ({type(error).__name__})") from None
    if not isinstance(document, dict) or not {"v", "type", "fields"} <= document.keys():
        raise StateFormatError("not a stored state")
    if document["v"] != STATE_FORMAT_VERSION:
        raise StateFormatError(f"state format version {document['v']!r}, this bot reads "
                               f"{STATE_FORMAT_VERSION}")  # fmt: skip
    if document["type"] != expected.__name__:
        raise StateFormatError(f"a {document['type']!r} where a {expected.__name__} belongs")
    return _typed(document["fields"], expected, "state")


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` (from JSON) as type ``hint``, which is one of the types bot.state uses."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _typed(value, inner, where)
    if origin is list:
        if not isinstance(value, list):
            raise StateFormatError(f"{where}: a list expected")
        return [_typed(item, args[0], f"{where}[]") for item in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise StateFormatError(f"{where}: an object expected")
        key_type, item_type = args
        try:
            return {key_type(key): _typed(item, item_type, f"{where}.{key}")
                    for key, item in value.items()}  # fmt: skip
        except ValueError:
            raise StateFormatError(f"{where}: keys of type {key_type.__name__}") from None
    if hint in STATE_CLASSES.values():
        if not isinstance(value, dict):
            raise StateFormatError(f"{where}: an object expected")
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint)}
        # a field a newer version added is left out; one this version added gets its default
        given = {name: _typed(item, hints[name], f"{where}.{name}")
                 for name, item in value.items() if name in known}  # fmt: skip
        try:
            return hint(**given)
        except TypeError as error:  # a field without a default is missing
            raise StateFormatError(f"{where}: {error}") from None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise StateFormatError(f"{where}: {value!r} is not a {hint.__name__}") from None
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise StateFormatError(f"{where}: {type(value).__name__} where {hint} belongs")


#: every class a stored state may hold, by name: nothing else is ever built from storage
STATE_CLASSES: dict[str, type] = _state_classes()
