"""The state stores: SQLite (embedded mode) and Redis, written at once, pruned, converted."""

from __future__ import annotations

import pickle
import sqlite3
import time
from pathlib import Path

import pytest
import redis

from bot.persistence import (
    DAY,
    STATE_DB_NAME,
    RedisPersistence,
    SQLitePersistence,
)
from bot.state import ChatState, PhotoRequest, UserState
from core.results import Mode


def chat_with_photo(photo_id: int = 12, mode: Mode = Mode.WHOLE) -> ChatState:
    chat = ChatState()
    chat.remember(photo_id, PhotoRequest(f"AgAD-{photo_id}", False, mode))
    return chat


async def test_sqlite_writes_at_once_and_reads_typed_state(tmp_path: Path) -> None:
    store = SQLitePersistence(tmp_path / STATE_DB_NAME)
    assert await store.get_chat_data() == {} and await store.get_user_data() == {}
    await store.update_chat_data(5, chat_with_photo())
    await store.update_user_data(7, UserState([1.5]))
    # no flush, no close: what a SIGKILL leaves behind is already on disk
    again = SQLitePersistence(tmp_path / STATE_DB_NAME)
    assert await again.get_chat_data() == {5: chat_with_photo()}
    assert await again.get_user_data() == {7: UserState([1.5])}


async def test_sqlite_forgets_what_nobody_touched_for_the_set_days(tmp_path: Path) -> None:
    path = tmp_path / STATE_DB_NAME
    store = SQLitePersistence(path, forget_after_days=90)
    await store.get_chat_data()
    await store.update_chat_data(5, chat_with_photo())
    await store.update_chat_data(6, chat_with_photo(13))
    db = sqlite3.connect(path)
    with db:  # chat 6 was last written 91 days ago
        db.execute("UPDATE state SET touched = ? WHERE id = 6", (time.time() - 91 * DAY,))
    db.close()

    restarted = SQLitePersistence(path, forget_after_days=90)
    assert set(await restarted.get_chat_data()) == {5}  # read at start: gone
    assert _ids(path) == {5}
    # a bot that keeps running forgets too, in the store (the app drops them from memory)
    forgotten = await restarted.prune(now=time.time() + 91 * DAY)
    assert forgotten == {"chat": [5], "user": []} and _ids(path) == set()


def _ids(path: Path) -> set[int]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT id FROM state WHERE kind = 'chat'")}
    finally:
        db.close()


async def test_the_previous_versions_pickle_file_is_converted_once(tmp_path: Path) -> None:
    old = {
        "chat_data": {5: {"photos": {12: {"file_id": "AgAD-12", "as_file": False, "crop": False}}}},
        "user_data": {7: {"recent_jobs": [1.5]}},
        "bot_data": {},
        "callback_data": None,
        "conversations": {},
    }
    (tmp_path / "facemask-bot.pickle").write_bytes(pickle.dumps(old))
    store = SQLitePersistence(tmp_path / STATE_DB_NAME)
    assert await store.get_chat_data() == {5: chat_with_photo()}
    assert await store.get_user_data() == {7: UserState([1.5])}
    assert not (tmp_path / "facemask-bot.pickle").exists()
    assert (tmp_path / "facemask-bot.pickle.converted").is_file()


async def test_state_written_by_an_older_class_gets_the_new_fields(tmp_path: Path) -> None:
    """A ChatState pickled before a field existed reads back with that field's default."""
    store = SQLitePersistence(tmp_path / STATE_DB_NAME)
    await store.get_chat_data()
    chat = chat_with_photo()
    del chat.__dict__["photos"]  # as if "photos" had been added after this state was written
    await store.update_chat_data(5, chat)
    [restored] = (await SQLitePersistence(tmp_path / STATE_DB_NAME).get_chat_data()).values()
    assert restored.photos == {}


async def test_redis_store_expires_state_and_rewrites_what_redis_lost(
    redis_url: str, tmp_path: Path
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.flushdb()
    store = RedisPersistence(url, tmp_path, forget_after_days=90)
    try:
        assert await store.get_chat_data() == {}
        await store.update_chat_data(5, chat_with_photo())
        await store.update_user_data(7, UserState([1.5]))
        ttl = client.ttl("facemask:state:chat:5")
        assert 89 * DAY < ttl <= 90 * DAY  # Redis itself forgets after 90 days

        again = RedisPersistence(url, tmp_path)
        assert await again.get_chat_data() == {5: chat_with_photo()}
        await again.close()

        client.flushdb()  # Redis restarted without its data
        await store.repair({5: chat_with_photo()}, {7: UserState([1.5])})
        assert pickle.loads(client.get("facemask:state:chat:5")) == chat_with_photo()
        assert client.exists("facemask:state:user:7")
    finally:
        await store.close()
        client.flushdb()
        client.close()


@pytest.mark.parametrize("kind", ["chat", "user"])
async def test_redis_store_reads_back_what_it_wrote(redis_url: str, tmp_path: Path, kind) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/6"
    client = redis.Redis.from_url(url)
    client.flushdb()
    store = RedisPersistence(url, tmp_path)
    try:
        state = chat_with_photo() if kind == "chat" else UserState([2.5])
        await store.save(kind, 9, state)
        reader = RedisPersistence(url, tmp_path)
        assert await reader._states(kind) == {9: state}
        await reader.close()
    finally:
        await store.close()
        client.flushdb()
        client.close()
