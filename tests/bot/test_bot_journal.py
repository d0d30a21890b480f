"""bot.journal: an update is on disk before Telegram is acknowledged, leaves once answered, is
handled again after a crash (once, even when Telegram sends it again), and a replayed tap's
refused answer does not stop its work. The end-to-end proof, a SIGKILLed bot losing nothing,
is in tests/chaos."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest
from telegram import CallbackQuery, Chat, Message, Update, User
from telegram.error import BadRequest

from bot.journal import (
    JOURNAL_NAME,
    MAX_TRIES,
    Journal,
    JournaledQueue,
    ReplayedCallbackQuery,
    revive,
)

NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
CHAT = Chat(5, Chat.PRIVATE)
USER = User(7, "Ana", False)


def tap(update_id: int) -> Update:
    keyboard = Message(20, NOW, CHAT, reply_to_message=Message(12, NOW, CHAT))
    query = CallbackQuery(f"q{update_id}", USER, "ci", data="3 :12", message=keyboard)
    return Update(update_id, callback_query=query)


def text(update_id: int) -> Update:
    return Update(update_id, message=Message(update_id, NOW, CHAT, from_user=USER, text="hi"))


async def test_what_was_taken_on_and_not_answered_is_handed_back_after_a_crash(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / JOURNAL_NAME)
    for update in (tap(1), text(2), tap(3)):
        assert await journal.record(update)
    await journal.complete(2)
    # no close: what a SIGKILL leaves behind is already on disk
    after_crash = Journal(tmp_path / JOURNAL_NAME)
    unanswered = [revive(data, None) for data in await after_crash.take_unanswered()]
    assert [u.update_id for u in unanswered] == [1, 3]
    assert unanswered[0].callback_query.data == "3 :12"
    assert unanswered[0].callback_query.message.reply_to_message.message_id == 12
    await after_crash.close()


async def test_an_update_telegram_sends_again_is_handled_once(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL_NAME)
    queue = JournaledQueue(journal)
    await queue.put(tap(1))
    await journal.complete(1)
    await queue.put(tap(1))  # answered, then sent again (acknowledged too late)
    await queue.put(text(2))
    restarted = JournaledQueue(Journal(tmp_path / JOURNAL_NAME))
    await restarted.put(text(2))  # journaled, unanswered: the replay handles it, not this copy
    assert [queue.get_nowait().update_id for _ in range(queue.qsize())] == [1, 2]
    assert restarted.empty()
    await journal.close()


async def test_inline_queries_are_not_journaled(tmp_path: Path) -> None:
    from telegram import InlineQuery

    journal = Journal(tmp_path / JOURNAL_NAME)
    queue = JournaledQueue(journal)
    await queue.put(Update(9, inline_query=InlineQuery("iq", USER, "", "")))
    assert queue.qsize() == 1 and journal.unanswered() == []
    await journal.close()


async def test_an_update_that_keeps_crashing_the_bot_is_given_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / JOURNAL_NAME
    assert await Journal(path).record(text(4))
    for _ in range(MAX_TRIES):  # each start hands it back; none answers it
        assert [u["update_id"] for u in await Journal(path).take_unanswered()] == [4]
    assert await Journal(path).take_unanswered() == []
    assert "update 4 was handled 3 times without an answer" in caplog.text
    # its id is kept: Telegram sending it again is still recognised
    assert not await Journal(path).record(text(4))


async def test_answered_ids_are_forgotten_after_two_days(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    journal = Journal(path)
    await journal.record(text(1))
    await journal.complete(1)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE updates SET received = received - 3 * 86400")
    db.close()
    await Journal(path).take_unanswered()
    assert await Journal(path).record(text(1))  # a new update that happens to reuse the id


async def test_a_replayed_taps_refused_answer_does_not_stop_its_work() -> None:
    class RefusingBot:
        async def answer_callback_query(self, *args: object, **kwargs: object) -> bool:
            raise BadRequest("Query is too old and response timeout expired")

    update = revive(tap(1).to_dict(), RefusingBot())  # type: ignore[arg-type]
    assert isinstance(update.callback_query, ReplayedCallbackQuery)
    assert await update.callback_query.answer("Masking...") is False
    with pytest.raises(BadRequest):  # a live tap's refused answer is still an error
        live = CallbackQuery.de_json(tap(1).to_dict()["callback_query"], RefusingBot())  # type: ignore[arg-type]
        await live.answer()
