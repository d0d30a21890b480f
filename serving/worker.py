"""The inference worker: processes that each load the keypoint model once and mask photos.

One job, ``mask_photo(image, mask_id, crop)``, reachable two ways:

- embedded: :class:`WorkerPool` keeps ``workers`` child processes next to the caller (the bot)
  and feeds them from a bounded queue;
- Redis: ``facemask-worker`` runs an arq worker on any machine that reaches Redis; it takes the
  same job from Redis and hands it to its own :class:`WorkerPool`.

Results cross every process and network boundary as plain data (a dict of str, int, float and
bytes), never as exceptions or tracebacks: :func:`read_result` turns them back into a
:class:`MaskedPhoto` or raises the matching :class:`~core.errors.FaceMaskError`.

This module must stay importable without torch: the model is loaded inside the child processes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from core.errors import FaceMaskError
from core.results import Mode

logger = logging.getLogger(__name__)

#: the arq function name the bot enqueues and ``facemask-worker`` serves
ARQ_FUNCTION = "mask_photo"

JobResult = dict[str, Any]
JobFunction = Callable[..., JobResult]


class WorkerBusyError(FaceMaskError):
    """I'm busy with a lot of photos right now. Please try again in a minute."""

    code = "busy"


class WorkerTimeoutError(FaceMaskError):
    """That photo took too long to process. Please try again, or send a smaller photo."""

    code = "timeout"


class WorkerFailedError(FaceMaskError):
    """Something went wrong while masking that photo. Please try again."""

    code = "worker_failed"


class ImageBytes(bytes):
    """A photo's bytes that log as their size: job queues log their arguments."""

    def __repr__(self) -> str:
        return f"<image, {len(self)} bytes>"


@dataclass(frozen=True)
class MaskedPhoto:
    """A finished job: the encoded picture and what the bot needs to caption it."""

    image: bytes
    format: str
    width: int
    height: int
    faces: int
    ms: float


def failure(error: FaceMaskError) -> JobResult:
    """The plain-data form of an error, safe to pickle, send through Redis or log."""
    return {"ok": False, "code": error.code, "message": str(error)}


def error_from_data(code: str, message: str) -> FaceMaskError:
    """Rebuild the error class that ``code`` names, so callers can still use ``isinstance``."""
    error_class = _error_classes().get(code)
    if error_class is None:
        error = FaceMaskError(message)
        error.code = code
        return error
    return error_class(message)


def read_result(data: JobResult) -> MaskedPhoto:
    """A job's data as a :class:`MaskedPhoto`, or raise the :class:`FaceMaskError` it carries."""
    if not data.get("ok"):
        raise error_from_data(str(data.get("code", "error")), str(data.get("message", "")))
    return MaskedPhoto(
        image=bytes(data["image"]),
        format=str(data["format"]),
        width=int(data["width"]),
        height=int(data["height"]),
        faces=int(data["faces"]),
        ms=float(data["ms"]),
    )


def _error_classes() -> dict[str, type[FaceMaskError]]:
    classes: dict[str, type[FaceMaskError]] = {}
    pending: list[type[FaceMaskError]] = [FaceMaskError]
    while pending:
        error_class = pending.pop()
        classes.setdefault(error_class.code, error_class)
        pending.extend(error_class.__subclasses__())
    return classes


# --------------------------------------------------------------------------------------------
# what runs inside a worker process


def run_mask_job(masker: Any, image: bytes, mask_id: int, crop: bool) -> JobResult:
    """Mask one photo with an already loaded ``core.api.FaceMasker``; errors become data."""
    try:
        result = masker.apply(image, mask_id, Mode.from_crop(crop))
    except FaceMaskError as error:
        return failure(error)
    except Exception:  # a bug, not the user's fault: log it here, send only a sentence back
        logger.exception("masking a photo failed (mask %s, crop %s)", mask_id, crop)
        return failure(WorkerFailedError())
    return {
        "ok": True,
        "image": result.image,
        "format": result.format,
        "width": result.width,
        "height": result.height,
        "faces": len(result.faces),
        "ms": result.ms,
    }


def load_mask_job(threads: int = 1) -> JobFunction:
    """Load the model once (runs in the worker process) and return the job that uses it."""
    import cv2
    import torch

    from core.api import FaceMasker

    # each process gets its share of the cores instead of every process fighting for all
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    started = time.perf_counter()
    masker = FaceMasker()
    logger.info("worker %d loaded the model in %.1f s", os.getpid(), time.perf_counter() - started)
    return functools.partial(run_mask_job, masker)


