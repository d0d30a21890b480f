"""Nothing accepted is lost, even mid-crash: a journal of the updates the bot has taken on.

Telegram forgets an update once the bot acknowledges it: in polling mode by asking
``getUpdates`` for a later offset, in webhook mode by answering the HTTP request. Both happen
right after python-telegram-bot puts the update into ``Application.update_queue``, so the
journal writes it there (:class:`JournaledQueue`): an update is on disk before Telegram can
forget it. It leaves the journal once it is answered: when its handlers end
(:class:`JournaledApplication`), or earlier, right after the answer went out, where a handler
says so (:func:`answered`: the masked photo sent, a toggle saved), so that a crash after the
answer does not answer it twice.

At start (``post_init``, before polling), whatever is still in the journal is handled again
(:func:`replay`): the taps a SIGKILL caught in flight and the backlog fetched but not yet
handled. An update Telegram sends again after such a crash (it was written but not yet
acknowledged) is recognised by its id and dropped, so each is handled once; one that was
replayed :data:`MAX_TRIES` times without an answer (it crashes the bot, say) is given up.

One SQLite file in ``STATE_DIR``, in WAL mode with ``synchronous=FULL``: each write is on
disk (fsync'd) before it returns, which survives the machine's power going too. Writes go
through one thread and are committed in groups, so handlers finishing together share one
fsync. The journal holds updates as Telegram sent them (file references, never pictures);
answered ones are kept as bare ids for :data:`KEEP_IDS_SECONDS`, as long as Telegram could
send them again.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from telegram import Bot, CallbackQuery, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackContext

logger = logging.getLogger(__name__)

#: the journal's file name inside ``STATE_DIR``
JOURNAL_NAME = "facemask-journal.sqlite3"
#: an update handled this often without an answer is given up (it may be what kills the bot)
MAX_TRIES = 3
#: answered updates' ids are kept this long: Telegram keeps an unacknowledged update 24 hours
KEEP_IDS_SECONDS = 2 * 86_400.0
#: updates not journaled: an inline query is stale within seconds, and answering it is all
NOT_JOURNALED = (Update.INLINE_QUERY,)

#: the update the running handler works for (each update is handled in a task of its own)
_HANDLING: contextvars.ContextVar[int | None] = contextvars.ContextVar("handling", default=None)


class Journal:
    """The updates taken on and not yet answered, in SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # one thread owns the connection: fsyncs never hold up the event loop
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facemask-journal")
        # the module's default transactions: `with self._db:` is one transaction, one commit
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync at every commit
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS updates (id INTEGER PRIMARY KEY, data TEXT, "
            "received REAL NOT NULL, tries INTEGER NOT NULL DEFAULT 0)"
        )  # data NULL: answered, kept to recognise Telegram sending it again
        self._open: set[int] = set()  # journaled and not yet answered, in this run
        self._batch: list[tuple[str, tuple[Any, ...], asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, update: Update) -> bool:
        """Write ``update`` down before it is acknowledged; False if it was here already."""
        data = json.dumps(update.to_dict(), separators=(",", ":"))
        added = await self._write(
            "INSERT OR IGNORE INTO updates (id, data, received) VALUES (?, ?, ?)",
            (update.update_id, data, time.time()),
        )
        if added:
            self._open.add(update.update_id)
        return bool(added)

    async def complete(self, update_id: int) -> None:
        """``update_id`` is answered: never replayed (its id is kept to drop a resend)."""
        if update_id not in self._open:
            return  # not journaled, or completed already
        self._open.discard(update_id)
        await self._write("UPDATE updates SET data = NULL WHERE id = ?", (update_id,))

    async def take_unanswered(self) -> list[dict[str, Any]]:
        """The updates not answered before the last stop, oldest first, each counted as one
        more try; those tried :data:`MAX_TRIES` times are given up (logged). Also forgets the
        ids of answered updates older than :data:`KEEP_IDS_SECONDS`. Call before serving."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._take_unanswered)

    def _take_unanswered(self) -> list[dict[str, Any]]:
        db = self._db
        with db:
            db.execute(
                "DELETE FROM updates WHERE data IS NULL AND received < ?",
                (time.time() - KEEP_IDS_SECONDS,),
            )
            rows = db.execute(
                "SELECT id, data, tries FROM updates WHERE data IS NOT NULL ORDER BY id"
            ).fetchall()
            given_up = [key for key, _, tries in rows if tries >= MAX_TRIES]
            db.executemany("UPDATE updates SET data = NULL WHERE id = ?", [(k,) for k in given_up])
            db.execute("UPDATE updates SET tries = tries + 1 WHERE data IS NOT NULL")
        for key in given_up:
            logger.warning("update %d was handled %d times without an answer; gave it up",
                           key, MAX_TRIES)  # fmt: skip
        kept = [(key, data) for key, data, tries in rows if tries < MAX_TRIES]
        self._open.update(key for key, _ in kept)
        return [json.loads(data) for _, data in kept]

    def unanswered(self) -> list[int]:
        """The ids not answered yet (for tests and the log)."""
        rows = self._db.execute("SELECT id FROM updates WHERE data IS NOT NULL ORDER BY id")
        return [key for (key,) in rows]

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        self._thread.submit(self._db.close).result()
        self._thread.shutdown()

    # ------------------------------------------------------------------ group commit

    async def _write(self, statement: str, params: tuple[Any, ...]) -> int:
        """Run one statement in the next commit; the rows it changed, once that is on disk."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._batch.append((statement, params, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                counts = await loop.run_in_executor(self._thread, self._commit, batch)
            except sqlite3.Error as error:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (*_, future), count in zip(batch, counts, strict=True):
                if not future.done():
                    future.set_result(count)

    def _commit(self, batch: list[tuple[str, tuple[Any, ...], Any]]) -> list[int]:
        with self._db:  # one transaction, one fsync
            return [self._db.execute(statement, params).rowcount for statement, params, _ in batch]


class JournaledQueue(asyncio.Queue):  # type: ignore[type-arg]
    """``Application.update_queue``: python-telegram-bot's Updater and webhook server put every
    update here just before acknowledging it to Telegram, so it is journaled here first."""

    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and not _is_throwaway(item):
            try:
                if not await self.journal.record(item):
                    logger.info("update %d came again; it is handled once", item.update_id)
                    return
            except sqlite3.Error as error:  # a full disk: answer it anyway, unjournaled
                logger.error("could not journal update %d: %s", item.update_id, error)
        await super().put(item)

    async def put_replayed(self, item: Update) -> None:
        """An update from the journal itself: handled again, not journaled again."""
        await super().put(item)


def _is_throwaway(update: Update) -> bool:
    return any(getattr(update, kind) is not None for kind in NOT_JOURNALED)


class JournaledApplication(Application):  # type: ignore[type-arg]
    """python-telegram-bot's Application, completing each journaled update once handled.

    An update whose handlers were cancelled (a shutdown) stays in the journal: the next start
    handles it. One whose handler failed was answered by the error handler: it is complete.
    """

    def __init__(self, *, journal: Journal, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.journal = journal

    async def process_update(self, update: object) -> None:
        if not isinstance(update, Update):
            await super().process_update(update)
            return
        _HANDLING.set(update.update_id)  # this task's own copy of the context
        await super().process_update(update)
        await self.journal.complete(update.update_id)


async def answered(context: CallbackContext[Any, Any, Any, Any]) -> None:
    """Called by a handler once its answer is out (or its effect saved, for a toggle): a crash
    from here on must not answer the update again."""
    journal = getattr(context.application, "journal", None)
    update_id = _HANDLING.get()
    if isinstance(journal, Journal) and update_id is not None:
        await journal.complete(update_id)


async def replay(app: Application) -> int:  # type: ignore[type-arg]
    """Queue the updates the last run took on and never answered; how many."""
    queue, journal = app.update_queue, getattr(app, "journal", None)
    if not isinstance(queue, JournaledQueue) or not isinstance(journal, Journal):
        return 0
    updates = await journal.take_unanswered()
    for data in updates:
        await queue.put_replayed(revive(data, app.bot))
    if updates:
        logger.info("handling %d updates the last run took on and did not answer", len(updates))
    return len(updates)


class ReplayedCallbackQuery(CallbackQuery):
    """A tap handled again after a restart. Telegram forgets a query within seconds, and it
    may have been answered ("Masking...") before the crash: a refused answer is no reason to
    leave the tap's work undone."""

    __slots__ = ()

    async def answer(self, *args: Any, **kwargs: Any) -> bool:
        try:
            return await super().answer(*args, **kwargs)
        except BadRequest as error:
            logger.info("the replayed tap %s could not be answered (%s)", self.id, error.message)
            return False


def revive(data: dict[str, Any], bot: Bot) -> Update:
    """A journaled update as python-telegram-bot's object, bound to ``bot``."""
    update = Update.de_json(copy.deepcopy(data), bot)  # de_json changes what it is given
    if update.callback_query is not None:
        query = ReplayedCallbackQuery.de_json(copy.deepcopy(data["callback_query"]), bot)
        update = Update(update.update_id, callback_query=query)
        update.set_bot(bot)
    return update
