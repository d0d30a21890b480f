"""The state stores: SQLite (embedded mode) and Redis, written at once, pruned, converted.

States are stored as versioned JSON; an earlier version's pickles (rows, keys, the old file)
are read once by a loader that builds only the bot's own state classes, rewritten as JSON, and
a pickle naming anything else (os.system) is refused and logged, never run."""

from __future__ import annotations

import json
import logging
import os
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
from bot.state import ChatState, PhotoRequest, UserState, decode_state
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
        assert decode_state(client.get("facemask:state:chat:5"), ChatState) == chat_with_photo()
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


# ----------------------------------------------------------------------------- old pickles


class Exploit:
    """What someone who could write to the store might leave there."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.mark}",))


def rows(path: Path) -> dict[tuple[str, int], bytes]:
    db = sqlite3.connect(path)
    try:
        return {
            (kind, key): data for kind, key, data in db.execute("SELECT kind, id, data FROM state")
        }
    finally:
        db.close()


def write_rows(path: Path, states: dict[tuple[str, int], bytes]) -> None:
    SQLitePersistence(path)  # makes the table
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO state (kind, id, data, touched) VALUES (?, ?, ?, ?)",
            [(kind, key, data, time.time()) for (kind, key), data in states.items()],
        )
    db.close()


async def test_pickled_rows_are_converted_once_and_an_exploit_is_refused_never_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path, mark = tmp_path / STATE_DB_NAME, tmp_path / "exploit-ran"
    older = chat_with_photo(12)
    del older.__dict__["settings"]  # pickled by a version before /settings existed
    write_rows(path, {
        ("chat", 5): pickle.dumps(older, pickle.HIGHEST_PROTOCOL),
        ("chat", 6): pickle.dumps(Exploit(mark), pickle.HIGHEST_PROTOCOL),
        ("chat", 8): pickle.dumps({"photos": {3: Exploit(mark)}}, pickle.HIGHEST_PROTOCOL),
        ("user", 7): pickle.dumps(UserState([1.5]), pickle.HIGHEST_PROTOCOL),
    })  # fmt: skip

    store = SQLitePersistence(path)
    chats = await store.get_chat_data()
    assert chats == {5: chat_with_photo(12)} and await store.get_user_data() == {
        7: UserState([1.5])
    }
    assert not mark.exists()
    refused = [
        r.getMessage() for r in caplog.records if "refused the old pickled" in r.getMessage()
    ]
    assert len(refused) == 2 and all("os.system" in line or "posix.system" in line
                                     for line in refused), refused  # fmt: skip
    # rewritten as JSON, the refused ones gone: no pickle is left to be read again
    stored = rows(path)
    assert set(stored) == {("chat", 5), ("user", 7)}
    assert all(json.loads(data)["v"] == 1 for data in stored.values())
    # the converted keyboard still works: its photo, its mode, the Crop toggle
    request = chats[5].photos[12]
    assert (request.file_id, request.mode) == ("AgAD-12", Mode.WHOLE)
    assert request.toggle_mode() is Mode.FACES

    caplog.clear()
    again = SQLitePersistence(path)
    assert await again.get_chat_data() == {5: chat_with_photo(12)}
    assert not [r for r in caplog.records if "pickle" in r.getMessage()]  # read as JSON now


async def test_an_old_pickle_file_with_an_exploit_is_set_aside_never_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mark = tmp_path / "exploit-ran"
    old = {"chat_data": {5: Exploit(mark)}, "user_data": {}, "bot_data": {},
           "callback_data": None, "conversations": {}}  # fmt: skip
    (tmp_path / "facemask-bot.pickle").write_bytes(pickle.dumps(old))
    store = SQLitePersistence(tmp_path / STATE_DB_NAME)
    assert await store.get_chat_data() == {} and await store.get_user_data() == {}
    assert not mark.exists()
    [aside] = tmp_path.glob("facemask-bot.pickle.unreadable-*")
    assert aside.read_bytes() == pickle.dumps(old)  # kept for whoever wants to look
    [line] = [r.getMessage() for r in caplog.records if "old state file" in r.getMessage()]
    assert "system" in line and "started afresh" in line


async def test_a_pickled_redis_key_is_converted_to_json(redis_url: str, tmp_path: Path) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.set("facemask:state:chat:5", pickle.dumps(chat_with_photo(), pickle.HIGHEST_PROTOCOL))
    client.set("facemask:state:chat:6", pickle.dumps(Exploit(tmp_path / "ran")))
    store = RedisPersistence(url, tmp_path)
    try:
        assert await store.get_chat_data() == {5: chat_with_photo()}
        assert decode_state(client.get("facemask:state:chat:5"), ChatState) == chat_with_photo()
        assert not client.exists("facemask:state:chat:6") and not (tmp_path / "ran").exists()
    finally:
        await store.close()
        client.flushdb()
        client.close()
