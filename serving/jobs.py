"""What crosses the process boundary between the bot and the inference workers.

A :class:`MaskJob` goes in; a :class:`~core.results.MaskedPhoto` or a :class:`JobFailure`
comes back (a :class:`ManyMasksJob` gets a list of photos, a :class:`StickerJob` WebP bytes,
a :class:`VideoJob` a :class:`~core.results.MaskedVideo`, a video sticker's too, with
:class:`Progress` on the way).
They cross as they are through the pipe to the pool's own child processes, and as
:mod:`serving.wire` messages (msgpack, versioned, never pickle) through Redis to and from
``facemask-worker``. Failures travel as a code and a sentence, never as an exception or a
traceback: :func:`read_result` turns a failure back into the matching
:class:`~core.errors.FaceMaskError`, so callers can use ``isinstance`` and ``error.code``.

This module must stay importable without torch: the bot imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from core.errors import FaceMaskError
from core.results import MaskedPhoto, MaskedVideo, Mode

logger = logging.getLogger(__name__)

#: the arq function name the bot enqueues and ``facemask-worker`` serves
ARQ_FUNCTION = "mask_photo"
#: ... for a :class:`ManyMasksJob` (several masks on one photo) and a :class:`StickerJob`
ARQ_MANY_FUNCTION = "mask_photo_many"
ARQ_STICKER_FUNCTION = "make_sticker"
#: ... for a :class:`VideoJob`
ARQ_VIDEO_FUNCTION = "mask_video"
#: where facemask-worker leaves a running video job's progress (0..1) for the bot to read
VIDEO_PROGRESS_KEY = "facemask:progress:"
#: the longest video a job takes (core.video.codec.MAX_DURATION_S; not imported: that needs PyAV)
MAX_VIDEO_SECONDS = 60.0
#: seconds a finished job's result (which holds the photo) stays in Redis if nobody reads it;
#: the bot deletes it as soon as it has read it
RESULT_SECONDS = 10


class WorkerBusyError(FaceMaskError):
    """I'm busy with a lot of photos right now. Please try again in a minute."""

    code = "busy"


class WorkerTimeoutError(FaceMaskError):
    """That photo took too long to process. Please try again, or send a smaller photo."""

    code = "timeout"


class WorkerFailedError(FaceMaskError):
    """Something went wrong while masking that photo. Please try again."""

    code = "worker_failed"


class WorkerStoppedError(WorkerFailedError):
    """The inference workers are stopping or not running. Please try again in a minute."""

    code = "restarting"


class WorkerUnreachableError(WorkerBusyError):
    """I can't reach my workers right now. Please try again in a minute."""

    code = "unreachable"


class JobLostError(WorkerFailedError):
    """That photo was lost on its way through a restart. Please tap the mask again."""

    code = "lost"


#: a job's ``style`` that means "the picture in ``pattern``" (core.render.style.OWN)
OWN_STYLE = "own"


@dataclass(frozen=True)
class MaskJob:
    """One photo to mask: the encoded picture, the mask's id and how faces are found.

    ``style``: the cloth's colour or pattern by id ("navy", "#0473e2", "stripes"; "" as drawn),
    or :data:`OWN_STYLE` for the picture whose bytes are ``pattern`` (the bot downloads it for
    the job from Telegram's file id: no picture is kept). ``mix``: one mask per face, faces
    left to right (``masks.mix``); empty: ``mask_id`` on every face."""

    image: bytes
    mask_id: int
    mode: Mode = Mode.FACES
    style: str = ""
    pattern: bytes = b""
    mix: tuple[int, ...] = ()

    def __repr__(self) -> str:  # job queues log their arguments: never the picture's bytes
        return (
            f"MaskJob(mask {self.mix or self.mask_id}, {self.mode}{_styled(self)}, "
            f"{len(self.image)} bytes)"
        )


@dataclass(frozen=True)
class ManyMasksJob:
    """One photo, several masks (the bot's "All 7"): faces read once, one picture per mask."""

    image: bytes
    mask_ids: tuple[int, ...]
    mode: Mode = Mode.FACES
    style: str = ""  # as a MaskJob's
    pattern: bytes = b""

    def __repr__(self) -> str:  # never the picture's bytes in a log
        return (
            f"ManyMasksJob(masks {self.mask_ids}, {self.mode}{_styled(self)}, "
            f"{len(self.image)} bytes)"
        )


@dataclass(frozen=True)
class StickerJob:
    """The largest face of a photo, masked with ``mask_id``, cut out as a WebP sticker."""

    image: bytes
    mask_id: int
    mode: Mode = Mode.FACES
    style: str = ""  # as a MaskJob's
    pattern: bytes = b""

    def __repr__(self) -> str:
        return (
            f"StickerJob(mask {self.mask_id}, {self.mode}{_styled(self)}, {len(self.image)} bytes)"
        )


def _styled(job: MaskJob | ManyMasksJob | StickerJob) -> str:
    """A style in a job's repr: its id, an own picture's size, never its bytes."""
    if not job.style:
        return ""
    if job.style == OWN_STYLE:
        return f", own picture of {len(job.pattern)} bytes"
    return f", style {job.style}"


