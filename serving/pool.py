"""Worker processes that each load the keypoint model once and mask photos.

:class:`WorkerPool` keeps ``workers`` child processes next to its caller (the bot in embedded
mode, or ``facemask-worker``) and feeds them :class:`~serving.jobs.MaskJob` s from a bounded
queue. Every job gets an answer: a :class:`~core.results.MaskedPhoto` or a
:class:`~serving.jobs.JobFailure`, never an exception.

Videos (:class:`~serving.jobs.VideoJob`) have a lane of their own: ``video_workers`` more
processes, started with the first video and run at a lower CPU priority, take only videos from a
short queue of their own, so a photo never waits behind a minute of video. A video's process
reports its progress through the pipe (:class:`~serving.jobs.Progress`, at most every 0.5 s)
and stops between two frames when its caller is cancelled (a per-process cancel flag); its
time limit grows with the video's length (``video_job_timeout`` for the longest).

Importing this module does not import torch: the model is loaded inside the child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import FaceMaskError
from serving.jobs import (
    OWN_STYLE,
    AnyJob,
    JobFailure,
    JobResult,
    ManyMasksJob,
    MaskJob,
    Progress,
    ProgressReport,
    StickerJob,
    VideoJob,
    WorkerBusyError,
    WorkerFailedError,
    WorkerStoppedError,
    WorkerTimeoutError,
)
from serving.logs import configure_logging, current_secrets

if TYPE_CHECKING:
    from core.api import Masker

logger = logging.getLogger(__name__)

JobFunction = Callable[..., JobResult]  # (job) -> result; a VideoJob's also gets progress, cancel
Setup = Callable[[], JobFunction]

#: the video lane's processes yield the CPU to photo processes (nice(2) levels above theirs)
VIDEO_NICENESS = 10
#: videos waiting per video process before new ones are refused as busy
VIDEO_QUEUE_PER_PROCESS = 4
#: under TMPDIR: one private folder per worker process, for what core must write to a file (a
#: video's MP4 while it is encoded); a folder whose process died is swept by the next to start
PRIVATE_TEMP = "facemask-workers"

# --------------------------------------------------------------------------------------------
# what runs inside a worker process


def run_mask_job(
    masker: Masker, job: AnyJob, progress: ProgressReport | None = None, cancel: Any = None
) -> JobResult:
    """Run one job with an already loaded ``core.api.FaceMasker``; errors become data.

    A video reports ``progress`` (0..1) and stops between frames once ``cancel`` (anything with
    ``is_set()``) is set."""
    try:
        if isinstance(job, VideoJob) and job.sticker:
            return masker.video_sticker(
                job.video, job.mask_id, job.mode, progress=progress, cancel=cancel
            )
        if isinstance(job, VideoJob):
            return masker.apply_video(
                job.video, job.mask_id, job.mode, kind=job.kind, progress=progress, cancel=cancel
            )
        if isinstance(job, ManyMasksJob):
            return masker.apply_many(job.image, job.mask_ids, job.mode, style=job_style(job))
        if isinstance(job, StickerJob):
            return masker.sticker(job.image, job.mode, job.mask_id, style=job_style(job))
        mask = job.mix or job.mask_id
        return masker.apply(job.image, mask, job.mode, style=job_style(job))
    except FaceMaskError as error:
        return JobFailure.of(error)
    except Exception:  # a bug, not the user's fault: log it here, send only a code back
        logger.exception("masking a photo failed (%r)", job)
        return JobFailure.of(WorkerFailedError())


def job_style(job: MaskJob | ManyMasksJob | StickerJob) -> Any:
    """A job's style for ``core.api``: None, its id, or (:data:`OWN_STYLE`) the own picture
    it carries, read here, in the worker (a picture that cannot be printed fails the job with
    its own code)."""
    if not job.style:
        return None
    if job.style != OWN_STYLE:
        return job.style
    from core.render.style import Style

    return Style.from_picture(job.pattern)


# glibc's malloc (mallopt(3)): at most this many heaps (ONNX Runtime's and OpenCV's threads
# each made their own, every one as large as the largest photo it worked on)
M_ARENA_MAX = -8
ARENA_MAX = 2
#: a worker resident above this after a job hands its heaps' free pages back (malloc_trim):
#: freed buffers otherwise stay resident, 480-630 MB after 42 photos of real faces. Not after
#: every job: the next photo faults its pages in again, 13-16% more CPU; at 420 MB it costs
#: 4-9% (docs/experiments/detection-and-speed.md, issue 27)
TRIM_ABOVE_MB = 420


def limit_heap() -> None:
    """This process's malloc keeps at most ``ARENA_MAX`` heaps; nothing where the C library
    is not glibc."""
    from core import runtime

    mallopt = getattr(runtime.libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, ARENA_MAX)


def resident_mb(pid: int | str = "self") -> float:
    """A process's resident memory in MB (Linux /proc; 0 elsewhere): this one's by default."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def trim_after(job_function: JobFunction, above_mb: float = TRIM_ABOVE_MB) -> JobFunction:
    """``job_function``, handing the heaps' free pages back (``malloc_trim``) after a job
    that left the process resident above ``above_mb``: what a large photo's buffers took
    would otherwise stay resident for good."""
    from core import runtime

    if getattr(runtime.libc(), "malloc_trim", None) is None:
        return job_function

    @functools.wraps(job_function)
    def run(job: AnyJob, **kwargs: Any) -> JobResult:
        try:
            return job_function(job, **kwargs)
        finally:
            if resident_mb() > above_mb:
                runtime.trim_heap()

    return run


