"""``facemask-worker``: takes masking jobs from Redis and runs them on its own worker pool.

The bot (with ``REDIS_URL`` set) enqueues :data:`~serving.jobs.ARQ_FUNCTION` with a
:class:`~serving.jobs.MaskJob`; this arq worker hands it to a :class:`~serving.pool.WorkerPool`
and sends back what the pool answers, a :class:`~core.results.MaskedPhoto` or a
:class:`~serving.jobs.JobFailure`. Settings come from :class:`~serving.settings.WorkerSettings`
(the environment and ``.env``, as the bot reads them); command-line flags win.

Redis going away is weather, not death: arq's worker loop stops at the first failed command,
so :func:`serve` keeps the model processes and starts a fresh arq worker with backoff until
Redis answers again, logging one line when the outage starts and one when it ends. Any number
of these processes, on any number of machines, can share one Redis: a job carries its picture,
and a running job's claim (arq's in-progress key) is renewed every few seconds instead of
being held for the whole job timeout, so the job of a worker that died goes to another worker
within seconds (arq retries it once).

Videos (:data:`~serving.jobs.ARQ_VIDEO_FUNCTION`) run in the pool's video lane, so photos keep
their processes; a video that finds this machine's video processes busy goes back to the queue
for a moment (arq's ``Retry``) instead of holding a job slot that a photo could use. Its progress
is left in Redis (:data:`~serving.jobs.VIDEO_PROGRESS_KEY` + job id) for the bot to read, and
the bot's Cancel is an arq abort, which stops the video in its model process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving.jobs import (
    ARQ_FUNCTION,
    ARQ_MANY_FUNCTION,
    ARQ_STICKER_FUNCTION,
    ARQ_VIDEO_FUNCTION,
    RESULT_SECONDS,
    VIDEO_PROGRESS_KEY,
    AnyJob,
    JobResult,
    VideoJob,
)
from serving.logs import configure_logging
from serving.pool import WorkerPool
from serving.settings import WorkerSettings, describe_problems

logger = logging.getLogger(__name__)

#: every arq function this worker serves: one photo, several masks on one photo, a sticker
ARQ_FUNCTIONS = (ARQ_FUNCTION, ARQ_MANY_FUNCTION, ARQ_STICKER_FUNCTION)

#: a running job's claim lasts this long unless renewed; a dead worker's job waits at most this
CLAIM_SECONDS = 8.0
CLAIM_RENEW_SECONDS = 2.0
#: reconnection backoff while Redis is away: doubles from the first delay up to the last
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 2.0
#: the heartbeat file is touched this often while Redis answers the worker's polls ...
HEARTBEAT_SECONDS = 5.0
#: ... and ``--healthcheck`` fails once it is older than this (Redis away, or the loop stuck)
HEALTHY_WITHIN_SECONDS = 30.0
#: an arq loop that has not polled Redis for this long is stuck (e.g. a silent network cut)
STALLED_SECONDS = 20.0
#: a video that finds every video process busy is offered again after this long ...
VIDEO_RETRY_SECONDS = 0.5
#: ... as often as it takes (the bot gives up on it after its own deadline)
VIDEO_MAX_TRIES = 10_000
#: a video's progress key outlives a silent bot by this long
PROGRESS_SECONDS = 60


async def mask_photo(ctx: dict[str, Any], job: AnyJob) -> JobResult:
    """The arq job: the same work as the embedded pool, with the same answers."""
    pool: WorkerPool = ctx["pool"]
    progress = None
    if isinstance(job, VideoJob):
        if pool.video_lane_busy:
            from arq import Retry

            raise Retry(defer=VIDEO_RETRY_SECONDS)
        progress = _ProgressWriter(ctx["redis"], ctx["job_id"])
    claim = asyncio.create_task(_hold_claim(ctx["redis"], ctx["job_id"]))
    try:
        # an arq abort (the bot's Cancel) cancels this: the pool stops the video in its process
        return await pool.run(job, progress.report if progress else None)
    finally:
        claim.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await claim
        if progress is not None:
            await asyncio.shield(progress.close())


class _ProgressWriter:
    """Leaves a video job's latest progress (0..1) in Redis for the bot, and removes it after."""

    def __init__(self, redis: Any, job_id: str) -> None:
        self.redis = redis
        self.key = VIDEO_PROGRESS_KEY + job_id
        self.writing: set[asyncio.Task[None]] = set()

    def report(self, fraction: float) -> None:
        task = asyncio.create_task(self._write(fraction))
        self.writing.add(task)  # held until done
        task.add_done_callback(self.writing.discard)

    async def _write(self, fraction: float) -> None:
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError, OSError):  # progress is decoration
            await self.redis.set(self.key, f"{fraction:.3f}", ex=PROGRESS_SECONDS)

    async def close(self) -> None:
        from redis.exceptions import RedisError

        await asyncio.gather(*self.writing, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):  # else it expires by itself
            await self.redis.delete(self.key)


