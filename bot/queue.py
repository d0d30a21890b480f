"""How the bot reaches the inference workers: one interface, two backends.

- :class:`EmbeddedQueue` (``REDIS_URL`` unset): worker processes started next to the bot.
- :class:`~serving.redis_queue.RedisQueue` (``REDIS_URL`` set): jobs go through Redis to
  ``facemask-worker`` processes on any machine; the Redis protocol's client side lives in
  serving, next to the worker side.

Both answer :meth:`MaskQueue.mask_photo` with a :class:`~core.results.MaskedPhoto` or raise a
:class:`~core.errors.FaceMaskError` (``bot.texts.error_text`` says it to the user).
:meth:`MaskQueue.mask_video` answers with a :class:`~core.results.MaskedVideo`, reports progress
on the way, and stops the job in its worker when the awaiting task is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import Settings
from serving.jobs import AnyJob, JobClient, ProgressReport
from serving.redis_queue import RedisQueue

if TYPE_CHECKING:
    from serving.pool import WorkerPool

__all__ = ["EmbeddedQueue", "MaskQueue", "RedisQueue", "create_queue"]


#: what the bot holds: the calls of :class:`serving.jobs.JobClient`, by either backend
MaskQueue = JobClient


class EmbeddedQueue(JobClient):
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

    async def submit(self, job: AnyJob, progress: ProgressReport | None = None) -> object:
        return await self.pool.run(job, progress)

    async def healthy(self) -> bool:
        return bool(self.pool.pids)


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
