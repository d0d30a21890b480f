"""Where chat and user state lives between restarts: a SQLite file in ``STATE_DIR``.

python-telegram-bot keeps ``chat_data`` and ``user_data`` in memory and hands them to a
:class:`~telegram.ext.BasePersistence` now and then. Here each state is written when it
changes instead: handlers call :func:`save_now` before they send anything that depends on it
(a keyboard, a new mode), so a bot killed at any moment forgets nothing a chat can see.

- :class:`SQLitePersistence`: one file in ``STATE_DIR``, in both modes. Each write is one
  transaction in WAL mode: it survives the process being killed.
- In Redis mode too (:class:`SQLiteWithRedisImport`): Redis runs without snapshots, as it
  carries photos, so the bot and Redis dying together would take state kept there with them.
  Earlier releases kept it there; their keys are moved into the file at the first start.

Both store the typed states (:data:`bot.state.CONTEXT_TYPES`) as versioned JSON of their
fields (:func:`bot.state.encode_state`); a field added later gets its default when an older
state is read. State nobody touched for ``FORGET_AFTER_DAYS`` days is deleted. The stores hold
Telegram's references to photos, never pictures.

Earlier versions pickled the states (SQLite rows, Redis keys, and before those the
``facemask-bot.pickle`` file). A pickle can run any code when read, so an old one is read
once, by :class:`OldStateUnpickler`, which builds only bot.state's classes, ``Mode`` and plain
builtins and refuses anything else (logged, never run); it is rewritten as JSON at once (the
file renamed ``*.converted``) and never read as a pickle again.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import pickle
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from bot.state import (
    CONTEXT_TYPES,
    STATE_CLASSES,
    Context,
    StateFormatError,
    decode_state,
    encode_state,
)
from core.results import Mode
from serving.redis_link import REDIS_TROUBLE

logger = logging.getLogger(__name__)

CHAT, USER = "chat", "user"
DAY = 86_400.0
#: the file an earlier version kept its state in (python-telegram-bot's PicklePersistence)
OLD_PICKLE_NAME = "facemask-bot.pickle"


def _state_class(kind: str) -> type:
    return CONTEXT_TYPES.chat_data if kind == CHAT else CONTEXT_TYPES.user_data


class RefusedPickleError(pickle.UnpicklingError):
    """An old pickled state that names something other than the bot's own state classes."""


class OldStateUnpickler(pickle.Unpickler):
    """Reads an earlier version's pickled state, building nothing but bot.state's classes,
    :class:`~core.results.Mode` and plain builtins: a pickle naming anything else (``os.system``,
    say) is refused with :class:`RefusedPickleError` before anything is called."""

    #: plain builtins an old state may hold (containers and scalars: none of them runs code)
    BUILTINS = {cls.__name__: cls for cls in (dict, list, tuple, set, frozenset, int, float, str,
                                              bool, bytes)}  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if module == "bot.state" and name in STATE_CLASSES:
            return STATE_CLASSES[name]
        if (module, name) == ("core.results", "Mode"):
            return Mode
        if module == "builtins" and name in self.BUILTINS:
            return self.BUILTINS[name]
        if module == "collections" and name in ("OrderedDict", "defaultdict"):
            return getattr(collections, name)
        raise RefusedPickleError(f"it names {module}.{name}, which is not part of the bot's state")

    def persistent_load(self, pid: Any) -> None:
        # python-telegram-bot's PicklePersistence left its Bot out this way: nothing to restore
        return None


def unpickle_old_state(data: bytes) -> Any:
    """An earlier version's pickle, read by :class:`OldStateUnpickler`."""
    return OldStateUnpickler(io.BytesIO(data)).load()


def _is_pickle(data: bytes) -> bool:
    """What the earlier versions wrote (pickle protocol 2 and later start with 0x80); JSON
    starts with "{"."""
    return data[:1] == b"\x80"


def _from_old(kind: str, stored: object) -> Any:
    """An unpickled old state as the current class: the dicts of the oldest versions are
    converted, and a round through JSON fills in fields an older class lacked and checks the
    rest."""
    cls = _state_class(kind)
    return decode_state(encode_state(cls.restore(stored)), cls)


