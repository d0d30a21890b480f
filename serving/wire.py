"""The wire format: how jobs and their answers cross Redis, as msgpack, never as pickles.

A pickle runs code when it is read, so anyone who could write to Redis would run code in the
bot and in every worker. Instead every message is two msgpack objects back to back:

- a header ``{"wire": "facemask", "v": FORMAT_VERSION}``, read and checked first;
- the body: arq's own envelope (a dict of plain values) in which each of our types is a msgpack
  extension (code below) holding a list of its fields; pictures and videos as raw bytes.

Only the types listed here are written or read: :class:`~serving.jobs.MaskJob`,
:class:`~serving.jobs.ManyMasksJob`, :class:`~serving.jobs.StickerJob`,
:class:`~serving.jobs.VideoJob`, :class:`~core.results.MaskedPhoto` (with its
:class:`~core.results.Face` s), :class:`~core.results.MaskedVideo`,
:class:`~serving.jobs.JobFailure`, :class:`~serving.jobs.Progress`, and an exception arq records
(a failed or expired job) as its class name and sentence, read back as :class:`RemoteError`,
never raised as itself. A sticker is plain bytes, a many-masks answer a list.

Whatever cannot be read exactly (another format version, cut short, too large, a wrong type
where a job should be, random bytes) is refused with a :class:`WireFormatError` naming why;
nothing is guessed at. The worker and the bot hand :func:`serialize` and :func:`deserialize`
(the worker: :func:`deserialize_job`, which also checks that the job fits its function) to
arq, so arq's envelope is msgpack too.

Change :data:`FORMAT_VERSION` whenever a field is removed or changes meaning: a bot and a
worker of different versions then refuse each other's messages with one clear log line,
instead of misreading them. Fields may be added at the end of a type, written only when they
hold something (:data:`OPTIONAL_TAILS`): this version reads the type with or without them,
and an older release refuses a value that carries them by its field count, never misreads it.
Issue 26 added this way a job's style, own picture and mix (a plain job is written as before),
and a video job's ``sticker`` flag (a video sticker; a plain video job is written as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

from core.results import Face, MaskedPhoto, MaskedVideo, Mode
from serving.jobs import (
    ARQ_FUNCTION,
    ARQ_MANY_FUNCTION,
    ARQ_STICKER_FUNCTION,
    ARQ_VIDEO_FUNCTION,
    JobFailure,
    ManyMasksJob,
    MaskJob,
    Progress,
    StickerJob,
    VideoJob,
)

#: bump it with any change to what a message holds (see the module's docstring)
FORMAT_VERSION = 1
#: the header's "wire" field: this is one of our messages, not arq's pickle or anything else
FORMAT_NAME = "facemask"
#: the largest message read or written: a 20 MB video with its masked copy fits many times over,
#: and a message larger than this is refused before any of it is decoded
MAX_MESSAGE_BYTES = 128 * 2**20
#: extensions inside extensions (a result's photos, their faces) go no deeper than this
MAX_DEPTH = 4

#: the job type each arq function takes; a job of another type is refused
JOB_TYPES: dict[str, type] = {
    ARQ_FUNCTION: MaskJob,
    ARQ_MANY_FUNCTION: ManyMasksJob,
    ARQ_STICKER_FUNCTION: StickerJob,
    ARQ_VIDEO_FUNCTION: VideoJob,
}
#: the keys of arq's job envelope (arq.jobs.serialize_job), and those a result adds
JOB_KEYS = frozenset({"t", "f", "a", "k", "et"})
RESULT_KEYS = JOB_KEYS | {"s", "r", "st", "ft", "q", "id"}


class WireFormatError(ValueError):
    """A message that is not one this side can read exactly; it is refused, not guessed at."""


class WireVersionError(WireFormatError):
    """A message in another format version: the bot and the workers run different releases."""

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(
            f"a message in wire format version {version!r}; this side reads version "
            f"{FORMAT_VERSION} (run the same release of the bot and facemask-worker)"
        )


class RemoteError(Exception):
    """An exception arq recorded on the other side (a failed, expired or aborted job), read
    back as its class name and sentence: the other side's classes are never rebuilt here."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name

    def __repr__(self) -> str:
        return f"RemoteError({self.name}: {self})"


# ----------------------------------------------------------------------------- our types

