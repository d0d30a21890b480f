"""Redis mode: the bot sends jobs through a real redis-server to a real ``facemask-worker``."""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis

from bot.persistence import STATE_DB_NAME
from bot.state import ChatState, decode_state
from core.results import Mode
from masks import catalog
from serving.jobs import WorkerBusyError, WorkerTimeoutError
from serving.redis_queue import RedisQueue
from tests.support.bot_processes import PYTHON, BotProcess, Process, clean_env
from tests.support.fake_telegram import FakeTelegram, has_keyboard


def worker_command() -> list[str]:
    script = shutil.which("facemask-worker", path=str(Path(sys.executable).parent))
    return [script] if script else [PYTHON, "-m", "serving.worker"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def worker(
    redis_url: str, model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Process]:
    process = Process(
        "worker",
        worker_command(),
        clean_env(REDIS_URL=redis_url, WORKERS="1", **model_env),
        tmp_path_factory.mktemp("worker"),
    )
    process.start()
    deadline = time.monotonic() + 180
    while "inference workers ready" not in process.log():
        assert process.alive(), process.log()
        assert time.monotonic() < deadline, process.log()
        await asyncio.sleep(0.1)
    yield process
    assert await process.stop() == 0, process.log()[-3000:]
    assert "Traceback" not in process.log(), process.log()[-5000:]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(bot_username="facemask_redis_bot") as fake:
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis_bot(
    redis_telegram: FakeTelegram,
    redis_url: str,
    worker: Process,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotProcess]:
    process = BotProcess(
        redis_telegram, tmp_path_factory.mktemp("redis-bot"), REDIS_URL=redis_url, POLL_TIMEOUT="2"
    )
    await process.start()
    yield process
    assert await process.stop() == 0, process.log()[-3000:]
    process.assert_clean_log()


async def test_photo_goes_through_redis_to_the_worker(
    redis_telegram: FakeTelegram, redis_bot: BotProcess, worker: Process, face_jpeg: bytes
) -> None:
    telegram = redis_telegram
    user = telegram.user("Rita")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "7 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    assert catalog.get(7).name in result.caption
    assert redis_bot.model_processes() == []  # no model in the bot: the worker did it
    assert "mask_photo" in worker.log()


class Exploit:
    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.mark}",))


async def test_an_old_pickled_state_converts_and_its_keyboard_still_works(
    redis_telegram: FakeTelegram,
    redis_bot: BotProcess,
    redis_url: str,
    face_jpeg: bytes,
    tmp_path: Path,
) -> None:
    """A chat state an earlier release pickled into Redis: moved into the bot's SQLite file
    once, through the restricted loader, as JSON; its keyboard answers; a pickle holding
    os.system is refused, never run; Redis holds no state afterwards."""
    telegram = redis_telegram
    user = telegram.user("Olga")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)

    assert await redis_bot.stop() == 0, redis_bot.log()[-3000:]
    database = redis_bot.workdir / "state" / STATE_DB_NAME
    with sqlite3.connect(database) as db:
        (data,) = db.execute(
            "SELECT data FROM state WHERE kind = 'chat' AND id = ?", (chat.id,)
        ).fetchone()
        state = decode_state(data, ChatState)  # what this release wrote: JSON in the file
        db.execute("DELETE FROM state WHERE kind = 'chat' AND id = ?", (chat.id,))
    client = redis.Redis.from_url(redis_url)
    key, mark = f"facemask:state:chat:{chat.id}", tmp_path / "exploit-ran"
    try:  # as an earlier release kept them: pickles in Redis
        client.set(key, pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
        client.set("facemask:state:chat:424242", pickle.dumps(Exploit(mark)))
        await redis_bot.start()
        await telegram.press(user, keyboard, "4 ")
        result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
        assert catalog.get(4).name in result.caption
        assert not client.exists(key) and not client.exists("facemask:state:chat:424242")
    finally:
        client.close()
    with sqlite3.connect(database) as db:
        (data,) = db.execute(
            "SELECT data FROM state WHERE kind = 'chat' AND id = ?", (chat.id,)
        ).fetchone()
    assert decode_state(data, ChatState).photos == state.photos  # JSON now
    assert not mark.exists()
    assert "refused the old pickled state of chat 424242" in redis_bot.log()


async def test_worker_process_killed_mid_job_still_answers(
    redis_telegram: FakeTelegram,
    redis_bot: BotProcess,
    worker: Process,
    redis_url: str,
    face_jpeg: bytes,
) -> None:
    telegram = redis_telegram
    user = telegram.user("Sam")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)

    [model_process] = worker.model_processes()
    os.kill(model_process, signal.SIGSTOP)  # frozen: the job cannot finish before the kill
    await telegram.press(user, keyboard, "2 ")
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while not client.keys("arq:in-progress:*"):
            assert time.monotonic() < deadline, "the worker never took the job"
            await asyncio.sleep(0.05)
    finally:
        client.close()
    await asyncio.sleep(0.5)  # the job is in the frozen process's pipe
    os.kill(model_process, signal.SIGKILL)

    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=120)
    assert catalog.get(2).name in result.caption
    assert model_process not in worker.model_processes()
    assert "died during a job" in worker.log()


async def test_full_redis_queue_says_busy_and_no_worker_means_timeout(redis_url: str) -> None:
    """On a Redis database no worker serves, jobs pile up: the bot refuses, then gives up."""
    queue = RedisQueue(redis_url.rsplit("/", 1)[0] + "/3", queue_size=1, job_timeout=1.0)
    await queue.start()
    try:
        waiting = asyncio.create_task(queue.mask_photo(b"photo", 1, Mode.FACES))
        await asyncio.sleep(0.3)
        with pytest.raises(WorkerBusyError):
            await queue.mask_photo(b"photo", 1, Mode.FACES)
        with pytest.raises(WorkerTimeoutError):
            await waiting
    finally:
        await queue.close()


async def test_all_seven_and_a_sticker_go_through_redis_to_the_worker(
    redis_url: str, worker: Process, face_jpeg: bytes
) -> None:
    """The arq functions mask_photo_many and make_sticker, served by facemask-worker."""
    queue = RedisQueue(redis_url, queue_size=4, job_timeout=30)
    await queue.start()
    try:
        photos = await queue.mask_many(face_jpeg, (1, 2, 3, 4, 5, 6, 7), Mode.FACES)
        assert [p.face_count for p in photos] == [1] * 7 and len({p.image for p in photos}) == 7
        sticker = await queue.sticker(face_jpeg, 7, Mode.FACES)
        assert sticker[:4] == b"RIFF" and sticker[8:12] == b"WEBP"
    finally:
        await queue.close()
