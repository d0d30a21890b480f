"""The bot's Redis queue when Redis is away: typed answers, never a traceback or a hang."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot import texts
from core.results import Mode
from serving import redis_queue as queue_module
from serving.jobs import WorkerUnreachableError
from serving.redis_queue import RedisQueue
from tests.support.chaos import RedisServer


async def test_redis_going_away_is_a_typed_try_again_and_the_heartbeat_notices(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        server = RedisServer(tmp_path)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    monkeypatch.setattr(queue_module, "REDIS_PATIENCE", 1.0)
    await server.start()
    queue = RedisQueue(server.url, queue_size=4, job_timeout=5)
    await queue.start()
    try:
        assert await queue.healthy()
        await server.kill()
        assert not await queue.healthy()  # the bot's heartbeat stops touching its file
        started = time.monotonic()
        with pytest.raises(WorkerUnreachableError) as caught:
            await queue.mask_photo(b"photo", 1, Mode.FACES)
        assert time.monotonic() - started < 5  # a quick answer, not a hang
        assert texts.error_text(caught.value) == texts.ERRORS["unreachable"]
        await server.start()  # back on the same port: the same client carries on
        await asyncio.sleep(0.2)
        assert await queue.healthy()
    finally:
        await queue.close()
        await server.kill()