def _answer_with(result: JobResult, *args: Any) -> JobResult:
    return result


def _child_main(conn: Connection, setup: Callable[[], JobFunction], log_level: int) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        job = setup()
    except Exception as error:
        # answer every job with the reason rather than dying and being restarted forever
        logger.exception("worker %d could not load the model", os.getpid())
        # the class's own sentence: the details (paths) are for the log, not for users
        reason = type(error)() if isinstance(error, FaceMaskError) else WorkerFailedError()
        job = functools.partial(_answer_with, failure(reason))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if args is None:
            return
        conn.send(job(*args))


# --------------------------------------------------------------------------------------------
# the pool, in the caller's process


class _WorkerDied(Exception):
    pass


class _Worker:
    """One child process and the pipe to it; every call on it blocks, so run them in a thread."""

    def __init__(self, name: str, setup: Callable[[], JobFunction], log_level: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=_child_main, args=(child_conn, setup, log_level), name=name, daemon=True
        )
        self.process.start()
        child_conn.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            raise _WorkerDied(f"{self.process.name} did not load the model in {timeout:.0f} s")
        try:
            self.conn.recv()
        except (EOFError, OSError) as error:
            raise _WorkerDied(f"{self.process.name} exited while starting") from error

    def call(self, args: tuple[Any, ...]) -> JobResult:
        try:
            self.conn.send(args)
            return self.conn.recv()
        except (EOFError, OSError) as error:
            raise _WorkerDied(str(error) or type(error).__name__) from error

    def stop(self, grace: float = 0.0) -> None:
        if grace and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


@dataclass
class _Job:
    args: tuple[Any, ...]
    future: asyncio.Future[JobResult]


