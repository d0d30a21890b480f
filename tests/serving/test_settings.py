"""facemask-worker and the bot read the same settings; the worker's command line wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from serving.settings import WorkerSettings
from tests.support.bot_processes import clean_env

ROOT = Path(__file__).resolve().parents[2]


def run_worker(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.worker", *args],
        env=clean_env(PYTHONPATH=str(ROOT), **env),
        cwd=tmp_path,  # no .env here
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_bot_reads_the_workers_settings_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REDIS_URL", "WORKERS", "JOB_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("WORKERS=3\nJOB_TIMEOUT=12.5\nLOG_LEVEL=debug\n")
    monkeypatch.chdir(tmp_path)
    assert issubclass(Settings, WorkerSettings)
    worker, bot = WorkerSettings(), Settings()
    for settings in (worker, bot):
        assert (settings.workers, settings.job_timeout, settings.log_level) == (3, 12.5, "DEBUG")
    assert bot.model_dump(include=set(WorkerSettings.model_fields)) == worker.model_dump()
    assert WorkerSettings(workers=5).workers == 5  # what the command line's flags do


def test_worker_without_redis_says_how_to_set_it(tmp_path: Path) -> None:
    done = run_worker(tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "REDIS_URL" in line and "redis://" in line


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ((), {"WORKERS": "none", "REDIS_URL": "redis://localhost:1/0"}, "WORKERS"),
        (("--workers", "0", "--redis-url", "redis://localhost:1/0"), {}, "WORKERS"),
        (("--log-level", "chatty", "--redis-url", "redis://localhost:1/0"), {}, "LOG_LEVEL"),
    ],
)
def test_bad_worker_setting_is_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    done = run_worker(tmp_path, *args, **env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("facemask-worker: bad settings:") and named in line