async def _hold_claim(redis: Any, job_id: str) -> None:
    """Keep this job's in-progress key short-lived while we work on it.

    arq sets it for the job timeout plus 10 s (75 s here), longer than a job may wait to start:
    a worker killed mid-job left its job locked until it had expired, unanswered. A short,
    renewed claim lets another worker retry the job within :data:`CLAIM_SECONDS`.
    """
    from arq.constants import in_progress_key_prefix
    from redis.exceptions import RedisError

    key = in_progress_key_prefix + job_id
    while True:
        with contextlib.suppress(RedisError, OSError):  # Redis away: the outer loop says so
            await redis.pexpire(key, int(CLAIM_SECONDS * 1000))
        await asyncio.sleep(CLAIM_RENEW_SECONDS)


def _arq_worker_class() -> type:
    from arq import Worker

    class PollingWorker(Worker):  # type: ignore[misc]
        """arq's worker, remembering when it last polled Redis successfully."""

        first_poll = last_poll = 0.0

        async def heart_beat(self) -> None:  # runs after every successful poll
            await super().heart_beat()
            self.last_poll = time.monotonic()
            self.first_poll = self.first_poll or self.last_poll

    return PollingWorker


def max_jobs_for(settings: WorkerSettings) -> int:
    # as many jobs in hand as processes: a job waiting inside a busy worker could have gone to
    # an idle one on another machine (videos beyond the video processes go back to the queue)
    return settings.workers + settings.video_workers


def create_arq_worker(settings: WorkerSettings, pool: WorkerPool, **options: Any) -> Any:
    """An arq worker serving :data:`ARQ_FUNCTION` with ``pool`` (which outlives it)."""
    from arq import func
    from arq.connections import RedisSettings

    if not settings.redis_url:
        raise ValueError("facemask-worker needs REDIS_URL")
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    redis_settings.conn_retries = 0  # serve() retries, with backoff and one log line
    max_jobs = max_jobs_for(settings)
    arq_settings: dict[str, Any] = {
        # one coroutine for every kind of job: the pool knows each job by its type
        "functions": [
            *(func(mask_photo, name=name, max_tries=2) for name in ARQ_FUNCTIONS),
            func(
                mask_photo,
                name=ARQ_VIDEO_FUNCTION,
                max_tries=VIDEO_MAX_TRIES,
                timeout=settings.video_job_timeout * 2 + 5,
            ),  # fmt: skip
        ],
        "redis_settings": redis_settings,
        "ctx": {"pool": pool},
        "max_jobs": max_jobs,
        # covers waiting for a free process plus the pool's own per-job timeout
        "job_timeout": settings.job_timeout * 2 + 5,
        # a result holds the photo twice (the job's arguments and the masked picture): the bot
        # deletes it as soon as it reads it, and one nobody reads is gone within seconds
        "keep_result": RESULT_SECONDS,
        "poll_delay": 0.05,
        "health_check_interval": 10,
        "log_results": False,  # results are pictures
        "handle_signals": False,  # serve() handles them, across reconnections
        "allow_abort_jobs": True,  # the bot's Cancel button under a video
    }
    return _arq_worker_class()(**{**arq_settings, **options})


class Supervisor:
    """Runs arq workers over one :class:`WorkerPool`, starting a new one whenever Redis fails."""

    def __init__(self, settings: WorkerSettings, pool: WorkerPool) -> None:
        self.settings = settings
        self.pool = pool
        self.worker: Any = None
        self.main: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()
        self.outage_since: float | None = None

    def stop(self, signum: int) -> None:
        logger.info("facemask-worker stopping (%s)", signal.Signals(signum).name)
        self.stopping.set()

    async def run(self) -> None:
        delay = BACKOFF_FIRST
        while not self.stopping.is_set():
            self.worker = create_arq_worker(self.settings, self.pool)
            self.main = main = asyncio.create_task(self.worker.main())
            stop = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
            if main not in done:  # asked to stop: arq re-queues what it has in hand
                main.cancel()
                await self._discard(self.worker, graceful=True)
                break
            stop.cancel()
            error = main.exception() if not main.cancelled() else None
            self._outage(error)
            failed, self.worker = self.worker, None  # its polls say nothing about Redis now
            await self._discard(failed, graceful=False)
            if failed.last_poll:  # it had connected: start the backoff afresh
                delay = BACKOFF_FIRST
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(BACKOFF_MAX, delay * 2)

    def _outage(self, error: BaseException | None) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        expected = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.CancelledError)
        if error is not None and not isinstance(error, expected):
            # a bug, not weather: worth a traceback, and still no reason to stop serving
            logger.error("the job loop failed; starting it again", exc_info=error)
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            why = f"{type(error).__name__}: {error}" if error else "stalled"
            logger.warning("lost Redis (%s); reconnecting with backoff", why)

    def note_progress(self) -> None:
        """Called by the heartbeat: logs the end of an outage once Redis answers again."""
        if self.outage_since is not None and self._polled_within(HEARTBEAT_SECONDS):
            seconds = max(0.0, self.worker.first_poll - self.outage_since)
            logger.warning("Redis is back after %.1f s; taking jobs again", seconds)
            self.outage_since = None

    def _polled_within(self, seconds: float) -> bool:
        worker = self.worker
        return bool(worker and worker.last_poll and time.monotonic() - worker.last_poll < seconds)

    async def _discard(self, worker: Any, *, graceful: bool) -> None:
        """Stop an arq worker's jobs and close its connections, whatever state Redis is in."""
        tasks = list(worker.tasks.values())
        for task in tasks:
            task.cancel()  # arq puts a cancelled job back in the queue when it can
        await asyncio.gather(*tasks, return_exceptions=True)
        if worker._pool is not None:
            if graceful:
                with contextlib.suppress(Exception):
                    await worker.pool.delete(worker.health_check_key)
            with contextlib.suppress(Exception):
                await worker.pool.aclose(close_connection_pool=True)
            worker._pool = None

    async def heartbeat(self, path: Path | None) -> None:
        """Touch ``path`` while Redis answers; restart an arq loop that stopped polling."""
        touched = 0.0
        while True:
            await asyncio.sleep(1.0)
            self.note_progress()
            if self._polled_within(HEARTBEAT_SECONDS * 2):
                if path is not None and time.monotonic() - touched >= HEARTBEAT_SECONDS:
                    path.touch()
                    touched = time.monotonic()
            elif self._polled_within(3600) and not self._polled_within(STALLED_SECONDS):
                if self.main is not None and not self.main.done():
                    logger.warning("the job loop has not reached Redis for a while; restarting it")
                    self.main.cancel()  # run() counts it as an outage and starts a new loop


