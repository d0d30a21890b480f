"""A stand-in video job for the pool's tests: real processes, no model, exact timing.

A :class:`~serving.jobs.VideoJob`'s ``video`` bytes say what it does: ``b"frames 40 0.05"``
works through 40 "frames" of 0.05 s each, reporting progress and checking the cancel flag
between frames, as core's video path does. Other jobs behave as in :mod:`worker_stubs`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from core.errors import JobCancelledError
from core.results import MaskedVideo
from serving.jobs import AnyJob, JobFailure, JobResult, VideoJob
from serving.pool import JobFunction
from tests.support import worker_stubs

PROGRESS_EVERY_S = 0.2


def setup_video() -> JobFunction:
    return run


def run(job: AnyJob, progress: Any = None, cancel: Any = None) -> JobResult:
    if not isinstance(job, VideoJob):
        return worker_stubs.echo(job)
    _, count, each = job.video.decode().split()
    frames, seconds = int(count), float(each)
    reported = time.monotonic()
    for done in range(1, frames + 1):
        if cancel is not None and cancel.is_set():
            return JobFailure.of(JobCancelledError())
        time.sleep(seconds)
        if progress is not None and time.monotonic() - reported >= PROGRESS_EVERY_S:
            progress(done / frames)
            reported = time.monotonic()
    # the "video" is this process's id, so tests can tell which process made it
    return MaskedVideo(
        str(os.getpid()).encode(), 4, 4, 10.0, frames, frames / 10, False, 1.0, 1.0,
        kind=job.kind,
    )  # fmt: skip
