"""How the bot reaches the inference workers: one interface, two backends.

- :class:`EmbeddedQueue` (``REDIS_URL`` unset): worker processes started next to the bot.
- :class:`RedisQueue` (``REDIS_URL`` set): jobs go through Redis to ``facemask-worker``
  processes on any machine; images travel as bytes and results come back to this bot.

Both answer :meth:`MaskQueue.mask_photo` with a :class:`~core.results.MaskedPhoto` or raise a
:class:`~core.errors.FaceMaskError` (``bot.texts.error_text`` says it to the user).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from bot.settings import Settings
from core.results import MaskedPhoto, Mode
from serving.jobs import (
    ARQ_FUNCTION,
    MaskJob,
    WorkerBusyError,
    WorkerFailedError,
    WorkerStoppedError,
    WorkerTimeoutError,
    read_result,
)

if TYPE_CHECKING:
    from serving.pool import WorkerPool

logger = logging.getLogger(__name__)


class MaskQueue(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def mask_photo(self, image: bytes, mask_id: int, mode: Mode) -> MaskedPhoto: ...


class EmbeddedQueue:
    """Worker processes owned by the bot process."""

    def __init__(self, workers: int, queue_size: int, job_timeout: float) -> None:
        # imported here: the pool is the bot's only way towards the model, and only this mode
        # needs it
        from serving.pool import WorkerPool

        self.pool: WorkerPool = WorkerPool(workers, queue_size=queue_size, job_timeout=job_timeout)

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def mask_photo(self, image: bytes, mask_id: int, mode: Mode) -> MaskedPhoto:
        return read_result(await self.pool.run(MaskJob(image, mask_id, mode)))


class RedisQueue:
    """Jobs through Redis (arq) to ``facemask-worker`` processes."""

    def __init__(self, redis_url: str, queue_size: int, job_timeout: float) -> None:
        self.redis_url = redis_url
        self.queue_size = queue_size
        self.job_timeout = job_timeout
        self._redis = None

    async def start(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self._redis = await create_pool(RedisSettings.from_dsn(self.redis_url))
        logger.info("sending jobs through Redis at %s", _without_password(self.redis_url))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def mask_photo(self, image: bytes, mask_id: int, mode: Mode) -> MaskedPhoto:
        if self._redis is None:
            raise WorkerStoppedError()
        # back-pressure: refuse new work while the shared queue is full
        if await self._redis.zcard(self._redis.default_queue_name) >= self.queue_size:
            raise WorkerBusyError()
        # a job nobody has started within job_timeout is dropped: its answer would come too late
        job = await self._redis.enqueue_job(
            ARQ_FUNCTION, MaskJob(image, mask_id, mode), _expires=self.job_timeout
        )
        if job is None:  # only when a job id is reused, which we never do
            raise WorkerFailedError()
        try:
            result = await job.result(timeout=self.job_timeout * 2, poll_delay=0.05)
        except TimeoutError as error:
            raise WorkerTimeoutError() from error
        except Exception as error:  # the worker side failed; say so, log why
            logger.warning("job %s failed in the worker: %r", job.job_id, error)
            raise WorkerFailedError() from error
        return read_result(result)


def create_queue(settings: Settings) -> MaskQueue:
    if settings.redis_url:
        return RedisQueue(settings.redis_url, settings.queue_size, settings.job_timeout)
    return EmbeddedQueue(settings.workers, settings.queue_size, settings.job_timeout)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"