async def serve(settings: WorkerSettings) -> None:
    """Load the model processes once, then take jobs from Redis until SIGINT or SIGTERM."""
    pool = WorkerPool(
        settings.workers,
        queue_size=max_jobs_for(settings),
        job_timeout=settings.job_timeout,
        video_workers=settings.video_workers,
        video_job_timeout=settings.video_job_timeout,
    )
    await pool.start()
    supervisor = Supervisor(settings, pool)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, supervisor.stop, signum)
    heartbeat = asyncio.create_task(supervisor.heartbeat(settings.heartbeat_file))
    try:
        await supervisor.run()
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await pool.close()


async def check_health(settings: WorkerSettings) -> int:
    """0 if this machine's worker polled Redis lately (its heartbeat file), else 1.

    Without ``HEARTBEAT_FILE``: 0 if Redis answers and some worker recorded its health there.
    """
    path = settings.heartbeat_file
    if path is not None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            print(f"facemask-worker: no heartbeat at {path}", file=sys.stderr)
            return 1
        if age > HEALTHY_WITHIN_SECONDS:
            print(f"facemask-worker: no contact with Redis for {age:.0f} s", file=sys.stderr)
            return 1
        return 0
    from arq.connections import RedisSettings, create_pool
    from arq.constants import default_queue_name, health_check_key_suffix

    assert settings.redis_url
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    redis_settings.conn_retries = 0
    try:
        redis = await create_pool(redis_settings)
    except Exception as error:  # every way of not reaching Redis
        print(f"facemask-worker: cannot reach Redis ({type(error).__name__})", file=sys.stderr)
        return 1
    try:
        alive = await redis.get(default_queue_name + health_check_key_suffix)
    finally:
        await redis.aclose(close_connection_pool=True)
    if not alive:
        print("facemask-worker: no worker has recorded its health in Redis", file=sys.stderr)
    return 0 if alive else 1


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="facemask-worker",
        description="Serve masking jobs from Redis (the bot's REDIS_URL mode). Settings come "
        "from the environment and .env (see .env.example); these flags override them.",
    )
    parser.add_argument("--redis-url", help="Redis to take jobs from (REDIS_URL)")
    parser.add_argument("--workers", type=int, help="model processes on this machine (WORKERS)")
    parser.add_argument(
        "--job-timeout",
        type=float,
        help="seconds one photo may take before its process is replaced (JOB_TIMEOUT)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ... (LOG_LEVEL)")
    parser.add_argument(
        "--healthcheck",
        "--check",
        dest="healthcheck",
        action="store_true",
        help="exit 0 if this worker reached Redis lately (its HEARTBEAT_FILE; without one: "
        "if Redis answers and a worker recorded its health there), else 1",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``facemask-worker``: take jobs from Redis until SIGINT or SIGTERM."""
    args = _parse_args(argv)
    flags = {
        "redis_url": args.redis_url,
        "workers": args.workers,
        "job_timeout": args.job_timeout,
        "log_level": args.log_level,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        settings = WorkerSettings(**given)
    except ValidationError as error:
        print(f"facemask-worker: bad settings: {describe_problems(error)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets())
    if not settings.redis_url:
        print(
            "facemask-worker: set REDIS_URL (or --redis-url), e.g. redis://localhost:6379/0",
            file=sys.stderr,
        )
        return 2
    if args.healthcheck:
        return asyncio.run(check_health(settings))
    logger.info("facemask-worker %d starting %d model processes", os.getpid(), settings.workers)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