def load_mask_job(workers: int = 1, trim_above_mb: float = TRIM_ABOVE_MB) -> JobFunction:
    """Load the model once (runs in the worker process) and return the job that uses it.

    ``workers``: how many such processes share the cores this one may use; each takes its
    share (``core.threads``) instead of every process fighting for all of them. Nothing here
    imports torch: the networks run on ONNX Runtime (~800 -> ~420 MB resident a worker).
    A job that leaves the process resident above ``trim_above_mb`` hands its freed memory
    back (:func:`trim_after`).
    """
    from core import threads
    from core.api import FaceMasker

    limit_heap()  # before any thread makes its heap
    threads.configure(workers=workers)
    started = time.perf_counter()
    masker = FaceMasker()
    logger.info("worker %d loaded the model in %.1f s", os.getpid(), time.perf_counter() - started)
    return trim_after(functools.partial(run_mask_job, masker), trim_above_mb)


def load_video_job(workers: int = 1) -> JobFunction:
    """:func:`load_mask_job` for the video lane, whose process gives way to photo processes."""
    os.nice(VIDEO_NICENESS)
    return load_mask_job(workers)


def _answer_with(failure: JobFailure, job: AnyJob, **_: Any) -> JobResult:
    return failure


def _reporter(conn: Connection, cancel: Any) -> ProgressReport:
    def report(fraction: float) -> None:
        try:
            conn.send(Progress(fraction))
        except OSError:  # the parent is gone: nobody waits for this video, stop it
            cancel.set()

    return report


def private_temp_folder(root: Path | None = None) -> Path:
    """This process's own temporary folder, made the default of :mod:`tempfile` (core writes a
    video there while encoding it), after sweeping the folders of worker processes that died.

    The process holds a lock on its folder for its life, so a folder whose lock can be taken
    belongs to a dead process (a SIGKILL leaves its half-written video behind), whatever its
    name: process ids are reused, and workers in other containers may share TMPDIR.
    """
    root = root or Path(tempfile.gettempdir()) / PRIVATE_TEMP
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in root.iterdir():
        with contextlib.suppress(OSError):  # no lock yet (being made), or its owner lives
            with (folder / "lock").open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder)
                logger.info("removed %s, left by a worker process that died", folder)
    while True:
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
        lock = (folder / "lock").open("ab")  # held until the process ends, however it ends
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            if (folder / "lock").stat().st_ino == os.fstat(lock.fileno()).st_ino:
                break  # not swept by another process between its making and its lock
        lock.close()
    _held_locks.append(lock)
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)  # for anything started from here
    return folder


