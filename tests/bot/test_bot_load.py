"""The load command works end to end (a small run; the real numbers are a benchmark)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.support.bot_processes import PYTHON, clean_env


async def test_load_command_answers_every_photo(model_env: dict[str, str], tmp_path: Path) -> None:
    command = [
        PYTHON,
        "-m",
        "tests.support.loadtest",
        "--users",
        "3",
        "--photos",
        "2",
        "--workers",
        "1",
    ]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        # the load command lives in tests/support, importable from the repository root
        env=clean_env(**model_env, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered with a masked photo: 6/6; errors: 0; lost: 0" in done.stdout
    assert "tap -> masked photo: p50" in done.stdout
