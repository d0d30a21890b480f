"""Where chat and user state lives between restarts: SQLite (embedded mode) or Redis.

python-telegram-bot keeps ``chat_data`` and ``user_data`` in memory and hands them to a
:class:`~telegram.ext.BasePersistence` now and then. Here each state is written when it
changes instead: handlers call :func:`save_now` before they send anything that depends on it
(a keyboard, a new mode), so a bot killed at any moment forgets nothing a chat can see.

- :class:`SQLitePersistence`: one file in ``STATE_DIR`` (``REDIS_URL`` unset). Each write is
  one transaction in WAL mode: it survives the process being killed.
- :class:`RedisPersistence`: keys in the bot's Redis (``REDIS_URL`` set), so the bot's
  container needs no volume. Redis runs without snapshots (it also carries photos), so when
  Redis comes back empty the bot writes its whole state from memory again; while Redis is
  away, writes wait in memory and go out when it answers.

Both store the typed states (:data:`bot.state.CONTEXT_TYPES`) as pickles of their dataclasses,
whatever fields they have; a field added later gets its default when an older state is read.
State nobody touched for ``FORGET_AFTER_DAYS`` days is deleted. The stores hold Telegram's
references to photos, never pictures. A ``facemask-bot.pickle`` from an earlier version is
converted on the first start and renamed ``*.converted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pickle
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from bot.state import CONTEXT_TYPES, Context, StatePersistence

logger = logging.getLogger(__name__)

CHAT, USER = "chat", "user"
DAY = 86_400.0
#: the file an earlier version kept its state in (python-telegram-bot's PicklePersistence)
OLD_PICKLE_NAME = "facemask-bot.pickle"


def _restore(kind: str, stored: object) -> Any:
    """A stored state as the current class, missing fields filled with their defaults."""
    cls = CONTEXT_TYPES.chat_data if kind == CHAT else CONTEXT_TYPES.user_data
    restore = getattr(cls, "restore", None)
    state = restore(stored) if restore is not None else stored
    _complete(state)
    return state


def _complete(value: object, depth: int = 0) -> None:
    """Give dataclass instances (and those inside them) the fields an older version lacked."""
    if depth > 4:
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if field.name not in vars(value):
                if field.default is not dataclasses.MISSING:
                    object.__setattr__(value, field.name, field.default)
                elif field.default_factory is not dataclasses.MISSING:
                    object.__setattr__(value, field.name, field.default_factory())
            _complete(getattr(value, field.name, None), depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _complete(item, depth + 1)


class TypedPersistence(BasePersistence):
    """The python-telegram-bot side of both stores: typed states in, pickles out."""

    def __init__(self, state_dir: Path, forget_after_days: float) -> None:
        # bot_data holds live objects (the queue), not state; no callback data or conversations
        super().__init__(
            store_data=PersistenceInput(bot_data=False, callback_data=False),
            update_interval=60,  # a backstop: handlers write what they change at once
        )
        self.state_dir = state_dir
        self.keep_seconds = forget_after_days * DAY
        self._touched: dict[tuple[str, int], float] = {}
        self._converted = False

    # ------------------------------------------------------------------ the store (subclasses)

    async def _load(self, kind: str) -> dict[int, tuple[bytes, float]]:
        """Every stored state of ``kind``: id -> (pickle, when it was last written)."""
        raise NotImplementedError

    async def _save(self, kind: str, key: int, data: bytes, now: float) -> None:
        raise NotImplementedError

    async def _drop(self, kind: str, keys: Iterable[int]) -> None:
        raise NotImplementedError

    async def repair(self, chat_data: dict[int, Any], user_data: dict[int, Any]) -> None:
        """Called by the heartbeat: write state the store lost or could not take (Redis)."""

    async def close(self) -> None:
        """Release the store."""

    # ------------------------------------------------------------------ python-telegram-bot

    async def get_chat_data(self) -> dict[int, Any]:
        return await self._states(CHAT)

    async def get_user_data(self) -> dict[int, Any]:
        return await self._states(USER)

    async def update_chat_data(self, chat_id: int, data: Any) -> None:
        await self.save(CHAT, chat_id, data)

    async def update_user_data(self, user_id: int, data: Any) -> None:
        await self.save(USER, user_id, data)

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._forget(CHAT, [chat_id])

    async def drop_user_data(self, user_id: int) -> None:
        await self._forget(USER, [user_id])

    async def refresh_chat_data(self, chat_id: int, chat_data: Any) -> None:
        pass  # this process is the only writer

    async def refresh_user_data(self, user_id: int, user_data: Any) -> None:
        pass

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def update_bot_data(self, data: Any) -> None:
        pass

    async def refresh_bot_data(self, bot_data: Any) -> None:
        pass

    async def get_callback_data(self) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        pass

    async def get_conversations(self, name: str) -> dict[Any, Any]:
        return {}

    async def update_conversation(self, name: str, key: Any, new_state: object | None) -> None:
        pass

    async def flush(self) -> None:
        await self.close()

    # ------------------------------------------------------------------ shared logic

    async def save(self, kind: str, key: int, state: Any) -> None:
        """Write one state now (pickled before anything else can change it)."""
        data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        now = time.time()
        self._touched[kind, key] = now
        await self._save(kind, key, data, now)

    async def prune(self, now: float | None = None) -> dict[str, list[int]]:
        """Delete what nobody touched for ``FORGET_AFTER_DAYS``; the ids, by kind."""
        cutoff = (time.time() if now is None else now) - self.keep_seconds
        old: dict[str, list[int]] = {CHAT: [], USER: []}
        for (kind, key), touched in list(self._touched.items()):
            if touched < cutoff:
                old[kind].append(key)
        for kind, keys in old.items():
            if keys:
                await self._forget(kind, keys)
        if any(old.values()):
            logger.info(
                "forgot %d chats and %d users not seen for %.0f days",
                len(old[CHAT]), len(old[USER]), self.keep_seconds / DAY,
            )  # fmt: skip
        return old

    async def _forget(self, kind: str, keys: list[int]) -> None:
        for key in keys:
            self._touched.pop((kind, key), None)
        await self._drop(kind, keys)

    async def _states(self, kind: str) -> dict[int, Any]:
        await self._convert_old_pickle()
        cutoff = time.time() - self.keep_seconds
        states: dict[int, Any] = {}
        unreadable: list[int] = []
        old: list[int] = []
        for key, (data, touched) in (await self._load(kind)).items():
            if touched < cutoff:
                old.append(key)
                continue
            try:
                states[key] = _restore(kind, pickle.loads(data))
            except Exception:  # a class that no longer exists, a damaged row: one state lost
                unreadable.append(key)
                continue
            self._touched[kind, key] = touched
        if old:
            await self._drop(kind, old)
        if unreadable:
            logger.warning("could not read the saved state of %d %ss", len(unreadable), kind)
        return states

    async def _convert_old_pickle(self) -> None:
        """Move an earlier version's pickle file into this store (once)."""
        if self._converted:
            return
        self._converted = True
        path = self.state_dir / OLD_PICKLE_NAME
        if not path.is_file():
            return
        old = StatePersistence(path, store_data=self.store_data)
        chats, users = await old.get_chat_data(), await old.get_user_data()
        if path.is_file():  # (an unreadable file has been set aside by now)
            existing = {CHAT: await self._load(CHAT), USER: await self._load(USER)}
            for kind, states in ((CHAT, chats), (USER, users)):
                for key, state in states.items():
                    if key not in existing[kind]:  # this store's own state is newer
                        await self.save(kind, key, state)
            path.replace(path.with_name(f"{path.name}.converted"))
            logger.info(
                "converted %s (%d chats, %d users) to the new state store",
                path, len(chats), len(users),
            )  # fmt: skip


