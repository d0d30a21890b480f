"""How many threads each library may start: one decision, taken once per process.

torch, ONNX Runtime and OpenCV each size their thread pools from the machine's core count
by default, not from the cores this process may use (``taskset``, a container's CPU quota)
nor from how many worker processes share them. Each of them then runs more threads than
there are cores for it, and a parallel step waits for its slowest thread, which the
scheduler has put behind someone else's: under one busy core the command line and
``FaceMasker()`` ran 2-4x slower (issue 18).

:func:`configure` decides the number once, from :func:`usable_cores` divided among the
``workers`` processes of a pool, and gives it to OpenCV and to torch (where torch is
loaded; it is brought in again whenever it is loaded later); the ONNX Runtime sessions ask
:func:`count` when they are made (``core.runtime``, ``core.detection.mtcnn``). ``FACEMASK_THREADS``
(:mod:`core.settings`) overrides the number.

Nothing heavy is imported here: ``serving.pool`` imports this module in the bot's process.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.settings import core_settings

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")

_chosen: int | None = None
_torch_given: int | None = None


def affinity_cores() -> int:
    """The cores this process may run on (``taskset``, cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> Iterator[tuple[str, Path]]:
    """("v2" | "v1", folder) for the process's cgroup and each one above it, innermost
    first: a quota on any of them limits the process."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = ["0::/"]  # no /proc: look at the root's files only
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            # a hybrid host mounts the v2 hierarchy at unified/ beside the v1 controllers
            hybrid = (root / "unified").is_dir() and not (root / "cgroup.controllers").exists()
            version, base = "v2", root / "unified" if hybrid else root
        elif "cpu" in controllers.split(","):
            version, names = "v1", (controllers, "cpu", "cpu,cpuacct")
            base = next((root / n for n in names if (root / n).is_dir()), root / "cpu")
        else:
            continue
        parts = [p for p in path.strip("/").split("/") if p]
        for depth in range(len(parts), -1, -1):
            yield version, base.joinpath(*parts[:depth])


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPUs a cgroup quota allows this process (quota / period, the tightest along its
    cgroup path; cgroup v2's ``cpu.max`` or v1's ``cpu.cfs_quota_us``), None without one."""
    limits = []
    for version, folder in _cgroup_dirs(root, proc_cgroup):
        try:
            if version == "v2":
                quota, period = (folder / "cpu.max").read_text().split()[:2]
            else:
                quota = (folder / "cpu.cfs_quota_us").read_text().strip()
                period = (folder / "cpu.cfs_period_us").read_text().strip()
        except (OSError, ValueError):
            continue
        if quota not in ("max", "-1") and float(period) > 0:
            limits.append(float(quota) / float(period))
    return min(limits) if limits else None


def usable_cores(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The cores this process may keep busy: its affinity, capped by a cgroup CPU quota
    (rounded down: threads beyond the quota are throttled, at least one)."""
    cores = affinity_cores()
    quota = cgroup_cpus(root, proc_cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return cores


def plan(workers: int = 1, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """Threads for each of ``workers`` processes sharing this process's cores (at least
    one); ``FACEMASK_THREADS`` overrides it."""
    override = core_settings().threads
    if override is not None:
        return override
    return max(1, usable_cores(root, proc_cgroup) // max(1, workers))


def configure(workers: int | None = None, threads: int | None = None) -> int:
    """Decide this process's threads per library and set OpenCV's and torch's; the number.

    The first call decides (``threads`` if given, else :func:`plan` for ``workers``, one by
    default); later calls return it, unless they pass ``workers`` or ``threads`` again. torch
    is set where it is loaded, and again by a later call once it is (training, the fallbacks
    that run on torch): importing it here would cost every worker ~240 MB.
    """
    global _chosen, _torch_given
    if _chosen is None or workers is not None or threads is not None:
        chosen = threads if threads and threads >= 1 else plan(workers or 1)
        if chosen != _chosen:
            import cv2

            cv2.setNumThreads(chosen)
            log.debug("%d thread(s) per library (%d usable cores)", chosen, usable_cores())
        _chosen = chosen
    if _torch_given != _chosen and "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(_chosen)
        _torch_given = _chosen
    return _chosen


def count() -> int:
    """The number of threads each library may use here (decided on first use)."""
    return configure()


@contextmanager
def planned_for(workers: int) -> Iterator[int]:
    """Inside: this process's threads as one of ``workers`` processes has them
    (:func:`configure`), to build what such processes will inherit; after: as before."""
    global _chosen, _torch_given
    import cv2

    chosen, torch_given, cv2_threads = _chosen, _torch_given, cv2.getNumThreads()
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        yield configure(workers=workers)
    finally:
        _chosen, _torch_given = chosen, torch_given
        cv2.setNumThreads(cv2_threads)
        if torch is not None:
            torch.set_num_threads(torch_threads)
