"""``facemask-worker``: takes masking jobs from Redis and runs them on its own worker pool.

The bot (with ``REDIS_URL`` set) enqueues :data:`~serving.jobs.ARQ_FUNCTION` with a
:class:`~serving.jobs.MaskJob`; this arq worker hands it to a :class:`~serving.pool.WorkerPool`
and sends back what the pool answers, a :class:`~core.results.MaskedPhoto` or a
:class:`~serving.jobs.JobFailure`. Settings come from :class:`~serving.settings.WorkerSettings`
(the environment and ``.env``, as the bot reads them); command-line flags win.

Jobs and results cross Redis in :mod:`serving.wire` (msgpack, versioned), never as pickles: a
message this worker cannot read (another release's, garbage) is refused in one log line and
recorded as the job's failure, and the worker takes the next job. A wrong password in
``REDIS_URL`` stops it at once, in one line, before the model is loaded.

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

from serving import wire
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
from serving.redis_link import (
    REDIS_TROUBLE,
    Outage,
    arq_settings,
    describe,
    is_outage,
    password_refused,
    without_password,
)
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


async def run_job(ctx: dict[str, Any], job: AnyJob) -> JobResult:
    """The arq job behind every function name this worker serves (a photo, several masks, a
    sticker, a video): the same work as the embedded pool, with the same answers. The names
    stay those the bot enqueues (serving.jobs.ARQ_*); only this coroutine is shared."""
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

        with contextlib.suppress(RedisError, *REDIS_TROUBLE):  # progress is decoration
            await self.redis.set(self.key, f"{fraction:.3f}", ex=PROGRESS_SECONDS)

    async def close(self) -> None:
        from redis.exceptions import RedisError

        await asyncio.gather(*self.writing, return_exceptions=True)
        with contextlib.suppress(RedisError, *REDIS_TROUBLE):  # else it expires by itself
            await self.redis.delete(self.key)


async def _hold_claim(redis: Any, job_id: str) -> None:
    """Keep this job's in-progress key short-lived while we work on it.

    arq sets it for the job timeout plus 10 s (75 s here), longer than a job may wait to start:
    a worker killed mid-job left its job locked until it had expired, unanswered. A short,
    renewed claim lets another worker retry the job within :data:`CLAIM_SECONDS`.
    """
    from arq.constants import in_progress_key_prefix
    from redis.exceptions import RedisError

    key = in_progress_key_prefix + job_id  # arq has no public way to renew a claim
    while True:
        with contextlib.suppress(RedisError, *REDIS_TROUBLE):  # away: the outer loop says so
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

        async def start_jobs(self, job_ids: list[bytes]) -> None:
            # arq reads each queued id as text: one that is not (garbage written into the
            # queue) would stop the job loop at every poll, so it is taken out, in one line
            readable = []
            for job_id in job_ids:
                try:
                    job_id.decode()
                except UnicodeDecodeError:
                    logger.warning("refused a job id that is not text: %r", job_id[:40])
                    await self.pool.zrem(self.queue_name, job_id)
                else:
                    readable.append(job_id)
            await super().start_jobs(readable)

    return PollingWorker


class _RefusalInOneLine(logging.Filter):
    """arq logs a job it cannot read with a traceback; a refused message (serving.wire) is
    expected weather, worth one line that says why, not a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        refusal = wire.refusal_in(error) if error is not None else None
        if refusal is not None:
            job_id = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "refused job %s: %s", (job_id, refusal)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _log_refusals_in_one_line() -> None:
    arq_logger = logging.getLogger("arq.worker")
    if not any(isinstance(f, _RefusalInOneLine) for f in arq_logger.filters):
        arq_logger.addFilter(_RefusalInOneLine())


def max_jobs_for(settings: WorkerSettings) -> int:
    # as many jobs in hand as processes: a job waiting inside a busy worker could have gone to
    # an idle one on another machine (videos beyond the video processes go back to the queue)
    return settings.workers + settings.video_workers