_MASK_JOB, _MANY_JOB, _STICKER_JOB, _VIDEO_JOB = 1, 2, 3, 4
_PHOTO, _FACE, _VIDEO, _FAILURE, _PROGRESS, _ERROR = 5, 6, 7, 8, 9, 10


def _fields(value: object) -> tuple[int, list[Any]]:
    """The extension code and fields of one of our values (TypeError for anything else)."""
    if isinstance(value, MaskJob):
        fields = [value.image, value.mask_id, Mode(value.mode).value]
        tail = [value.style, value.pattern, list(value.mix)]
        return _MASK_JOB, fields + tail if (value.style or value.mix) else fields
    if isinstance(value, ManyMasksJob):
        fields = [value.image, list(value.mask_ids), Mode(value.mode).value]
        return _MANY_JOB, fields + [value.style, value.pattern] if value.style else fields
    if isinstance(value, StickerJob):
        fields = [value.image, value.mask_id, Mode(value.mode).value]
        return _STICKER_JOB, fields + [value.style, value.pattern] if value.style else fields
    if isinstance(value, VideoJob):
        fields = [value.video, value.mask_id, Mode(value.mode).value, value.kind, value.duration_s]
        return _VIDEO_JOB, fields + [True] if value.sticker else fields
    if isinstance(value, MaskedPhoto):
        return _PHOTO, [
            value.image, value.format, value.width, value.height, list(value.faces), value.ms,
        ]  # fmt: skip
    if isinstance(value, Face):
        points = np.ascontiguousarray(value.points, dtype="<f4")
        if points.ndim != 2 or points.shape[1] != 2:
            raise TypeError(f"a face's points must be (n, 2), not {points.shape}")
        return _FACE, [[float(x) for x in value.box], points.shape[0], points.tobytes()]
    if isinstance(value, MaskedVideo):
        return _VIDEO, [
            value.data, value.width, value.height, value.fps, value.frames, value.duration_s,
            value.has_audio, value.faces_mean, value.ms, value.scaled_down, value.kind,
            value.complete,
        ]  # fmt: skip
    if isinstance(value, JobFailure):
        return _FAILURE, [value.code, value.message]
    if isinstance(value, Progress):
        return _PROGRESS, [value.fraction]
    if isinstance(value, RemoteError):
        return _ERROR, [value.name, str(value)]
    if isinstance(value, BaseException):  # arq records a failed job's exception
        refusal = refusal_in(value)
        shown = refusal if refusal is not None else value
        return _ERROR, [type(shown).__name__, str(shown)]
    raise TypeError(f"{type(value).__name__} does not go on the wire")


def refusal_in(error: BaseException) -> WireFormatError | None:
    """The :class:`WireFormatError` behind ``error`` (arq wraps ours in its own), if any."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(current, WireFormatError):
            return current
        current, seen = current.__cause__ or current.__context__, seen + 1
    return None


def _mode(value: object) -> Mode:
    try:
        return Mode(_of(value, str))
    except ValueError:
        raise WireFormatError(f"unknown mode {value!r}") from None


def _of(value: object, kind: type | tuple[type, ...]) -> Any:
    """``value`` if it is of ``kind`` (a bool is no int here), else a refusal."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WireFormatError(f"{type(value).__name__} where {kind} belongs")
    return value


def _number(value: object) -> float:
    return float(_of(value, (int, float)))


def _mask_id(value: object) -> int:
    mask_id = _of(value, int)
    if not 0 <= mask_id < 2**16:
        raise WireFormatError(f"mask id {mask_id} out of range")
    return mask_id


def _size(value: object) -> int:
    size = _of(value, int)
    if not 0 <= size < 2**31:
        raise WireFormatError(f"size {size} out of range")
    return size


def _face(fields: list[Any]) -> Face:
    box, rows, data = fields
    box = _of(box, list)
    if len(box) != 4:
        raise WireFormatError("a face's box has four numbers")
    rows = _size(rows)
    data = _of(data, bytes)
    if len(data) != rows * 2 * 4:
        raise WireFormatError(f"{len(data)} bytes of points for {rows} points")
    points = np.frombuffer(data, dtype="<f4").reshape(rows, 2).astype(np.float32)
    return Face(tuple(_number(x) for x in box), points)  # type: ignore[arg-type]