class SQLitePersistence(TypedPersistence):
    """States in one SQLite file; every write is its own transaction."""

    def __init__(self, path: Path, forget_after_days: float = 90) -> None:
        super().__init__(path.parent, forget_after_days)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # small rows, one writer: each statement takes well under a millisecond, so it runs on
        # the event loop rather than hopping to a thread
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")  # a commit survives the process's death
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS state (kind TEXT NOT NULL, id INTEGER NOT NULL, "
            "data BLOB NOT NULL, touched REAL NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID"
        )

    async def _load(self, kind: str) -> dict[int, tuple[bytes, float]]:
        rows = self._db.execute("SELECT id, data, touched FROM state WHERE kind = ?", (kind,))
        return {key: (data, touched) for key, data, touched in rows}

    async def _save(self, kind: str, key: int, data: bytes, now: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO state (kind, id, data, touched) VALUES (?, ?, ?, ?)",
            (kind, key, data, now),
        )

    async def _drop(self, kind: str, keys: Iterable[int]) -> None:
        self._db.executemany(
            "DELETE FROM state WHERE kind = ? AND id = ?", [(kind, key) for key in keys]
        )

    async def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class RedisPersistence(TypedPersistence):
    """States as Redis keys that expire after ``FORGET_AFTER_DAYS``; memory covers outages."""

    PREFIX = "facemask:state:"

    def __init__(self, redis_url: str, state_dir: Path, forget_after_days: float = 90) -> None:
        super().__init__(state_dir, forget_after_days)
        from redis.asyncio import Redis

        self._redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self._marker = f"{self.PREFIX}present"
        self._unsaved: dict[tuple[str, int], bytes] = {}
        self._outage = False

    def _key(self, kind: str, key: int) -> str:
        return f"{self.PREFIX}{kind}:{key}"

    async def _load(self, kind: str) -> dict[int, tuple[bytes, float]]:
        from bot.queue import REDIS_TROUBLE

        while True:  # the bot cannot serve its keyboards without its state: wait for Redis
            try:
                return await self._load_once(kind)
            except REDIS_TROUBLE as error:
                self._trouble(error)
                await asyncio.sleep(1.0)

    async def _load_once(self, kind: str) -> dict[int, tuple[bytes, float]]:
        keys = [key async for key in self._redis.scan_iter(match=f"{self.PREFIX}{kind}:*")]
        loaded: dict[int, tuple[bytes, float]] = {}
        now = time.time()
        for key in keys:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.ttl(key)
                data, ttl = await pipe.execute()
            if data is None:
                continue
            # a key's age is what its expiry has run down since the last write
            touched = now - (self.keep_seconds - ttl) if ttl and ttl > 0 else now
            loaded[int(key.rsplit(b":", 1)[1])] = (data, touched)
        await self._redis.set(self._marker, b"1")
        self._recovered()
        return loaded

    async def _save(self, kind: str, key: int, data: bytes, now: float) -> None:
        self._unsaved[kind, key] = data
        await self._write_unsaved()

    async def _write_unsaved(self) -> None:
        from bot.queue import REDIS_TROUBLE

        if not self._unsaved:
            return
        pending = dict(self._unsaved)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for (kind, key), data in pending.items():
                    pipe.set(self._key(kind, key), data, ex=int(self.keep_seconds))
                await pipe.execute()
        except REDIS_TROUBLE as error:
            self._trouble(error)  # kept in memory; written when Redis answers
            return
        for item, data in pending.items():
            if self._unsaved.get(item) is data:
                del self._unsaved[item]
        self._recovered()

    async def _drop(self, kind: str, keys: Iterable[int]) -> None:
        from bot.queue import REDIS_TROUBLE

        names = [self._key(kind, key) for key in keys]
        for key in keys:
            self._unsaved.pop((kind, key), None)
        if names:
            with contextlib.suppress(*REDIS_TROUBLE):  # they expire on their own anyway
                await self._redis.delete(*names)

    async def repair(self, chat_data: dict[int, Any], user_data: dict[int, Any]) -> None:
        """Write everything again if Redis lost it (restarted empty); flush unsaved writes."""
        from bot.queue import REDIS_TROUBLE

        try:
            present = await self._redis.exists(self._marker)
        except REDIS_TROUBLE as error:
            self._trouble(error)
            return
        if not present:
            logger.warning("Redis lost the bot's state (restarted?); writing it again from memory")
            for kind, states in ((CHAT, chat_data), (USER, user_data)):
                for key, state in list(states.items()):
                    self._unsaved[kind, key] = pickle.dumps(state, pickle.HIGHEST_PROTOCOL)
        await self._write_unsaved()
        if not self._unsaved:
            with contextlib.suppress(*REDIS_TROUBLE):
                await self._redis.set(self._marker, b"1")

    async def close(self) -> None:
        from bot.queue import REDIS_TROUBLE

        await self._write_unsaved()
        with contextlib.suppress(*REDIS_TROUBLE):
            await self._redis.aclose()

    def _trouble(self, error: BaseException) -> None:
        if not self._outage:
            self._outage = True
            logger.warning("cannot save chat state in Redis (%s); keeping it in memory", error)

    def _recovered(self) -> None:
        if self._outage:
            self._outage = False
            logger.warning("chat state is saved in Redis again")


def create_persistence(settings: Any) -> TypedPersistence:
    """Redis when the bot uses Redis for its jobs, else a SQLite file in ``STATE_DIR``."""
    days = settings.forget_after_days
    if settings.redis_url:
        return RedisPersistence(settings.redis_url, settings.state_dir, days)
    return SQLitePersistence(settings.state_dir / STATE_DB_NAME, days)


#: the SQLite file's name inside ``STATE_DIR``
STATE_DB_NAME = "facemask-bot.sqlite3"


async def save_now(
    context: Context, *, chat_id: int | None = None, user_id: int | None = None
) -> None:
    """Write this chat's (and user's) state now, before a reply that depends on it."""
    persistence = context.application.persistence
    if not isinstance(persistence, TypedPersistence):
        return
    if chat_id is not None and context.chat_data is not None:
        await persistence.save(CHAT, chat_id, context.chat_data)
    if user_id is not None and context.user_data is not None:
        await persistence.save(USER, user_id, context.user_data)
