"""What the bot remembers per chat and per user, typed, and the persistence that keeps it.

python-telegram-bot makes one :class:`ChatState` per chat (``context.chat_data``) and one
:class:`UserState` per user (``context.user_data``) through :data:`CONTEXT_TYPES`;
:class:`StatePersistence` pickles them so keyboards keep working after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram.ext import CallbackContext, ContextTypes, ExtBot, PicklePersistence

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
    photos and profile photo for inline mode, and their sticker set."""

    recent_jobs: list[float] = field(default_factory=list)
    shared: list[SharedPhoto] = field(default_factory=list)  # newest first
    avatar: AvatarMasks | None = None
    sticker_set: str | None = None  # the set's name once the bot has made it (bot.stickers)

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


class StatePersistence(PicklePersistence):
    """PicklePersistence that hands out typed state, whatever version wrote the file.

    A file that cannot be read at all (damaged, or holding classes that no longer exist) is
    moved aside with a warning, and the bot starts with empty state instead of not starting.
    """

    async def get_user_data(self) -> dict[int, UserState]:
        stored = await self._readable(super().get_user_data)
        return {user_id: UserState.restore(data) for user_id, data in stored.items()}

    async def get_chat_data(self) -> dict[int, ChatState]:
        stored = await self._readable(super().get_chat_data)
        return {chat_id: ChatState.restore(data) for chat_id, data in stored.items()}

    async def _readable(self, read: Callable[[], Awaitable[T]]) -> T:
        try:
            return await read()
        except TypeError as error:  # PicklePersistence's error for a file it cannot unpickle
            if not self.filepath.is_file():
                raise
            aside = self.filepath.with_name(f"{self.filepath.name}.unreadable-{int(time.time())}")
            self.filepath.replace(aside)
            logger.warning(
                "could not read the saved state (%s); moved it to %s and started afresh",
                error.__cause__ or error,
                aside,
            )
            return await read()  # no file now: empty state