def _photo(fields: list[Any]) -> MaskedPhoto:
    image, format_, width, height, faces, ms = fields
    faces = _of(faces, list)
    return MaskedPhoto(
        _of(image, bytes), _of(format_, str), _size(width), _size(height),
        tuple(_of(face, Face) for face in faces), _number(ms),
    )  # fmt: skip


def _video(fields: list[Any]) -> MaskedVideo:
    (data, width, height, fps, frames, duration_s, has_audio, faces_mean, ms, scaled_down,
     kind, complete) = fields  # fmt: skip
    return MaskedVideo(
        _of(data, bytes), _size(width), _size(height), _number(fps), _size(frames),
        _number(duration_s), _of(has_audio, bool), _number(faces_mean), _number(ms),
        _of(scaled_down, bool), _of(kind, str), _of(complete, bool),
    )  # fmt: skip


#: the longest style id a job carries ("#0473e2", "gradient"; the bot's ids are shorter)
MAX_STYLE_CHARS = 32


def _style(fields: list[Any]) -> dict[str, Any]:
    """A job's optional style fields (after its first three), as keyword arguments."""
    if len(fields) <= 3:
        return {}
    style, pattern = _of(fields[3], str), _of(fields[4], bytes)
    if len(style) > MAX_STYLE_CHARS:
        raise WireFormatError(f"a style of {len(style)} characters")
    return {"style": style, "pattern": pattern}


def _mask_job(fields: list[Any]) -> MaskJob:
    mix = tuple(_mask_id(i) for i in _of(fields[5], list)) if len(fields) > 3 else ()
    return MaskJob(
        _of(fields[0], bytes), _mask_id(fields[1]), _mode(fields[2]), mix=mix, **_style(fields)
    )


def _sticker(fields: list[Any]) -> StickerJob:
    return StickerJob(
        _of(fields[0], bytes), _mask_id(fields[1]), _mode(fields[2]), **_style(fields)
    )


def _many(fields: list[Any]) -> ManyMasksJob:
    image, mask_ids, mode = fields[:3]
    ids = tuple(_mask_id(mask_id) for mask_id in _of(mask_ids, list))
    return ManyMasksJob(_of(image, bytes), ids, _mode(mode), **_style(fields))


def _video_job(fields: list[Any]) -> VideoJob:
    sticker = _of(fields[5], bool) if len(fields) > 5 else False
    return VideoJob(
        _of(fields[0], bytes), _mask_id(fields[1]), _mode(fields[2]), _of(fields[3], str),
        _number(fields[4]), sticker,
    )  # fmt: skip


#: extension code -> (number of fields, how to build the value from them)
_READERS: dict[int, tuple[int, Callable[[list[Any]], object]]] = {
    _MASK_JOB: (3, _mask_job),
    _MANY_JOB: (3, _many),
    _STICKER_JOB: (3, _sticker),
    _VIDEO_JOB: (5, _video_job),
    _PHOTO: (6, _photo),
    _FACE: (3, _face),
    _VIDEO: (12, _video),
    _FAILURE: (2, lambda f: JobFailure(_of(f[0], str), _of(f[1], str))),
    _PROGRESS: (1, lambda f: Progress(_number(f[0]))),
    _ERROR: (2, lambda f: RemoteError(_of(f[0], str), _of(f[1], str))),
}


#: extension code -> how many more fields it may carry at its end (see the module's docstring)
OPTIONAL_TAILS: dict[int, int] = {_MASK_JOB: 3, _MANY_JOB: 2, _STICKER_JOB: 2, _VIDEO_JOB: 1}

# ----------------------------------------------------------------------------- messages


def _default(value: object) -> msgpack.ExtType:
    code, fields = _fields(value)
    return msgpack.ExtType(code, msgpack.packb(fields, default=_default, use_bin_type=True))


_HEADER = msgpack.packb({"wire": FORMAT_NAME, "v": FORMAT_VERSION}, use_bin_type=True)


def serialize(envelope: dict[str, Any]) -> bytes:
    """arq's envelope (a job, or a job's result) as one message; TypeError for a value that
    does not go on the wire. A result does not carry the job's arguments back: the bot never
    reads them, and they would hold the photo a second time."""
    if "s" in envelope and "a" in envelope:
        envelope = {**envelope, "a": []}
    body = msgpack.packb(envelope, default=_default, use_bin_type=True)
    message = _HEADER + body
    if len(message) > MAX_MESSAGE_BYTES:
        raise WireFormatError(f"a message of {len(message)} bytes is over {MAX_MESSAGE_BYTES}")
    return message