def create_arq_worker(settings: WorkerSettings, pool: WorkerPool, **options: Any) -> Any:
    """An arq worker serving every ``ARQ_*`` function name with :func:`run_job` on ``pool``
    (which outlives it)."""
    from arq import func

    if not settings.redis_url:
        raise ValueError("facemask-worker needs REDIS_URL")
    _log_refusals_in_one_line()
    # serve() retries, with backoff and one log line
    redis_settings = arq_settings(settings.redis_url, conn_timeout=1)
    max_jobs = max_jobs_for(settings)
    chosen: dict[str, Any] = {
        # one coroutine for every kind of job: the pool knows each job by its type
        "functions": [
            *(func(run_job, name=name, max_tries=2) for name in ARQ_FUNCTIONS),
            func(
                run_job,
                name=ARQ_VIDEO_FUNCTION,
                max_tries=VIDEO_MAX_TRIES,
                timeout=settings.video_job_timeout * 2 + 5,
            ),  # fmt: skip
        ],
        "redis_settings": redis_settings,
        # the wire format both ways: arq's envelope and our jobs as msgpack, never pickle
        "job_serializer": wire.serialize,
        "job_deserializer": wire.deserialize_job,
        "ctx": {"pool": pool},
        "max_jobs": max_jobs,
        # covers waiting for a free process plus the pool's own per-job timeout
        "job_timeout": settings.job_timeout * 2 + 5,
        # a result holds the masked photo (serving.wire leaves the job's out): the bot deletes
        # it as soon as it reads it, and one nobody reads is gone within seconds
        "keep_result": RESULT_SECONDS,
        "poll_delay": 0.05,
        "health_check_interval": 10,
        "log_results": False,  # results are pictures
        "handle_signals": False,  # serve() handles them, across reconnections
        "allow_abort_jobs": True,  # the bot's Cancel button under a video
    }
    return _arq_worker_class()(**{**chosen, **options})


class Supervisor:
    """Runs arq workers over one :class:`WorkerPool`, starting a new one whenever Redis fails."""

    def __init__(self, settings: WorkerSettings, pool: WorkerPool) -> None:
        self.settings = settings
        self.pool = pool
        self.worker: Any = None
        self.main: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()
        self.outage = Outage(logger, "reconnecting with backoff", "taking jobs again")
        #: Redis refused REDIS_URL's password: the worker stops (a restart will not fix it)
        self.refused = False

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
        if error is not None and password_refused(error):
            logger.error("%s; facemask-worker stops", describe(error))
            self.refused = True
            self.stopping.set()
            return
        if error is not None and not (
            isinstance(error, asyncio.CancelledError) or is_outage(error)
        ):
            # a bug, not weather: worth a traceback, and still no reason to stop serving
            logger.error("the job loop failed; starting it again", exc_info=error)
        self.outage.lost(error)

    def note_progress(self) -> None:
        """Called by the heartbeat: logs the end of an outage once Redis answers again."""
        if self.outage.active and self._polled_within(HEARTBEAT_SECONDS):
            self.outage.back(at=self.worker.first_poll)

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


async def password_accepted(settings: WorkerSettings) -> bool:
    """False (said in one log line) if Redis turns REDIS_URL's password away; True if it
    takes it, or cannot be reached now (serve() waits for it)."""
    from redis.asyncio import Redis

    assert settings.redis_url
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except REDIS_TROUBLE as error:
        if password_refused(error):
            logger.error(
                "%s at %s; facemask-worker stops",
                describe(error), without_password(settings.redis_url),
            )  # fmt: skip
            return False
    finally:
        with contextlib.suppress(*REDIS_TROUBLE):
            await client.aclose()
    return True


async def serve(settings: WorkerSettings) -> int:
    """Load the model processes once, then take jobs from Redis until SIGINT or SIGTERM; the
    exit status (2: Redis refused the password)."""
    if not await password_accepted(settings):  # before the minutes of loading the model
        return 2
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
    return 2 if supervisor.refused else 0


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
    from arq.connections import create_pool
    from arq.constants import default_queue_name, health_check_key_suffix

    assert settings.redis_url
    try:
        redis = await create_pool(arq_settings(settings.redis_url, conn_timeout=1))
    except Exception as error:  # every way of not reaching Redis
        reason = describe(error) if password_refused(error) else type(error).__name__
        print(f"facemask-worker: cannot reach Redis ({reason})", file=sys.stderr)
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
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
