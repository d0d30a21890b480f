"""Nothing lost, even mid-crash, with the bot's workers built in (embedded mode): the bot
SIGKILLed while taps are in flight and under a backlog (bot.journal), and a video's worker
process SIGKILLed while it writes the MP4 (serving.pool's private temp folders). Redis mode's
runs are in test_chaos.py; ``./run chaos`` prints the numbers of both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot import texts
from tests.support import chaos


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[chaos.Stack]:
    async with chaos.stack(tmp_path_factory.mktemp("durable"), redis_mode=False) as stack:
        yield stack


def assert_every_tap_answered_once(result: chaos.Result, in_flight: int = 0) -> None:
    """Every tap answered; none twice except replies on their way to Telegram at the kill
    (see test_chaos.assert_every_tap_answered_once)."""
    assert result.taps.unanswered == 0, result.line()
    assert result.taps.duplicates <= in_flight, result.line()
    assert result.tracebacks == [], result.line()


@pytest.mark.slow
async def test_bot_killed_mid_stream_answers_every_tap_once(env: chaos.Stack) -> None:
    result = await chaos.bot_kill_mid_stream(env, users=3, taps_each=4)
    assert_every_tap_answered_once(result, in_flight=3)  # one tap in flight per user
    assert result.taps.photos == result.taps.taps == 12, result.line()


@pytest.mark.slow
async def test_bot_killed_under_a_backlog_answers_every_tap_once(env: chaos.Stack) -> None:
    result = await chaos.backlog_kill(env, rate=100, seconds=2, users=10)
    assert_every_tap_answered_once(result, in_flight=10)
    assert result.taps.taps == 200, result.line()
    assert set(result.taps.errors) <= {texts.ERRORS["busy"]}, result.line()


@pytest.mark.slow
async def test_a_video_process_killed_mid_video_leaves_nothing_at_rest(env: chaos.Stack) -> None:
    result = await chaos.video_kill(env)
    assert result.notes["bytes in TMPDIR at the kill"] > 0  # it was caught writing
    assert result.taps.photos == 1, result.line()  # retried on a new process
    assert result.notes["bytes at rest"] == 0, result.line()
    assert result.tracebacks == [], result.line()


PRIVATE_FOLDER = """
import sys, time
from pathlib import Path
from serving.pool import private_temp_folder
folder = private_temp_folder(Path(sys.argv[1]))
(folder / "out.mp4").write_bytes(b"half a video" * 20000)
print(folder, flush=True)
time.sleep(60)
"""


def test_a_killed_workers_temp_folder_is_swept_by_the_next_and_a_live_ones_kept(
    tmp_path: Path,
) -> None:
    def worker() -> tuple[subprocess.Popen[str], Path]:
        process = subprocess.Popen(
            [sys.executable, "-c", PRIVATE_FOLDER, str(tmp_path)],
            stdout=subprocess.PIPE, text=True, cwd=chaos.ROOT,
        )  # fmt: skip
        assert process.stdout is not None
        return process, Path(process.stdout.readline().strip())

    killed, killed_folder = worker()
    alive, alive_folder = worker()
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
        assert chaos.bytes_at_rest(tmp_path) == 2 * 240000  # a killed one leaves its file
        new, new_folder = worker()  # a new worker process sweeps at its start
        assert not killed_folder.exists()
        assert alive_folder.exists() and new_folder.exists()
        new.kill()
        new.wait(10)
    finally:
        for process in (killed, alive):
            process.kill()
            process.wait(10)
