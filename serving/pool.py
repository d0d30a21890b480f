"""Worker processes that each load the keypoint model once and mask photos.

:class:`WorkerPool` keeps ``workers`` child processes next to its caller (the bot in embedded
mode, or ``facemask-worker``) and feeds them :class:`~serving.jobs.MaskJob` s from a bounded
queue. Every job gets an answer: a :class:`~core.results.MaskedPhoto` or a
:class:`~serving.jobs.JobFailure`, never an exception.

Importing this module does not import torch: the model is loaded inside the child processes.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from core.errors import FaceMaskError
from serving.jobs import (
    AnyJob,
    JobFailure,
    JobResult,
    ManyMasksJob,
    StickerJob,
    WorkerBusyError,
    WorkerFailedError,
    WorkerStoppedError,
    WorkerTimeoutError,
)
from serving.logs import configure_logging, current_secrets

logger = logging.getLogger(__name__)

JobFunction = Callable[[AnyJob], JobResult]
Setup = Callable[[], JobFunction]

# --------------------------------------------------------------------------------------------
# what runs inside a worker process


def run_mask_job(masker: Any, job: AnyJob) -> JobResult:
    """Run one job with an already loaded ``core.api.FaceMasker``; errors become data."""
    try:
        if isinstance(job, ManyMasksJob):
            return masker.apply_many(job.image, job.mask_ids, job.mode)
        if isinstance(job, StickerJob):
            return masker.sticker(job.image, job.mode, job.mask_id)
        return masker.apply(job.image, job.mask_id, job.mode)
    except FaceMaskError as error:
        return JobFailure.of(error)
    except Exception:  # a bug, not the user's fault: log it here, send only a code back
        logger.exception("masking a photo failed (%r)", job)
        return JobFailure.of(WorkerFailedError())


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


def _answer_with(failure: JobFailure, job: AnyJob) -> JobResult:
    return failure


def _child_main(conn: Connection, setup: Setup, log_level: int, secrets: list[str]) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(log_level, secrets)
    try:
        job_function = setup()
    except Exception as error:
        # answer every job with the reason rather than dying and being restarted forever
        logger.exception("worker %d could not load the model", os.getpid())
        # the class's own sentence: the details (paths) are for the log, not for users
        reason = type(error)() if isinstance(error, FaceMaskError) else WorkerFailedError()
        job_function = functools.partial(_answer_with, JobFailure.of(reason))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if job is None:
            return
        result = job_function(job)
        try:
            conn.send(result)
        except OSError:  # BrokenPipeError: the parent died while we worked; nobody to answer
            return


# --------------------------------------------------------------------------------------------
# the pool, in the caller's process


class _WorkerDied(Exception):
    pass


class _Worker:
    """One child process and the pipe to it; every call on it blocks, so run them in a thread."""

    def __init__(self, name: str, setup: Setup, log_level: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=_child_main,
            args=(child_conn, setup, log_level, current_secrets()),
            name=name,
            daemon=True,
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

    def call(self, job: AnyJob) -> JobResult:
        try:
            self.conn.send(job)
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
class _Waiting:
    job: AnyJob
    future: asyncio.Future[JobResult]


class WorkerPool:
    """``workers`` processes behind a bounded queue, each loading the model once.

    :meth:`run` never raises for anything a job can go through: a full queue, a job over
    ``job_timeout`` seconds (its process is killed and replaced), or a process that dies
    (replaced; the job is retried once on the new process) all come back as a
    :class:`~serving.jobs.JobFailure`.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        queue_size: int = 32,
        job_timeout: float = 30.0,
        start_timeout: float = 180.0,
        setup: Setup | None = None,
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
        self._queue: asyncio.Queue[_Waiting] | None = None
        # one thread per worker waits on its pipe, so the event loop never blocks
        self._threads = ThreadPoolExecutor(
            max_workers=workers * 2, thread_name_prefix="facemask-pipe"
        )

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (for health checks and tests)."""
        return [slot.pid for slot in self._slots if slot.pid is not None]

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
                waiting = self._queue.get_nowait()
                if not waiting.future.done():
                    waiting.future.set_result(JobFailure.of(WorkerStoppedError()))
            self._queue = None
        await asyncio.gather(*(asyncio.to_thread(slot.stop, 2.0) for slot in self._slots))
        self._slots = []
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def run(self, job: AnyJob) -> JobResult:
        """Run one job on the next free worker; always an answer, never an exception."""
        if self._queue is None:
            return JobFailure.of(WorkerStoppedError())
        waiting = _Waiting(job, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(waiting)
        except asyncio.QueueFull:
            return JobFailure.of(WorkerBusyError())
        return await waiting.future

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
            waiting = await self._queue.get()
            if waiting.future.done():  # the caller stopped waiting
                continue
            try:
                if not self._slots[index].process.is_alive():
                    await self._replace(index)
                result = await self._run_job(index, waiting.job)
            except asyncio.CancelledError:  # closing: still answer the job in hand
                if not waiting.future.done():
                    waiting.future.set_result(JobFailure.of(WorkerStoppedError()))
                raise
            if not waiting.future.done():
                waiting.future.set_result(result)

    async def _run_job(self, index: int, job: AnyJob) -> JobResult:
        for attempt in (1, 2):
            worker = self._slots[index]
            try:
                return await asyncio.wait_for(self._in_thread(worker.call, job), self.job_timeout)
            except TimeoutError:
                logger.warning(
                    "worker %s took over %.0f s on a job; replacing it",
                    worker.pid,
                    self.job_timeout,
                )
                await self._replace(index)
                return JobFailure.of(WorkerTimeoutError())
            except _WorkerDied:
                worker.process.join(1)
                logger.warning(
                    "worker %s died during a job (exit code %s); replacing it%s",
                    worker.pid,
                    worker.process.exitcode,
                    ", retrying the job" if attempt == 1 else "",
                )
                await self._replace(index)
        return JobFailure.of(WorkerFailedError())

    def _in_thread(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._threads, function, *args)