_held_locks: list[Any] = []


def _child_main(
    conn: Connection, setup: Setup, log_level: int, secrets: list[str], cancel: Any = None
) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(log_level, secrets)
    private_temp_folder()
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
        if isinstance(job, VideoJob) and cancel is not None:
            result = job_function(job, progress=_reporter(conn, cancel), cancel=cancel)
        else:
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
        # set by the parent to stop the video in hand; the child checks it between frames
        self.cancel = context.Event()
        self.process = context.Process(
            target=_child_main,
            args=(child_conn, setup, log_level, current_secrets(), self.cancel),
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

    def call(self, job: AnyJob, progress: ProgressReport | None = None) -> JobResult:
        self.cancel.clear()  # a cancel meant for the previous job
        try:
            self.conn.send(job)
            while True:
                answer = self.conn.recv()
                if not isinstance(answer, Progress):
                    return answer
                if progress is not None:
                    progress(answer.fraction)
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
    progress: ProgressReport | None = None  # called in a pipe thread
    worker: _Worker | None = None  # the process working on it now


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
        video_workers: int = 0,
        video_job_timeout: float = 180.0,
        video_setup: Setup | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.workers = workers
        self.queue_size = queue_size
        self.job_timeout = job_timeout
        self.start_timeout = start_timeout
        self.video_workers = video_workers
        self.video_job_timeout = video_job_timeout
        self._setup = setup or functools.partial(load_mask_job, workers)
        # all the cores: its lower priority gives them to photo processes when photos come
        video_lane = functools.partial(load_video_job, max(1, video_workers))
        self._video_setup = video_setup or (setup if setup is not None else video_lane)
        self._video_queue: asyncio.Queue[_Waiting] | None = None
        self._video_start: asyncio.Task[None] | None = None
        self._videos_in_hand = 0  # video jobs handed to the pool and not yet answered
        self._log_level = logging.getLogger().getEffectiveLevel()
        self._names = (f"facemask-worker-{n}" for n in itertools.count(1))
        self._slots: list[_Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[_Waiting] | None = None
        # one thread per worker waits on its pipe, so the event loop never blocks
        self._threads = ThreadPoolExecutor(
            max_workers=(workers + video_workers) * 2, thread_name_prefix="facemask-pipe"
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
        if self.video_workers:
            # the video processes start with the first video (a bot that only ever sees photos
            # keeps its memory); videos wait in their queue until they are ready
            self._video_queue = asyncio.Queue(maxsize=VIDEO_QUEUE_PER_PROCESS * self.video_workers)

    @property
    def video_lane_busy(self) -> bool:
        """Whether a new video would have to wait: every video process has one in hand."""
        if self._video_queue is None:
            return False
        return self._videos_in_hand >= self.video_workers

    async def _start_video_lane(self) -> None:
        for _ in range(self.video_workers):
            index = len(self._slots)
            for attempt in itertools.count():
                try:
                    self._slots.append(await self._spawn(video=True))
                    break
                except _WorkerDied as error:
                    delay = min(30.0, 2.0**attempt)
                    logger.error("could not start a video worker (%s); retrying in %.0f s",
                                 error, delay)  # fmt: skip
                    await asyncio.sleep(delay)
            self._tasks.append(asyncio.create_task(self._serve(index)))
        video_pids = self.pids[self.workers :]
        logger.info("%d video workers ready (pids %s)", self.video_workers, video_pids)

    async def close(self) -> None:
        """Stop taking jobs, answer the waiting ones, and stop the processes."""
        if self._video_start is not None:
            self._video_start.cancel()
            await asyncio.gather(self._video_start, return_exceptions=True)
            self._video_start = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for queue in (self._queue, self._video_queue):
            while queue is not None and not queue.empty():
                waiting = queue.get_nowait()
                if not waiting.future.done():
                    waiting.future.set_result(JobFailure.of(WorkerStoppedError()))
        self._queue = self._video_queue = None
        await asyncio.gather(*(asyncio.to_thread(slot.stop, 2.0) for slot in self._slots))
        self._slots = []
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def run(self, job: AnyJob, progress: ProgressReport | None = None) -> JobResult:
        """Run one job on the next free worker; always an answer, never an exception.

        A video goes to the video lane (if the pool has one) and reports ``progress`` (0..1,
        called in the event loop). Cancelling the caller stops the job in its process.
        """
        if self._queue is None:
            return JobFailure.of(WorkerStoppedError())
        video = isinstance(job, VideoJob)
        queue = self._video_queue if video and self._video_queue is not None else self._queue
        loop = asyncio.get_running_loop()
        report = None
        if progress is not None:
            report = functools.partial(_call_in_loop, loop, progress)
        waiting = _Waiting(job, loop.create_future(), report)
        try:
            queue.put_nowait(waiting)
        except asyncio.QueueFull:
            return JobFailure.of(WorkerBusyError())
        self._videos_in_hand += video
        if video and self._video_queue is not None and self._video_start is None:
            self._video_start = asyncio.create_task(self._start_video_lane())
        try:
            return await waiting.future
        except asyncio.CancelledError:
            # the caller gave up (a Cancel button, an arq abort): free the process now
            if waiting.worker is not None:
                logger.info("cancelling %r in worker %s", job, waiting.worker.pid)
                waiting.worker.cancel.set()
            raise
        finally:
            self._videos_in_hand -= video

    def _lane_is_video(self, index: int) -> bool:
        return index >= self.workers

    async def _spawn(self, video: bool = False) -> _Worker:
        setup = self._video_setup if video else self._setup
        worker = _Worker(next(self._names), setup, self._log_level)
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
                self._slots[index] = await self._spawn(video=self._lane_is_video(index))
                logger.info("replacement worker %s started", self._slots[index].pid)
                return
            except _WorkerDied as error:
                delay = min(30.0, 2.0**attempt)
                logger.error("could not start a worker (%s); retrying in %.0f s", error, delay)
                await asyncio.sleep(delay)

    async def _serve(self, index: int) -> None:
        queue = self._video_queue if self._lane_is_video(index) else self._queue
        assert queue is not None
        while True:
            waiting = await queue.get()
            if waiting.future.done():  # the caller stopped waiting
                continue
            try:
                if not self._slots[index].process.is_alive():
                    await self._replace(index)
                result = await self._run_job(index, waiting)
            except asyncio.CancelledError:  # closing: still answer the job in hand
                if not waiting.future.done():
                    waiting.future.set_result(JobFailure.of(WorkerStoppedError()))
                raise
            if not waiting.future.done():
                waiting.future.set_result(result)

    async def _run_job(self, index: int, waiting: _Waiting) -> JobResult:
        job = waiting.job
        timeout = self.job_timeout
        if isinstance(job, VideoJob):
            timeout = job.timeout(self.job_timeout, self.video_job_timeout)
        for attempt in (1, 2):
            worker = waiting.worker = self._slots[index]
            try:
                call = self._in_thread(worker.call, job, waiting.progress)
                return await asyncio.wait_for(call, timeout)
            except TimeoutError:
                logger.warning(
                    "worker %s took over %.0f s on a job; replacing it",
                    worker.pid,
                    timeout,
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


def _call_in_loop(loop: asyncio.AbstractEventLoop, function: ProgressReport, value: float) -> None:
    """Hand a progress report from a pipe thread to the event loop (gone: nobody to tell)."""
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(function, value)
