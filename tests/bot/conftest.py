"""Real parts for the bot's tests: a fake Telegram server, the real bot as a process, Redis.

Everything async here shares one session event loop, so one fake server and one bot process
serve many tests (starting a bot costs seconds: its worker loads torch and the model).
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from tests.support.bot_processes import BotProcess, free_port
from tests.support.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- pictures


def encode(rgb: np.ndarray, format: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=format)
    return out.getvalue()


@pytest.fixture(scope="session")
def face_jpeg() -> bytes:
    """A real face photo: the astronaut that ships with scikit-image (512 x 512)."""
    from skimage import data

    return encode(data.astronaut())


@pytest.fixture(scope="session")
def blank_png() -> bytes:
    """No face anywhere: a flat grey picture."""
    return encode(np.full((360, 480, 3), 128, np.uint8), "PNG")


# ----------------------------------------------------------------------------- processes


@pytest.fixture(scope="session")
def model_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The shipped release (the bot runs it as users get it)."""
    from core.keypoints.landmarks import shipped_release

    shipped_release()  # a missing release fails here, with its reason
    return {}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bot(
    telegram: FakeTelegram, model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BotProcess]:
    """One bot with one embedded worker for the whole session; some tests restart it."""
    workdir = tmp_path_factory.mktemp("bot")
    process = BotProcess(
        telegram,
        workdir,
        WORKERS="1",
        HEARTBEAT_FILE=str(workdir / "alive"),
        THROTTLE_JOBS="8",
        POLL_TIMEOUT="2",
        # a 6-s video note is masked in about a second on a fast machine: show progress often
        PROGRESS_SECONDS="0.2",
        # inline mode posts profile photos' masks there (tests/bot/test_bot_inline.py)
        INLINE_CACHE_CHAT_ID=str(telegram.group("inline cache").id),
        **model_env,
    )
    await process.start()
    yield process
    assert await process.stop() == 0, process.log()[-3000:]
    process.assert_clean_log()
    assert not telegram.state.unknown_methods


# ----------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of our own: random port, temporary directory, stopped at the end."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
