"""The state store: a SQLite file in both modes, written at once, pruned, converted; in Redis
mode an earlier release's keys are moved into it once, and a Redis that loses everything takes
no state with it.

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
from types import SimpleNamespace

import pytest
import redis

from bot.persistence import (
    DAY,
    STATE_DB_NAME,
    SQLitePersistence,
    SQLiteWithRedisImport,
    create_persistence,
)
from bot.state import ChatState, PhotoRequest, UserState, encode_state
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


async def test_redis_mode_keeps_state_in_the_file_so_losing_redis_loses_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = SimpleNamespace(redis_url=url, state_dir=tmp_path, forget_after_days=90)
    store = create_persistence(settings)
    try:
        assert isinstance(store, SQLiteWithRedisImport)
        assert await store.get_chat_data() == {}
        await store.update_chat_data(5, chat_with_photo())
        await store.update_user_data(7, UserState([1.5]))
        assert client.keys("facemask:state:*") == []  # Redis holds no state
        client.flushdb()  # Redis killed with the bot: no snapshot brings anything back
        again = create_persistence(settings)
        assert await again.get_chat_data() == {5: chat_with_photo()}
        assert await again.get_user_data() == {7: UserState([1.5])}
    finally:
        client.flushdb()
        client.close()


async def test_an_earlier_releases_redis_state_is_moved_into_the_file_once(
    redis_url: str, tmp_path: Path
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/6"
    client = redis.Redis.from_url(url)
    client.flushdb()
    path = tmp_path / STATE_DB_NAME
    try:
        client.set("facemask:state:chat:5", encode_state(chat_with_photo()), ex=int(30 * DAY))
        client.set("facemask:state:user:7", encode_state(UserState([2.5])))
        client.set("facemask:state:chat:8", encode_state(chat_with_photo(99)))
        file_store = SQLitePersistence(path)
        await file_store.get_chat_data()
        await file_store.update_chat_data(8, chat_with_photo(13))  # the file's is newer
        store = SQLiteWithRedisImport(path, url)
        assert await store.get_chat_data() == {5: chat_with_photo(), 8: chat_with_photo(13)}
        assert await store.get_user_data() == {7: UserState([2.5])}
        assert client.keys("facemask:state:*") == []  # moved, not copied
        assert _touched(path, 5) < time.time() - 59 * DAY  # its age came with it
    finally:
        client.flushdb()
        client.close()


def _touched(path: Path, key: int) -> float:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT touched FROM state WHERE id = ?", (key,)).fetchone()[0]
    finally:
        db.close()


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


async def test_a_pickled_redis_key_is_converted_and_an_exploit_refused(
    redis_url: str, tmp_path: Path
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.set("facemask:state:chat:5", pickle.dumps(chat_with_photo(), pickle.HIGHEST_PROTOCOL))
    client.set("facemask:state:chat:6", pickle.dumps(Exploit(tmp_path / "ran")))
    store = SQLiteWithRedisImport(tmp_path / STATE_DB_NAME, url)
    try:
        assert await store.get_chat_data() == {5: chat_with_photo()}
        assert json.loads(rows(tmp_path / STATE_DB_NAME)["chat", 5])["v"] == 1  # JSON now
        assert client.keys("facemask:state:*") == [] and not (tmp_path / "ran").exists()
    finally:
        client.flushdb()
        client.close()