@dataclass(frozen=True)
class VideoJob:
    """A video note, GIF or video to mask: the file's bytes, the mask, how faces are found, the
    output kind ("video" | "video_note" | "animation") and its length as Telegram reported it
    (0: unknown), which sets the job's time limit.

    ``sticker``: instead of the masked video, its largest face's head cut out as a Telegram
    video sticker (``FaceMasker.video_sticker``: WebM, VP9 with alpha, the first 3 s), answered
    as a MaskedVideo of kind "sticker"; ``kind`` then only says what the video came as. It runs
    where videos run (the video lane, the arq video function), with their progress and Cancel."""

    video: bytes
    mask_id: int
    mode: Mode = Mode.FACES
    kind: str = "video"
    duration_s: float = 0.0
    sticker: bool = False

    def __repr__(self) -> str:  # never the video's bytes in a log
        made = ", as a sticker" if self.sticker else ""
        return (
            f"VideoJob({self.kind}{made}, mask {self.mask_id}, {self.mode}, "
            f"{self.duration_s:g} s, {len(self.video)} bytes)"
        )

    def timeout(self, job_timeout: float, video_job_timeout: float) -> float:
        """Seconds this video may take: ``video_job_timeout`` for the longest video, its share
        for a shorter one, never less than a photo's ``job_timeout``."""
        if self.duration_s <= 0:
            return max(job_timeout, video_job_timeout)
        share = video_job_timeout * min(1.0, self.duration_s / MAX_VIDEO_SECONDS)
        return max(job_timeout, share)


@dataclass(frozen=True)
class Progress:
    """A running job's progress report (0..1), sent by the worker process before its answer."""

    fraction: float


@dataclass(frozen=True)
class JobFailure:
    """A job that did not produce a picture: the error's code and its sentence."""

    code: str
    message: str

    @classmethod
    def of(cls, error: FaceMaskError) -> JobFailure:
        return cls(error.code, str(error))

    def error(self) -> FaceMaskError:
        """The error class that :attr:`code` names, with :attr:`message` as its text."""
        error_class = _error_classes().get(self.code)
        if error_class is None:  # a code this side does not know (another version)
            error = FaceMaskError(self.message)
            error.code = self.code
            return error
        return error_class(self.message)


#: what a job answers: a MaskJob a MaskedPhoto, a ManyMasksJob a list of them (in its masks'
#: order), a StickerJob the sticker's WebP bytes, a VideoJob a MaskedVideo; any job a JobFailure
JobResult = MaskedPhoto | list[MaskedPhoto] | bytes | MaskedVideo | JobFailure
AnyJob = MaskJob | ManyMasksJob | StickerJob | VideoJob
#: how a video job's progress reaches its asker: the share done, 0 to 1
ProgressReport = Callable[[float], None]


def read_result(result: object) -> MaskedPhoto:
    """A job's answer as a :class:`MaskedPhoto`, or raise the :class:`FaceMaskError` it carries."""
    if isinstance(result, MaskedPhoto):
        return result
    _not_the_answer(result, "a job", "a MaskedPhoto")


def read_photos(result: object) -> list[MaskedPhoto]:
    """A :class:`ManyMasksJob`'s answer, or raise the :class:`FaceMaskError` it carries."""
    if isinstance(result, list) and all(isinstance(item, MaskedPhoto) for item in result):
        return result
    _not_the_answer(result, "a many-masks job", "a list")


def read_sticker(result: object) -> bytes:
    """A :class:`StickerJob`'s answer (WebP bytes), or raise the error it carries."""
    if isinstance(result, bytes):
        return result
    _not_the_answer(result, "a sticker job", "bytes")


def read_video(result: object) -> MaskedVideo:
    """A :class:`VideoJob`'s answer, or raise the :class:`FaceMaskError` it carries."""
    if isinstance(result, MaskedVideo):
        return result
    _not_the_answer(result, "a video job", "a MaskedVideo")


def _not_the_answer(result: object, job: str, wanted: str) -> NoReturn:
    """Raise the error a :class:`JobFailure` carries; anything else is logged (e.g. a worker of
    another version still on the same Redis) and raised as :class:`WorkerFailedError`."""
    if isinstance(result, JobFailure):
        raise result.error()
    logger.error("%s answered with %s, not %s or a JobFailure", job, type(result), wanted)
    raise WorkerFailedError()


def _error_classes() -> dict[str, type[FaceMaskError]]:
    """Every known error class by its code; the first class to claim a code keeps it."""
    classes: dict[str, type[FaceMaskError]] = {}
    pending: list[type[FaceMaskError]] = [FaceMaskError]
    while pending:
        error_class = pending.pop(0)
        classes.setdefault(error_class.code, error_class)
        pending.extend(error_class.__subclasses__())
    return classes


class JobClient:
    """The calls the bot makes of the workers, each a job sent through :meth:`submit` and
    its answer read back (a typed error where the worker failed). The embedded pool and the
    Redis client differ only in how a job travels (their :meth:`submit`)."""

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def healthy(self) -> bool:
        """Whether the workers can be reached now (the heartbeat stops while not)."""
        raise NotImplementedError

    async def submit(self, job: AnyJob, progress: ProgressReport | None = None) -> object:
        raise NotImplementedError

    async def mask_photo(
        self,
        image: bytes,
        mask_id: int,
        mode: Mode,
        *,
        style: str = "",
        pattern: bytes = b"",
        mix: tuple[int, ...] = (),
    ) -> MaskedPhoto:
        return read_result(await self.submit(MaskJob(image, mask_id, mode, style, pattern, mix)))

    async def mask_many(
        self, image: bytes, mask_ids: tuple[int, ...], mode: Mode
    ) -> list[MaskedPhoto]:
        return read_photos(await self.submit(ManyMasksJob(image, mask_ids, mode)))

    async def sticker(
        self, image: bytes, mask_id: int, mode: Mode, *, style: str = "", pattern: bytes = b""
    ) -> bytes:
        return read_sticker(await self.submit(StickerJob(image, mask_id, mode, style, pattern)))

    async def mask_video(
        self, job: VideoJob, progress: ProgressReport | None = None
    ) -> MaskedVideo:
        return read_video(await self.submit(job, progress))
