"""Stand-in jobs for the worker pool's tests: real processes, no model, exact behaviour.

The pool imports these by name inside its spawned workers, so they live in a module. A job's
``image`` bytes say what the stand-in does: ``b"ok"``, ``b"sleep 0.5"``, ``b"no_face"``,
``b"die"``, ``b"die_once /path/to/mark"``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from core.errors import NoFaceFoundError
from core.results import Face, MaskedPhoto
from serving.jobs import JobFailure, JobResult, MaskJob
from serving.pool import JobFunction


def setup_echo() -> JobFunction:
    return echo


def echo(job: MaskJob) -> JobResult:
    """Behaves as its image says; otherwise a "picture" that is this process's id."""
    action, _, argument = job.image.decode().partition(" ")
    if action == "sleep":
        time.sleep(float(argument))
    elif action == "no_face":
        return JobFailure.of(NoFaceFoundError())
    elif action == "die":
        os._exit(3)
    elif action == "die_once":  # dies the first time (leaves a mark), works on the retry
        mark = Path(argument)
        if not mark.exists():
            mark.touch()
            os._exit(3)
    face = Face((0.0, 0.0, 4.0, 3.0), np.zeros((68, 2), np.float32))
    return MaskedPhoto(str(os.getpid()).encode(), "JPEG", 4, 3, (face,), ms=1.0)


def setup_broken() -> JobFunction:
    raise RuntimeError("no model here")


def setup_without_weights() -> JobFunction:
    from core.errors import WeightsError

    raise WeightsError("no keypoint weights found in /srv/secret/weights")


def setup_leaky() -> JobFunction:
    """Fails to load with a secret in its message, as a careless library might."""
    raise RuntimeError("cannot reach redis://:sesame-123@cache:6379/0")
