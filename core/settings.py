"""Core's settings, read from the environment in one place.

``FACEMASK_DETECTOR``  the face detector's name (core.detection.registry; "auto" if unset)
``FACEMASK_WEIGHTS``   a keypoint release's manifest to load instead of the shipped one
``FACEMASK_THREADS``   threads per library in this process, overriding the decided count

Read when asked (:func:`core_settings`), never at import: importing core changes nothing
and a test or a worker that sets a variable first sees it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreSettings:
    detector: str = "auto"
    weights: Path | None = None  # None: the release shipped in core/weights
    threads: int | None = None  # None: decided from the usable cores (core.threads)


def core_settings(environ: Mapping[str, str] | None = None) -> CoreSettings:
    """The settings in ``environ`` (the process's environment by default)."""
    env = os.environ if environ is None else environ
    weights = env.get("FACEMASK_WEIGHTS") or None
    return CoreSettings(
        detector=env.get("FACEMASK_DETECTOR") or "auto",
        weights=Path(weights) if weights else None,
        threads=_threads(env.get("FACEMASK_THREADS", "").strip()),
    )


def _threads(value: str) -> int | None:
    if not value:
        return None
    try:
        if int(value) >= 1:
            return int(value)
    except ValueError:
        pass
    log.warning("ignoring FACEMASK_THREADS=%r: not a whole number of at least 1", value)
    return None
