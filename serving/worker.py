"""``facemask-worker``: takes masking jobs from Redis and runs them on its own worker pool.

The bot (with ``REDIS_URL`` set) enqueues :data:`~serving.jobs.ARQ_FUNCTION` with a
:class:`~serving.jobs.MaskJob`; this arq worker hands it to a :class:`~serving.pool.WorkerPool`
and sends back what the pool answers, a :class:`~core.results.MaskedPhoto` or a
:class:`~serving.jobs.JobFailure`. Settings come from :class:`~serving.settings.WorkerSettings`
(the environment and ``.env``, as the bot reads them); command-line flags win.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from pydantic import ValidationError

from serving.jobs import ARQ_FUNCTION, JobResult, MaskJob
from serving.logs import configure_logging
from serving.pool import WorkerPool
from serving.settings import WorkerSettings, describe_problems

logger = logging.getLogger(__name__)


async def mask_photo(ctx: dict[str, Any], job: MaskJob) -> JobResult:
    """The arq job: the same work as the embedded pool, with the same answers."""
    pool: WorkerPool = ctx["pool"]
    return await pool.run(job)


async def _startup(ctx: dict[str, Any]) -> None:
    pool = WorkerPool(ctx["workers"], queue_size=ctx["max_jobs"], job_timeout=ctx["job_timeout"])
    await pool.start()
    ctx["pool"] = pool


async def _shutdown(ctx: dict[str, Any]) -> None:
    if "pool" in ctx:
        await ctx["pool"].close()


def create_arq_worker(settings: WorkerSettings, **options: Any) -> Any:
    """An ``arq.Worker`` serving :data:`ARQ_FUNCTION` with its own :class:`WorkerPool`."""
    from arq import Worker, func
    from arq.connections import RedisSettings

    if not settings.redis_url:
        raise ValueError("facemask-worker needs REDIS_URL")
    # enough jobs in hand to keep every process busy while results travel back
    max_jobs = settings.workers * 2
    arq_settings: dict[str, Any] = {
        "functions": [func(mask_photo, name=ARQ_FUNCTION, max_tries=2)],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "ctx": {
            "workers": settings.workers,
            "job_timeout": settings.job_timeout,
            "max_jobs": max_jobs,
        },
        "max_jobs": max_jobs,
        # covers waiting for a free process plus the pool's own per-job timeout
        "job_timeout": settings.job_timeout * 2 + 5,
        "keep_result": 60,
        "poll_delay": 0.05,
        "health_check_interval": 30,
        "log_results": False,  # results are pictures
    }
    return Worker(**{**arq_settings, **options})


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
        "--check", action="store_true", help="exit 0 if a worker is alive on this Redis, else 1"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``facemask-worker``: run an arq worker until SIGINT or SIGTERM."""
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
    if args.check:
        from arq.connections import RedisSettings
        from arq.worker import async_check_health

        return asyncio.run(async_check_health(RedisSettings.from_dsn(settings.redis_url)))
    create_arq_worker(settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