class WorkerPool:
    """``workers`` processes behind a bounded queue, each loading the model once.

    :meth:`run` never raises for anything a job can go through: a full queue, a job over
    ``job_timeout`` seconds (its process is killed and replaced), or a process that dies
    (replaced; the job is retried once on the new process) all come back as error data.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        queue_size: int = 32,
        job_timeout: float = 30.0,
        start_timeout: float = 180.0,
        setup: Callable[[], JobFunction] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.workers = workers
        self.queue_size = queue_size
        self.job_timeout = job_timeout
        self.start_timeout = start_timeout
        threads = max(1, (os.cpu_count() or 1) // workers)
        self._setup = setup or functools.partial(load_mask_job, threads)
        self._log_level = logging.getLogger().getEffectiveLevel()
        self._names = (f"facemask-worker-{n}" for n in itertools.count(1))
        self._slots: list[_Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[_Job] | None = None
        # one thread per worker waits on its pipe, so the event loop never blocks
        self._threads = ThreadPoolExecutor(
            max_workers=workers * 2, thread_name_prefix="facemask-pipe"
        )

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (for health checks and tests)."""
        return [slot.pid for slot in self._slots if slot.pid is not None]

    @property
    def pending(self) -> int:
        """Jobs waiting for a free worker."""
        return self._queue.qsize() if self._queue else 0

    async def start(self) -> None:
        """Start every worker and wait until each has loaded the model."""
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        spawned = await asyncio.gather(
            *(self._spawn() for _ in range(self.workers)), return_exceptions=True
        )
        self._slots = [worker for worker in spawned if isinstance(worker, _Worker)]
        errors = [error for error in spawned if isinstance(error, BaseException)]
        if errors:
            await self.close()
            raise RuntimeError(f"inference workers did not start: {errors[0]}")
        self._tasks = [asyncio.create_task(self._serve(i)) for i in range(self.workers)]
        logger.info("%d inference workers ready (pids %s)", self.workers, self.pids)

    async def close(self) -> None:
        """Stop taking jobs, answer the waiting ones, and stop the processes."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_result(failure(WorkerFailedError("The bot is restarting.")))
            self._queue = None
        await asyncio.gather(*(asyncio.to_thread(slot.stop, 2.0) for slot in self._slots))
        self._slots = []
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def run(self, *args: Any) -> JobResult:
        """Run one job, e.g. ``run(image, mask_id, crop)``; always returns result data."""
        if self._queue is None:
            return failure(WorkerFailedError("The inference workers are not running."))
        job = _Job(args, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            return failure(WorkerBusyError())
        return await job.future

    async def _spawn(self) -> _Worker:
        worker = _Worker(next(self._names), self._setup, self._log_level)
        try:
            await self._in_thread(worker.wait_ready, self.start_timeout)
        except BaseException:
            await asyncio.to_thread(worker.stop)
            raise
        return worker

    async def _replace(self, index: int) -> None:
        """Replace a dead or stuck worker; back off while replacements keep failing."""
        await asyncio.to_thread(self._slots[index].stop)
        for attempt in itertools.count():
            try:
                self._slots[index] = await self._spawn()
                logger.info("replacement worker %s started", self._slots[index].pid)
                return
            except _WorkerDied as error:
                delay = min(30.0, 2.0**attempt)
                logger.error("could not start a worker (%s); retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)

    async def _serve(self, index: int) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            if job.future.done():  # the caller stopped waiting
                continue
            try:
                if not self._slots[index].process.is_alive():
                    await self._replace(index)
                result = await self._run_job(index, job)
            except asyncio.CancelledError:  # closing: still answer the job in hand
                if not job.future.done():
                    job.future.set_result(failure(WorkerFailedError("The bot is restarting.")))
                raise
            if not job.future.done():
                job.future.set_result(result)

    async def _run_job(self, index: int, job: _Job) -> JobResult:
        for attempt in (1, 2):
            worker = self._slots[index]
            try:
                return await asyncio.wait_for(
                    self._in_thread(worker.call, job.args), self.job_timeout
                )
            except TimeoutError:
                logger.warning(
                    "worker %s took over %.0f s on a job; replacing it",
                    worker.pid,
                    self.job_timeout,
                )
                await self._replace(index)
                return failure(WorkerTimeoutError())
            except _WorkerDied:
                worker.process.join(1)
                logger.warning(
                    "worker %s died during a job (exit code %s); replacing it%s",
                    worker.pid,
                    worker.process.exitcode,
                    ", retrying the job" if attempt == 1 else "",
                )
                await self._replace(index)
        return failure(WorkerFailedError())

    def _in_thread(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._threads, function, *args)


# --------------------------------------------------------------------------------------------
# Redis mode: the arq worker behind ``facemask-worker``


async def mask_photo(ctx: dict[str, Any], image: bytes, mask_id: int, crop: bool) -> JobResult:
    """The arq job: the same work as the embedded pool, answered as plain data."""
    pool: WorkerPool = ctx["pool"]
    return await pool.run(image, mask_id, crop)


async def _arq_startup(ctx: dict[str, Any]) -> None:
    pool = WorkerPool(ctx["workers"], queue_size=ctx["max_jobs"], job_timeout=ctx["job_timeout"])
    await pool.start()
    ctx["pool"] = pool


async def _arq_shutdown(ctx: dict[str, Any]) -> None:
    if "pool" in ctx:
        await ctx["pool"].close()


def create_arq_worker(
    redis_url: str, *, workers: int = 2, job_timeout: float = 30.0, **options: Any
) -> Any:
    """An ``arq.Worker`` serving :data:`ARQ_FUNCTION` with its own :class:`WorkerPool`."""
    from arq import Worker, func
    from arq.connections import RedisSettings

    max_jobs = workers * 2  # enough to keep every process busy while results travel back
    settings: dict[str, Any] = {
        "functions": [func(mask_photo, name=ARQ_FUNCTION, max_tries=2)],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "on_startup": _arq_startup,
        "on_shutdown": _arq_shutdown,
        "ctx": {"workers": workers, "job_timeout": job_timeout, "max_jobs": max_jobs},
        "max_jobs": max_jobs,
        # covers waiting for a free process plus the pool's own per-job timeout
        "job_timeout": job_timeout * 2 + 5,
        "keep_result": 60,
        "poll_delay": 0.05,
        "health_check_interval": 30,
        "log_results": False,  # results are pictures
    }
    return Worker(**{**settings, **options})


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="facemask-worker",
        description="Serve masking jobs from Redis (the bot's REDIS_URL mode).",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="Redis to take jobs from (default: $REDIS_URL)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS", "2")),
        help="model processes on this machine (default: $WORKERS or 2)",
    )
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=float(os.environ.get("JOB_TIMEOUT", "30")),
        help="seconds one photo may take before its process is replaced (default: 30)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 0 if a worker is alive on this Redis, else 1"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``facemask-worker``: run an arq worker until SIGINT or SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.redis_url:
        print(
            "facemask-worker: set REDIS_URL (or --redis-url), e.g. redis://localhost:6379/0",
            file=sys.stderr,
        )
        return 2
    if args.check:
        from arq.connections import RedisSettings
        from arq.worker import async_check_health

        return asyncio.run(async_check_health(RedisSettings.from_dsn(args.redis_url)))
    worker = create_arq_worker(args.redis_url, workers=args.workers, job_timeout=args.job_timeout)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
