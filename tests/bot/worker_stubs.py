"""Stand-in jobs for the worker pool's tests: real processes, no model, exact behaviour.

The pool imports these by name inside its spawned workers, so they live in a module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from core.errors import NoFaceFoundError
from serving.worker import JobFunction, failure


def setup_echo() -> JobFunction:
    return echo


def echo(*args: Any) -> dict[str, Any]:
    """Behaves according to its first argument; otherwise a finished job for the other ones."""
    action = args[0]
    if action == "sleep":
        time.sleep(args[1])
    elif action == "no_face":
        return failure(NoFaceFoundError())
    elif action == "die":
        os._exit(3)
    elif action == "die_once":  # dies the first time (leaves a mark), works on the retry
        mark = Path(args[1])
        if not mark.exists():
            mark.touch()
            os._exit(3)
    return {
        "ok": True, "image": b"image", "format": "JPEG", "width": 4, "height": 3,
        "faces": 1, "ms": 1.0, "pid": os.getpid(),
    }  # fmt: skip


def setup_broken() -> JobFunction:
    raise RuntimeError("no model here")


def setup_without_weights() -> JobFunction:
    from core.errors import WeightsError

    raise WeightsError("no keypoint weights found in /srv/secret/weights")
