"""The client side of the Redis protocol: jobs into arq's queue, answers back out.

:class:`RedisQueue` is what the bot uses with ``REDIS_URL`` set; :mod:`serving.worker` is the
other side. Both speak :mod:`serving.wire` (msgpack, versioned; never pickle) through arq's
``job_serializer``/``job_deserializer``. Images travel as bytes and results come back to the
asking bot, which deletes each result as soon as it has read it (it holds the photo).

Where arq offers a public way, it is used (``enqueue_job``, ``Job.abort``). Two things have
none, so arq's key layout (``arq.constants``) is read here and in the worker only: reading a
result and deleting it in one transaction (no photo at rest), and the length of the queue for
back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from serving import wire
from serving.jobs import (
    ARQ_FUNCTION,
    ARQ_MANY_FUNCTION,
    ARQ_STICKER_FUNCTION,
    ARQ_VIDEO_FUNCTION,
    VIDEO_PROGRESS_KEY,
    AnyJob,
    JobClient,
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
)
from serving.redis_link import (
    REDIS_TROUBLE,
    Outage,
    create_arq_pool,
    describe,
    wait_for_redis,
    without_password,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: seconds a new job waits for an unreachable Redis before the tap is answered "try again"
REDIS_PATIENCE = 10.0
POLL_SECONDS = 0.05
#: after a Cancel, how long the bot looks for the aborted job's result (it holds the video)
ABORT_CLEANUP_SECONDS = 20.0


class RedisQueue(JobClient):
    """Jobs through Redis (arq) to ``facemask-worker`` processes.

    At start it waits for Redis, with backoff and one log line per try. Afterwards Redis
    trouble is weather: a command that fails is tried again with backoff for a few seconds
    (:data:`REDIS_PATIENCE`), then the tap is answered with
    :class:`~serving.jobs.WorkerUnreachableError` ("try again in a minute"). A job whose
    result vanished (Redis restarted without its data) is sent once more, then answered with
    :class:`~serving.jobs.JobLostError` ("tap again"). An answer that cannot be read (another
    release's format, garbage) is logged in one line and answered as a failed job.
    """

    def __init__(
        self, redis_url: str, queue_size: int, job_timeout: float, video_job_timeout: float = 180.0
    ) -> None:
        self.redis_url = redis_url
        self.queue_size = queue_size
        self.job_timeout = job_timeout
        self.video_job_timeout = video_job_timeout
        self._redis: Any = None
        self._outage = Outage(logger, "jobs wait for it a few seconds", "sending jobs again")
        self._cleanups: set[asyncio.Task[None]] = set()  # aborted jobs being cleared away

    async def start(self) -> None:
        self._redis = await wait_for_redis(
            lambda: create_arq_pool(self.redis_url), "the bot's job queue", logger
        )
        logger.info("sending jobs through Redis at %s", without_password(self.redis_url))

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
            self._outage.lost(error)
            return False
        self._outage.back()
        return True

    async def submit(self, job: AnyJob, progress: ProgressReport | None = None) -> object:
        """``job`` through Redis to the arq function that runs its kind."""
        if isinstance(job, VideoJob):
            timeout = job.timeout(self.job_timeout, self.video_job_timeout)
            return await self._run(ARQ_VIDEO_FUNCTION, job, progress, timeout)
        function = {
            MaskJob: ARQ_FUNCTION,
            ManyMasksJob: ARQ_MANY_FUNCTION,
            StickerJob: ARQ_STICKER_FUNCTION,
        }[type(job)]
        return await self._run(function, job, progress)

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
            queued = await self._enqueue(job, function, timeout)
            try:
                result = await self._result(queued.job_id, deadline, progress)
            except asyncio.CancelledError:
                task = asyncio.create_task(self._abort(queued))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)
                raise
            except _ResultLost:
                if attempt == 2 or time.monotonic() > deadline:
                    raise JobLostError() from None
                logger.warning(
                    "job %s vanished from Redis (restarted?); sending it again", queued.job_id
                )
                continue
            return result
        raise AssertionError("unreachable")

    async def _enqueue(
        self, job: AnyJob, function: str = ARQ_FUNCTION, timeout: float | None = None
    ) -> Any:
        """Put ``job`` in the shared queue (refusing while it is full); arq's ``Job``."""
        from arq.constants import job_key_prefix

        async def enqueue() -> Any:
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
            return queued

        return await self._patiently(enqueue, time.monotonic() + REDIS_PATIENCE)

    async def _result(
        self, job_id: str, deadline: float, progress: ProgressReport | None = None
    ) -> object:
        """The job's result (deleted from Redis once read), waiting until ``deadline``; the
        worker's progress reports (a video's) go to ``progress`` as they change."""
        from arq.constants import result_key_prefix

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
        try:
            success, answer = wire.read_result(stored)
        except wire.WireFormatError as error:
            logger.error("refused the answer to job %s: %s", job_id, error)
            raise WorkerFailedError() from None
        if success:
            return answer
        if isinstance(answer, wire.RemoteError) and answer.name in _REFUSALS:
            logger.error("the worker refused job %s: %s", job_id, answer)
        elif isinstance(answer, wire.RemoteError) and "expired" in str(answer):
            # arq dropped it unstarted: the workers were too busy to start it in time
            raise WorkerBusyError()
        else:
            logger.warning("job %s failed in the worker: %r", job_id, answer)
        raise WorkerFailedError()

    async def _abort(self, queued: Any) -> None:
        """Abort a job the bot no longer waits for (arq stops it in the worker), then delete
        what it leaves in Redis: its result holds the video."""
        from arq.constants import result_key_prefix

        job_id = queued.job_id
        try:
            # arq's own abort: marks the job, then waits for the worker to record it stopped
            await queued.abort(timeout=ABORT_CLEANUP_SECONDS, poll_delay=POLL_SECONDS * 4)
        except (*REDIS_TROUBLE, TimeoutError, wire.WireFormatError) as error:
            # its result expires within RESULT_SECONDS anyway
            logger.info("could not see aborted job %s stop: %s", job_id, describe(error))
        except Exception:  # noqa: BLE001 - Job.abort raises the job's recorded failure
            pass
        with contextlib.suppress(*REDIS_TROUBLE):
            await self._redis.delete(result_key_prefix + job_id, VIDEO_PROGRESS_KEY + job_id)
        logger.info("job %s aborted", job_id)

    async def _patiently(self, command: Callable[[], Awaitable[T]], deadline: float) -> T:
        """``command()``, tried again with backoff while Redis is away, until ``deadline``."""
        delay = 0.1
        while True:
            try:
                value = await command()
            except REDIS_TROUBLE as error:
                self._outage.lost(error)
                if time.monotonic() + delay > deadline:
                    raise WorkerUnreachableError() from None
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            self._outage.back()
            return value


#: the names a worker's refusal of our message is recorded under (serving.wire)
_REFUSALS = frozenset({wire.WireFormatError.__name__, wire.WireVersionError.__name__})


class _ResultLost(Exception):
    """A job that is neither finished nor waiting in Redis (Redis restarted without it)."""
