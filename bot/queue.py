"""How the bot reaches the inference workers: one interface, two backends.

- :class:`EmbeddedQueue` (``REDIS_URL`` unset): worker processes started next to the bot.
- :class:`RedisQueue` (``REDIS_URL`` set): jobs go through Redis to ``facemask-worker``
  processes on any machine; images travel as bytes and results come back to this bot.

Both answer :meth:`MaskQueue.mask_photo` with a :class:`~core.results.MaskedPhoto` or raise a
:class:`~core.errors.FaceMaskError` (``bot.texts.error_text`` says it to the user).
:meth:`MaskQueue.mask_video` answers with a :class:`~core.results.MaskedVideo`, reports progress
on the way, and stops the job in its worker when the awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.settings import Settings
from core.results import MaskedPhoto, MaskedVideo, Mode
from serving.jobs import (
    ARQ_FUNCTION,
    ARQ_MANY_FUNCTION,
    ARQ_STICKER_FUNCTION,
    ARQ_VIDEO_FUNCTION,
    VIDEO_PROGRESS_KEY,
    AnyJob,
    JobLostError,
    ManyMasksJob,
    MaskJob,
    ProgressReport,
    StickerJob,
    VideoJob,
    WorkerBusyError,
    WorkerFailedError,
    WorkerStoppedError,
    WorkerTimeoutError,
    WorkerUnreachableError,
    read_photos,
    read_result,
    read_sticker,
    read_video,
)

if TYPE_CHECKING:
    from serving.pool import WorkerPool

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: what Redis being away looks like to a client (a refused or reset connection, a timeout)
REDIS_TROUBLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
#: seconds a new job waits for an unreachable Redis before the tap is answered "try again"
REDIS_PATIENCE = 10.0
POLL_SECONDS = 0.05
#: after a Cancel, how long the bot looks for the aborted job's result (it holds the video)
ABORT_CLEANUP_SECONDS = 20.0


class MaskQueue(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def mask_photo(self, image: bytes, mask_id: int, mode: Mode) -> MaskedPhoto: ...

    async def mask_many(
        self, image: bytes, mask_ids: tuple[int, ...], mode: Mode
    ) -> list[MaskedPhoto]: ...

    async def sticker(self, image: bytes, mask_id: int, mode: Mode) -> bytes: ...

    async def mask_video(
        self, job: VideoJob, progress: ProgressReport | None = None
    ) -> MaskedVideo: ...

    async def healthy(self) -> bool: ...


class EmbeddedQueue:
    """Worker processes owned by the bot process."""

    def __init__(
        self,
        workers: int,
        queue_size: int,
        job_timeout: float,
        video_workers: int = 1,
        video_job_timeout: float = 180.0,
    ) -> None:
        # imported here: the pool is the bot's only way towards the model, and only this mode
        # needs it
        from serving.pool import WorkerPool

        self.pool: WorkerPool = WorkerPool(
            workers,
            queue_size=queue_size,
            job_timeout=job_timeout,
            video_workers=video_workers,
            video_job_timeout=video_job_timeout,
        )

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def mask_photo(self, image: bytes, mask_id: int, mode: Mode) -> MaskedPhoto:
        return read_result(await self.pool.run(MaskJob(image, mask_id, mode)))

    async def mask_many(
        self, image: bytes, mask_ids: tuple[int, ...], mode: Mode
    ) -> list[MaskedPhoto]:
        return read_photos(await self.pool.run(ManyMasksJob(image, mask_ids, mode)))

    async def sticker(self, image: bytes, mask_id: int, mode: Mode) -> bytes:
        return read_sticker(await self.pool.run(StickerJob(image, mask_id, mode)))

    async def mask_video(
        self, job: VideoJob, progress: ProgressReport | None = None
    ) -> MaskedVideo:
        return read_video(await self.pool.run(job, progress))

    async def healthy(self) -> bool:
        return bool(self.pool.pids)


class RedisQueue:
    """Jobs through Redis (arq) to ``facemask-worker`` processes.

    Redis trouble is weather: a command that fails is tried again with backoff for a few
    seconds (:data:`REDIS_PATIENCE`), then the tap is answered with
    :class:`~serving.jobs.WorkerUnreachableError` ("try again in a minute"). A job whose
    result vanished (Redis restarted without its data) is sent once more, then answered with
    :class:`~serving.jobs.JobLostError` ("tap again"). A result is deleted as soon as it is
    read: it holds the photo.
    """

    def __init__(
        self, redis_url: str, queue_size: int, job_timeout: float, video_job_timeout: float = 180.0
    ) -> None:
        self.redis_url = redis_url
        self.queue_size = queue_size
        self.job_timeout = job_timeout
        self.video_job_timeout = video_job_timeout
        self._redis: Any = None
        self._outage_since: float | None = None
        self._cleanups: set[asyncio.Task[None]] = set()  # aborted jobs being cleared away

    async def start(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        settings = RedisSettings.from_dsn(self.redis_url)
        settings.conn_retries = 0  # start even while Redis is away: commands retry later
        settings.conn_timeout = 2
        while self._redis is None:
            try:
                self._redis = await create_pool(settings)
            except REDIS_TROUBLE as error:
                self._trouble(error)
                await asyncio.sleep(1.0)
        self._recovered()
        logger.info("sending jobs through Redis at %s", _without_password(self.redis_url))

    async def close(self) -> None:
        for task in list(self._cleanups):
            task.cancel()
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        if self._redis is not None:
            with contextlib.suppress(*REDIS_TROUBLE):
                await self._redis.aclose(close_connection_pool=True)
            self._redis = None

    async def healthy(self) -> bool:
        """True if Redis answers now (the bot's heartbeat asks)."""
        if self._redis is None:
            return False
        try:
            await asyncio.wait_for(self._redis.ping(), 2.0)
        except (*REDIS_TROUBLE, TimeoutError) as error:
            self._trouble(error)
            return False
        self._recovered()
        return True

    async def mask_photo(self, image: bytes, mask_id: int, mode: Mode) -> MaskedPhoto:
        return read_result(await self._run(ARQ_FUNCTION, MaskJob(image, mask_id, mode)))

    async def mask_many(
        self, image: bytes, mask_ids: tuple[int, ...], mode: Mode
    ) -> list[MaskedPhoto]:
        job = ManyMasksJob(image, mask_ids, mode)
        return read_photos(await self._run(ARQ_MANY_FUNCTION, job))

    async def sticker(self, image: bytes, mask_id: int, mode: Mode) -> bytes:
        job = StickerJob(image, mask_id, mode)
        return read_sticker(await self._run(ARQ_STICKER_FUNCTION, job))

    async def mask_video(
        self, job: VideoJob, progress: ProgressReport | None = None
    ) -> MaskedVideo:
        timeout = job.timeout(self.job_timeout, self.video_job_timeout)
        return read_video(await self._run(ARQ_VIDEO_FUNCTION, job, progress, timeout))

    async def _run(
        self,
        function: str,
        job: AnyJob,
        progress: ProgressReport | None = None,
        timeout: float | None = None,
    ) -> object:
        """The worker's answer to ``job`` (arq function ``function``), as it came back.

        Cancelled (a video's Cancel button), the job is aborted in its worker and its
        leftovers are cleared from Redis in the background."""
        if self._redis is None:
            raise WorkerStoppedError()
        timeout = timeout or self.job_timeout
        deadline = time.monotonic() + timeout * 2
        for attempt in (1, 2):
            job_id = await self._enqueue(job, function, timeout)
            try:
                result = await self._result(job_id, deadline, progress)
            except asyncio.CancelledError:
                task = asyncio.create_task(self._abort(job_id))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)
                raise
            except _ResultLost:
                if attempt == 2 or time.monotonic() > deadline:
                    raise JobLostError() from None
                logger.warning("job %s vanished from Redis (restarted?); sending it again", job_id)
                continue
            return result
        raise AssertionError("unreachable")

    async def _enqueue(
        self, job: AnyJob, function: str = ARQ_FUNCTION, timeout: float | None = None
    ) -> str:
        """Put ``job`` in the shared queue (refusing while it is full); its id."""
        from arq.constants import job_key_prefix

        async def enqueue() -> str:
            name = self._redis.default_queue_name
            # back-pressure: refuse new work while the shared queue is full
            if await self._redis.zcard(name) >= self.queue_size:
                raise WorkerBusyError()
            # a job nobody has started within job_timeout is dropped: its answer would come too
            # late (a worker that dies mid-job lets go of it within seconds, see serving.worker)
            expires = timeout or self.job_timeout
            queued = await self._redis.enqueue_job(function, job, _expires=expires)
            if queued is None:  # only when a job id is reused, which we never do
                raise WorkerFailedError()
            # taps that checked the count at the same moment all got in: the ones beyond the
            # queue's size (by place in line) take their job back, unless a worker has it
            place = await self._redis.zrank(name, queued.job_id)
            if place is not None and place >= self.queue_size:
                async with self._redis.pipeline(transaction=True) as tr:
                    tr.zrem(name, queued.job_id)
                    tr.delete(job_key_prefix + queued.job_id)
                    removed, _ = await tr.execute()
                if removed:
                    raise WorkerBusyError()
            return queued.job_id

        return await self._patiently(enqueue, time.monotonic() + REDIS_PATIENCE)

    async def _result(
        self, job_id: str, deadline: float, progress: ProgressReport | None = None
    ) -> object:
        """The job's result (deleted from Redis once read), waiting until ``deadline``; the
        worker's progress reports (a video's) go to ``progress`` as they change."""
        from arq.constants import result_key_prefix
        from arq.jobs import deserialize_result

        key = result_key_prefix + job_id
        progress_key = VIDEO_PROGRESS_KEY + job_id
        reported: list[bytes | None] = [None]

        async def poll() -> bytes | None:
            async with self._redis.pipeline(transaction=True) as tr:
                tr.get(key)
                tr.zscore(self._redis.default_queue_name, job_id)
                tr.delete(key)
                if progress is not None:
                    tr.get(progress_key)
                    tr.delete(progress_key)  # read once; the worker writes the next one
                stored, score, _, *rest = await tr.execute()
            if rest and rest[0] is not None and rest[0] != reported[0]:
                reported[0] = rest[0]
                with contextlib.suppress(ValueError):
                    progress(float(rest[0]))  # type: ignore[misc]
            if stored is None and score is None:
                raise _ResultLost()  # neither done nor waiting: Redis forgot it
            return stored

        while True:
            if time.monotonic() > deadline:
                raise WorkerTimeoutError()
            # while Redis is away the job may still be done elsewhere: wait for it, up to the
            # deadline, rather than giving up on the first refused connection
            stored = await self._patiently(poll, deadline)
            if stored is not None:
                break
            await asyncio.sleep(POLL_SECONDS)
        info = deserialize_result(stored)
        if info.success:
            return info.result
        error = info.result
        if isinstance(error, Exception) and "expired" in str(error):
            # arq dropped it unstarted: the workers were too busy to start it in time
            raise WorkerBusyError()
        logger.warning("job %s failed in the worker: %r", job_id, error)
        raise WorkerFailedError()

    async def _abort(self, job_id: str) -> None:
        """Abort a job the bot no longer waits for (arq stops it in the worker), then delete
        what it leaves in Redis: its result holds the video."""
        from arq.constants import abort_jobs_ss, in_progress_key_prefix, result_key_prefix

        name = self._redis.default_queue_name
        deadline = time.monotonic() + ABORT_CLEANUP_SECONDS
        try:
            await self._patiently(
                partial(self._redis.zadd, abort_jobs_ss, {job_id: int(time.time() * 1000)}),
                deadline,
            )
            while time.monotonic() < deadline:
                async with self._redis.pipeline(transaction=True) as tr:
                    tr.delete(result_key_prefix + job_id, VIDEO_PROGRESS_KEY + job_id)
                    tr.zscore(name, job_id)
                    tr.exists(in_progress_key_prefix + job_id)
                    deleted, score, running = await tr.execute()
                if deleted or (score is None and not running):
                    break
                await asyncio.sleep(POLL_SECONDS * 4)
        except (*REDIS_TROUBLE, WorkerUnreachableError) as error:
            # its result expires within RESULT_SECONDS anyway
            logger.info("could not clear aborted job %s from Redis: %s", job_id, error)
        logger.info("job %s aborted", job_id)

    async def _patiently(self, command: Callable[[], Awaitable[T]], deadline: float) -> T:
        """``command()``, tried again with backoff while Redis is away, until ``deadline``."""
        delay = 0.1
        while True:
            try:
                value = await command()
            except REDIS_TROUBLE as error:
                self._trouble(error)
                if time.monotonic() + delay > deadline:
                    raise WorkerUnreachableError() from None
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            self._recovered()
            return value

    def _trouble(self, error: BaseException) -> None:
        if self._outage_since is None:  # one line per outage, not one per command
            self._outage_since = time.monotonic()
            logger.warning("cannot reach Redis (%s: %s); retrying", type(error).__name__, error)

    def _recovered(self) -> None:
        if self._outage_since is not None:
            seconds = time.monotonic() - self._outage_since
            logger.warning("Redis answers again after %.1f s", seconds)
            self._outage_since = None


class _ResultLost(Exception):
    """A job that is neither finished nor waiting in Redis (Redis restarted without it)."""


def create_queue(settings: Settings) -> MaskQueue:
    if settings.redis_url:
        return RedisQueue(
            settings.redis_url,
            settings.queue_size,
            settings.job_timeout,
            video_job_timeout=settings.video_job_timeout,
        )
    return EmbeddedQueue(
        settings.workers,
        settings.queue_size,
        settings.job_timeout,
        video_workers=settings.video_workers,
        video_job_timeout=settings.video_job_timeout,
    )


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"