class _Reader:
    """One message's extensions, read with a depth limit (a message nesting extensions a
    thousand deep would otherwise recurse until the stack runs out)."""

    def __init__(self) -> None:
        self.depth = 0

    def extension(self, code: int, data: bytes) -> object:
        reader = _READERS.get(code)
        if reader is None:
            raise WireFormatError(f"unknown extension {code}")
        if self.depth >= MAX_DEPTH:
            raise WireFormatError("extensions nested too deep")
        self.depth += 1
        try:
            fields = _unpack(data, self.extension)
        finally:
            self.depth -= 1
        count, build = reader
        counts = {count, count + OPTIONAL_TAILS.get(code, 0)}
        if not isinstance(fields, list) or len(fields) not in counts:
            raise WireFormatError(
                f"extension {code} holds {' or '.join(map(str, sorted(counts)))} fields"
            )
        return build(fields)


def _unpack(data: bytes, extension: Callable[[int, bytes], object]) -> object:
    return msgpack.unpackb(data, ext_hook=extension, raw=False, use_list=True, strict_map_key=True)


def deserialize(data: bytes) -> dict[str, Any]:
    """One message's envelope (a job's or a result's), or a :class:`WireFormatError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireFormatError(f"{type(data).__name__} is not a message")
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireFormatError(f"a message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}")
    unpacker = msgpack.Unpacker(
        raw=False, use_list=True, strict_map_key=True, max_buffer_size=MAX_MESSAGE_BYTES,
        ext_hook=_Reader().extension,
    )  # fmt: skip
    try:
        unpacker.feed(data)
        header = unpacker.unpack()
        _check_header(header)
        envelope = unpacker.unpack()
        trailing = unpacker.tell() != len(data)
    except WireFormatError:
        raise
    except msgpack.OutOfData:
        raise WireFormatError("a message cut short") from None
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError, MemoryError) as error:
        # msgpack's own refusals (bad bytes, too deep, too long), an extension's fields of the
        # wrong shape: all one thing to the caller
        raise WireFormatError(f"not a readable message ({type(error).__name__}: {error})") from None
    if trailing:
        raise WireFormatError("bytes after the end of the message")
    if not isinstance(envelope, dict) or not JOB_KEYS <= envelope.keys():
        raise WireFormatError("the message is not a job or a job's result")
    if not envelope.keys() <= RESULT_KEYS:
        raise WireFormatError("the message holds fields this side does not know")
    return envelope


def _check_header(header: object) -> None:
    if not isinstance(header, dict) or header.get("wire") != FORMAT_NAME:
        raise WireFormatError("not a facemask message (an older release's pickle, or garbage)")
    if header.get("v") != FORMAT_VERSION:
        raise WireVersionError(header.get("v"))


def deserialize_job(data: bytes) -> dict[str, Any]:
    """A job's envelope, refused unless it names one of our functions with one job of the
    type that function takes (what facemask-worker gives arq to read its queue)."""
    envelope = deserialize(data)
    function, args, kwargs = envelope["f"], envelope["a"], envelope["k"]
    expected = JOB_TYPES.get(function) if isinstance(function, str) else None
    if expected is None:
        raise WireFormatError(f"no job function {function!r}")
    if "s" in envelope:
        raise WireFormatError("a job's result where a job belongs")
    if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], expected)):
        raise WireFormatError(f"{function} takes one {expected.__name__}")
    if kwargs != {}:
        raise WireFormatError(f"{function} takes no keyword arguments")
    for key in ("t", "et"):
        if envelope[key] is not None and not isinstance(envelope[key], int):
            raise WireFormatError(f"{key!r} is not a number")
    return envelope


def read_result(data: bytes) -> tuple[bool, object]:
    """A result message's (success, value): the job's answer, or on failure what arq recorded
    (usually a :class:`RemoteError`)."""
    envelope = deserialize(data)
    if "s" not in envelope or "r" not in envelope:
        raise WireFormatError("a job where its result belongs")
    success = envelope["s"]
    if not isinstance(success, bool):
        raise WireFormatError("'s' is not true or false")
    return success, envelope["r"]
