"""Files: what users send and the bot uploads, kept in memory; getFile and its 20 MB limit."""

from __future__ import annotations

import functools
import io
from typing import Any

from aiohttp import web
from PIL import Image
from telegram import (
    Document,
    File,
    PhotoSize,
)

from tests.support.fake_telegram.common import (
    DOWNLOAD_LIMIT,
    UPLOAD_LIMIT,
    ApiError,
    StoredFile,
)


@functools.lru_cache(maxsize=16)  # load runs send the same few photos again and again
def scaled(image: bytes, sizes: tuple[int, ...]) -> tuple[tuple[bytes, int, int], ...]:
    """The JPEG versions Telegram keeps of a photo: smaller sides first, then the original."""
    with Image.open(io.BytesIO(image)) as picture:
        picture = picture.convert("RGB")
    longest = max(picture.size)
    versions = []
    for side in [s for s in sizes if s < longest] + [longest]:
        scaled = picture.copy()
        scaled.thumbnail((side, side))
        out = io.BytesIO()
        scaled.save(out, format="JPEG", quality=87)
        versions.append((out.getvalue(), scaled.width, scaled.height))
    return tuple(versions)


def probe_video(data: bytes) -> tuple[int, int, int]:
    """An MP4's width, height and length in whole seconds, as Telegram reads an upload."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        seconds = container.duration / av.time_base if container.duration else 0.0
        return stream.width, stream.height, round(seconds)


class Files:
    """Files (a part of :class:`FakeTelegram`)."""

    def _store(self, data: bytes, folder: str, extension: str) -> tuple[str, StoredFile]:
        n = next(self._ids)
        file_id = f"file-{n}-{len(data)}"
        stored = StoredFile(data, f"{folder}/file_{n}.{extension}", f"u{n}")
        self.state.files[file_id] = stored
        return file_id, stored

    def _photo_size(self, data: bytes, width: int, height: int) -> PhotoSize:
        file_id, stored = self._store(data, "photos", "jpg")
        return PhotoSize(file_id, stored.unique_id, width, height, file_size=len(data))

    def _document(
        self, data: bytes, file_name: str, mime_type: str, file_size: int | None = None
    ) -> Document:
        extension = file_name.rpartition(".")[2] or "bin"
        file_id, stored = self._store(data, "documents", extension)
        return Document(
            file_id,
            stored.unique_id,
            file_name=file_name,
            mime_type=mime_type,
            file_size=file_size if file_size is not None else len(data),
        )

    def _upload(self, value: Any, params: dict[str, Any], folder: str, extension: str) -> Any:
        """An uploaded file's bytes, or the stored file a ``file_id``/``attach://`` names."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = params[value.removeprefix("attach://")]
        if isinstance(value, bytes):
            return value
        if isinstance(value, str) and value in self.state.files:
            return self.state.files[value].data
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _uploaded_video(self, params: dict[str, Any], field_name: str) -> tuple[str, int, int, int]:
        """An uploaded MP4, stored: its file id, width, height and whole seconds (read by PyAV)."""
        data = self._upload(params[field_name], params, "videos", "mp4")
        if len(data) > UPLOAD_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        try:
            width, height, seconds = probe_video(data)
        except Exception:
            raise ApiError(400, "Bad Request: wrong file type of the video") from None
        file_id, _ = self._store(data, "videos", "mp4")
        return file_id, width, height, seconds

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.state.files.values():
            if stored.path == path:
                return web.Response(body=stored.data)
        return web.Response(status=404)

    def _m_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params["file_id"]
        stored = self.state.files.get(file_id)
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return File(file_id, stored.unique_id, len(stored.data), stored.path).to_dict()