class TypedPersistence(BasePersistence):
    """The python-telegram-bot side of both stores: typed states in, JSON out."""

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
        """Every stored state of ``kind``: id -> (its bytes, when it was last written)."""
        raise NotImplementedError

    async def _save(self, kind: str, key: int, data: bytes, now: float) -> None:
        raise NotImplementedError

    async def _drop(self, kind: str, keys: Iterable[int]) -> None:
        raise NotImplementedError

    async def repair(self, chat_data: dict[int, Any], user_data: dict[int, Any]) -> None:
        """Called by the heartbeat: write state the store lost or could not take."""

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
        """Write one state now (encoded before anything else can change it)."""
        data = encode_state(state)
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
        converted = 0
        for key, (data, touched) in (await self._load(kind)).items():
            if touched < cutoff:
                old.append(key)
                continue
            if _is_pickle(data):  # an earlier version's: read once, rewritten as JSON below
                state = self._convert_pickled(kind, key, data)
                if state is None:
                    old.append(key)  # refused or unreadable: never tried again
                    continue
                states[key] = state
                self._touched[kind, key] = touched
                await self._save(kind, key, encode_state(state), touched)
                converted += 1
                continue
            try:
                states[key] = decode_state(data, _state_class(kind))
            except StateFormatError as error:  # a damaged row, a newer release's: one state
                logger.debug("the saved state of %s %d: %s", kind, key, error)
                unreadable.append(key)
                continue
            self._touched[kind, key] = touched
        if old:
            await self._drop(kind, old)
        if converted:
            logger.info("converted %d %ss' pickled state to JSON", converted, kind)
        if unreadable:
            logger.warning("could not read the saved state of %d %ss", len(unreadable), kind)
        return states

    @staticmethod
    def _convert_pickled(kind: str, key: int, data: bytes) -> Any:
        """An old pickled state as the current class, or None (logged) if it is refused."""
        try:
            return _from_old(kind, unpickle_old_state(data))
        except RefusedPickleError as error:
            logger.warning("refused the old pickled state of %s %d: %s", kind, key, error)
        except Exception as error:  # noqa: BLE001 - a damaged pickle: one state lost
            logger.warning(
                "could not convert the old pickled state of %s %d (%s)",
                kind, key, type(error).__name__,
            )  # fmt: skip
        return None

    async def _convert_old_pickle(self) -> None:
        """Move an earlier version's pickle file into this store (once)."""
        if self._converted:
            return
        self._converted = True
        path = self.state_dir / OLD_PICKLE_NAME
        if not path.is_file():
            return
        try:
            chats, users = _read_old_pickle_file(path)
        except Exception as error:  # noqa: BLE001 - refused or damaged: set aside, start afresh
            aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            path.replace(aside)
            reason = str(error) if isinstance(error, RefusedPickleError) else type(error).__name__
            logger.warning(
                "refused to read the old state file (%s); moved it to %s and started afresh",
                reason, aside,
            )  # fmt: skip
            return
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


def _read_old_pickle_file(path: Path) -> tuple[dict[int, Any], dict[int, Any]]:
    """The chats and users of python-telegram-bot's PicklePersistence file, typed; a state that
    cannot be converted is left out (logged), a refused class refuses the whole file."""
    data = unpickle_old_state(path.read_bytes())
    if not isinstance(data, dict):
        raise StateFormatError("not a PicklePersistence file")
    typed: dict[str, dict[int, Any]] = {CHAT: {}, USER: {}}
    for kind, name in ((CHAT, "chat_data"), (USER, "user_data")):
        for key, stored in (data.get(name) or {}).items():
            try:
                typed[kind][int(key)] = _from_old(kind, stored)
            except (StateFormatError, TypeError, ValueError) as error:
                logger.warning("could not convert the old state of %s %s (%s)", kind, key, error)
    return typed[CHAT], typed[USER]


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


class SQLiteWithRedisImport(SQLitePersistence):
    """Redis mode's store: the SQLite file, as in embedded mode. Earlier releases kept Redis
    mode's state in Redis keys; at the first start those are moved into the file once (a
    pickled one through :class:`OldStateUnpickler`) and deleted from Redis."""

    PREFIX = "facemask:state:"

    def __init__(self, path: Path, redis_url: str, forget_after_days: float = 90) -> None:
        super().__init__(path, forget_after_days)
        self.redis_url = redis_url
        self._imported = False

    async def _load(self, kind: str) -> dict[int, tuple[bytes, float]]:
        if not self._imported:
            self._imported = True
            await self._import_from_redis()
        return await super()._load(kind)

    async def _import_from_redis(self) -> None:
        from redis.asyncio import Redis

        redis = Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=5)
        moved = 0
        try:
            keys = [key async for key in redis.scan_iter(match=f"{self.PREFIX}*")]
            known = {kind: set(await SQLitePersistence._load(self, kind)) for kind in (CHAT, USER)}
            for key in keys:
                kind, _, number = key.decode().removeprefix(self.PREFIX).partition(":")
                data, ttl = await redis.get(key), await redis.ttl(key)
                if kind in known and number.lstrip("-").isdigit() and data is not None:
                    if int(number) not in known[kind]:  # the file's own state is newer
                        # a key's age is what its expiry has run down since its last write
                        age = self.keep_seconds - ttl if ttl and ttl > 0 else 0.0
                        await self._save(kind, int(number), data, time.time() - age)
                        moved += 1
                await redis.delete(key)
        except REDIS_TROUBLE as error:  # tried again at the next start
            self._imported = False
            logger.warning(
                "could not move the chat state an earlier release kept in Redis (%s); "
                "trying again at the next start",
                type(error).__name__,
            )
        finally:
            await redis.aclose()
        if moved:
            logger.info("moved %d chat and user states from Redis to %s", moved, self.path.name)


def create_persistence(settings: Any) -> TypedPersistence:
    """A SQLite file in ``STATE_DIR``, in both modes (Redis mode moves an earlier release's
    state out of Redis at its first start)."""
    days, path = settings.forget_after_days, settings.state_dir / STATE_DB_NAME
    if settings.redis_url:
        return SQLiteWithRedisImport(path, settings.redis_url, days)
    return SQLitePersistence(path, days)


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
