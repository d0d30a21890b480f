"""Real parts for the serving tests: a redis-server of our own and a real facemask-worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.chaos import RedisServer, WorkerProcess


@pytest_asyncio.fixture
async def redis_and_worker(tmp_path: Path) -> AsyncIterator[tuple[RedisServer, WorkerProcess]]:
    """Redis and one ``facemask-worker`` (one photo process, one video process) on it; the
    worker must stop cleanly and log no traceback."""
    try:
        server = RedisServer(tmp_path)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    await server.start()
    worker = WorkerProcess("worker", server.url, tmp_path, WORKERS="1", VIDEO_WORKERS="1")
    worker.start()
    try:
        await worker.ready()
        yield server, worker
    finally:
        assert await worker.stop() == 0, worker.log()[-3000:]
        await server.kill()
    assert "Traceback" not in worker.log(), worker.log()[-3000:]
