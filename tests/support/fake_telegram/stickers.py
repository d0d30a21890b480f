"""Sticker sets, by Telegram's rules: owners who started the bot, ``_by_<bot>`` names, 120
stickers in a static set; a static sticker WebP or PNG, a video sticker WebM with VP9."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image
from telegram import (
    File,
    Sticker,
    StickerSet,
    User,
)

from tests.support.fake_telegram.common import (
    STATIC_SET_LIMIT,
    ApiError,
    StickerSetState,
)


class Stickers:
    """Sticker sets, by Telegram's rules (a part of :class:`FakeTelegram`)."""

    def fill_sticker_set(self, user: User, name: str, count: int) -> None:
        """A set of ``user``'s that already holds ``count`` stickers."""
        stickers = [self._store(b"RIFF-webp", "stickers", "webp")[0] for _ in range(count)]
        self.state.sticker_sets[name] = StickerSetState(user.id, "Earlier stickers", stickers)

    def _started(self, params: dict[str, Any]) -> int:
        """The user a sticker call names; Telegram refuses users who never started the bot."""
        user_id = int(params["user_id"])
        if user_id not in self.state.started:
            raise ApiError(400, "Bad Request: PEER_ID_INVALID")
        return user_id

    def _m_uploadstickerfile(self, params: dict[str, Any]) -> dict[str, Any]:
        self._started(params)
        if params.get("sticker_format") not in ("static", "video"):
            raise ApiError(400, "Bad Request: STICKER_FORMAT_INVALID")
        data = params["sticker"]
        if not isinstance(data, bytes):
            raise ApiError(400, "Bad Request: STICKER_FILE_INVALID")
        if params["sticker_format"] == "video":
            _check_video_sticker(data)
            file_id, stored = self._store(data, "stickers", "webm")
            return File(file_id, stored.unique_id, len(data), stored.path).to_dict()
        if len(data) > 512 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        try:
            with Image.open(io.BytesIO(data)) as picture:
                kind, size = picture.format, picture.size
        except OSError:
            raise ApiError(400, "Bad Request: STICKER_FILE_INVALID") from None
        # a static sticker: WebP or PNG, 512 px on one side, at most 512 on the other
        if kind not in ("WEBP", "PNG") or max(size) != 512:
            raise ApiError(400, "Bad Request: STICKER_PNG_DIMENSIONS")
        file_id, stored = self._store(data, "stickers", "webp")
        return File(file_id, stored.unique_id, len(data), stored.path).to_dict()

    def _sticker_file(self, sticker: dict[str, Any], params: dict[str, Any]) -> str:
        file_id = sticker.get("sticker")
        if isinstance(file_id, str) and file_id.startswith("attach://"):
            data = self._upload(file_id, params, "stickers", "webp")
            file_id, _ = self._store(data, "stickers", "webp")
        if file_id not in self.state.files or not sticker.get("emoji_list"):
            raise ApiError(400, "Bad Request: STICKER_FILE_INVALID")
        return file_id

    def _m_createnewstickerset(self, params: dict[str, Any]) -> bool:
        user_id = self._started(params)
        name = str(params["name"])
        suffix = f"_by_{self.bot_user.username}".lower()
        valid = re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) and "__" not in name
        if not valid or not name.lower().endswith(suffix):
            raise ApiError(400, "Bad Request: invalid sticker set name is specified")
        if not 1 <= len(params.get("title") or "") <= 64:
            raise ApiError(400, "Bad Request: invalid sticker set title is specified")
        if name.lower() in (known.lower() for known in self.state.sticker_sets):
            raise ApiError(400, "Bad Request: sticker set name is already occupied")
        stickers = params.get("stickers") or []
        if not 1 <= len(stickers) <= 50:
            raise ApiError(400, "Bad Request: STICKERS_EMPTY")
        files = [self._sticker_file(sticker, params) for sticker in stickers]
        self.state.sticker_sets[name] = StickerSetState(user_id, params["title"], files)
        return True

    def _m_addstickertoset(self, params: dict[str, Any]) -> bool:
        user_id = self._started(params)
        found = self.state.sticker_sets.get(str(params["name"]))
        if found is None or found.owner != user_id:
            raise ApiError(400, "Bad Request: STICKERSET_INVALID")
        if len(found.stickers) >= STATIC_SET_LIMIT:
            raise ApiError(400, "Bad Request: STICKERS_TOO_MUCH")
        found.stickers.append(self._sticker_file(params["sticker"], params))
        return True

    def _m_getstickerset(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.state.sticker_sets.get(str(params["name"]))
        if found is None:
            raise ApiError(400, "Bad Request: STICKERSET_INVALID")
        stickers = [
            Sticker(file_id, self.state.files[file_id].unique_id, 512, 512, False, False,
                    Sticker.REGULAR, emoji="😷")
            for file_id in found.stickers
        ]  # fmt: skip
        return StickerSet(params["name"], found.title, tuple(stickers), Sticker.REGULAR).to_dict()


def _check_video_sticker(data: bytes) -> None:
    """Telegram's rules for a video sticker: WebM, VP9, 512 px on one side and at most 512 on
    the other, at most 3 s and 30 fps, no sound, at most 256 KB."""
    import av

    if len(data) > 256 * 1024:
        raise ApiError(400, "Bad Request: file is too big")
    try:
        with av.open(io.BytesIO(data)) as container:
            video = container.streams.video[0] if container.streams.video else None
            if "webm" not in container.format.name or video is None or container.streams.audio:
                raise ApiError(400, "Bad Request: STICKER_VIDEO_NOWEBM")
            seconds = (container.duration or 0) / av.time_base
            rate = float(video.average_rate or 0)
            codec, size = video.codec_context.name, (video.width, video.height)
    except av.FFmpegError:
        raise ApiError(400, "Bad Request: STICKER_FILE_INVALID") from None
    if codec != "vp9" or max(size) != 512 or seconds > 3.0 or rate > 30.0:
        raise ApiError(400, "Bad Request: STICKER_VIDEO_LONG")
