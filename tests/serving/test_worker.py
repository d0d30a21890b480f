"""facemask-worker's health check, and model processes outliving their parent quietly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.bot_processes import clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]


def run_worker(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.worker", *args],
        env=clean_env(PYTHONPATH=str(ROOT), **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_healthcheck_reads_the_heartbeat_and_check_is_its_alias(tmp_path: Path) -> None:
    alive = tmp_path / "worker.alive"
    settings = {"REDIS_URL": "redis://127.0.0.1:1/0", "HEARTBEAT_FILE": str(alive)}
    missing = run_worker(tmp_path, "--healthcheck", **settings)
    assert missing.returncode == 1 and "no heartbeat" in missing.stderr

    alive.touch()
    assert run_worker(tmp_path, "--healthcheck", **settings).returncode == 0
    assert run_worker(tmp_path, "--check", **settings).returncode == 0

    # the worker stops touching it while Redis does not answer its polls
    an_hour_ago = time.time() - 3600
    os.utime(alive, (an_hour_ago, an_hour_ago))
    stale = run_worker(tmp_path, "--healthcheck", **settings)
    assert stale.returncode == 1 and "no contact with Redis" in stale.stderr


def test_healthcheck_without_heartbeat_fails_in_one_line_when_redis_is_away(
    tmp_path: Path,
) -> None:
    done = run_worker(tmp_path, "--healthcheck", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1
    assert "cannot reach Redis" in done.stderr and "Traceback" not in done.stderr


ORPHAN = """
import asyncio, os, signal
from serving.jobs import MaskJob
from serving.pool import WorkerPool
from tests.support import worker_stubs

async def main():
    pool = WorkerPool(1, setup=worker_stubs.setup_echo)
    await pool.start()
    print(pool.pids[0], flush=True)
    asyncio.create_task(pool.run(MaskJob(b"sleep 1", 1)))
    await asyncio.sleep(0.3)  # the job is in the model process now
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_a_model_process_whose_parent_died_exits_quietly(tmp_path: Path) -> None:
    output = tmp_path / "output.txt"
    with output.open("w") as out:
        parent = subprocess.run(
            [sys.executable, "-c", ORPHAN],
            env=clean_env(PYTHONPATH=str(ROOT)),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    assert parent.returncode == -9
    model_pid = int(output.read_text().split()[0])
    deadline = time.monotonic() + 15
    while Path(f"/proc/{model_pid}").exists() and _state(model_pid) != "Z":
        assert time.monotonic() < deadline, "the orphaned model process did not exit"
        time.sleep(0.1)
    text = output.read_text()  # the child writes to the same file
    assert "Traceback" not in text and "BrokenPipeError" not in text, text


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
