"""What production does to the bot, done on purpose: real redis-server, real facemask-worker
processes (the real model), the real bot over the fake Telegram server, users tapping.

The scenarios are tests/support/chaos.py's (``./run chaos`` prints their numbers); here each
one asserts that every tap got an answer within the bound, nothing was answered twice, and no
traceback reached any log. One stack (Redis, two workers, the bot in Redis mode) serves the
module, in this order: the worker kill leaves one worker for the full-queue test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot import texts
from tests.support import chaos

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(
    redis_server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[chaos.Stack]:
    async with chaos.stack(tmp_path_factory.mktemp("chaos"), workers=2) as stack:
        yield stack


def assert_every_tap_answered_once(result: chaos.Result, in_flight: int = 0) -> None:
    """Every tap answered; none twice, except (``in_flight``) a reply that was on its way to
    Telegram when the bot was SIGKILLed: the journal cannot know whether Telegram got it, and
    sends it again rather than lose it (docs/operations.md, "Nothing lost, even mid-crash")."""
    taps = result.taps
    assert taps.unanswered == 0, result.line()
    assert taps.duplicates <= in_flight, result.line()
    assert max(taps.seconds) < chaos.ANSWER_WITHIN, result.line()
    assert result.tracebacks == [], result.line()


async def test_redis_restarted_mid_stream(env: chaos.Stack) -> None:
    result = await chaos.redis_restart(env, users=3, taps_each=5)
    assert_every_tap_answered_once(result)
    assert result.taps.taps == 15
    # a job Redis forgot is sent again: users see photos, at worst "tap again" / "try again"
    allowed = {texts.ERRORS["lost"], texts.ERRORS["unreachable"]}
    assert set(result.taps.errors) <= allowed, result.line()
    assert result.taps.photos >= 12, result.line()
    assert result.notes["workers alive"] == 2  # nobody exited
    assert result.notes["workers not back"] == 0
    assert result.notes["workers back within s"] <= 10, result.line()
    for worker in env.workers:  # one line when the outage starts, one when it ends
        assert worker.log().count("lost Redis") == 1, worker.log()[-3000:]


async def test_bot_killed_and_restarted_keeps_every_keyboard(env: chaos.Stack) -> None:
    result = await chaos.bot_kill(env, chats=3)
    assert_every_tap_answered_once(result)
    assert result.taps.photos == result.taps.taps == 4 and not result.taps.errors
    assert result.notes["toggle remembered"] == 1.0


async def test_bot_killed_mid_stream_answers_every_tap_once(env: chaos.Stack) -> None:
    result = await chaos.bot_kill_mid_stream(env, users=3, taps_each=4)
    assert_every_tap_answered_once(result, in_flight=3)  # one tap in flight per user
    assert result.taps.photos == result.taps.taps == 12, result.line()


async def test_redis_and_bot_killed_together_every_old_keyboard_masks(env: chaos.Stack) -> None:
    result = await chaos.redis_and_bot_killed(env, chats=3)
    assert_every_tap_answered_once(result)
    assert result.taps.photos == 3, result.line()


async def test_worker_killed_mid_job_loses_nothing(env: chaos.Stack) -> None:
    # six taps: with three the live worker sometimes took them all before the frozen one
    # claimed any, and nothing was left to retry (CI, session 12)
    result = await chaos.worker_kill(env, taps_count=6)
    assert result.notes["a job was stuck in the frozen worker"], result.line()
    assert_every_tap_answered_once(result)
    assert result.taps.photos == 6 and not result.taps.errors, result.line()
    # the dead worker's job went to the other one within seconds (its claim lapses in 8 s),
    # not after arq's 75 s lock and a "took too long"
    assert result.notes["answered within s of the kill"] < 25, result.line()
    assert "try=2" in env.workers[0].log()  # arq's own word: the retry ran here


async def test_full_queue_answers_busy_and_loses_nothing(env: chaos.Stack) -> None:
    assert env.bot is not None
    await env.bot.stop()
    env.bot.env["QUEUE_SIZE"] = "2"
    await env.bot.start()
    result = await chaos.full_queue(env, taps_count=5)
    assert_every_tap_answered_once(result)
    assert result.taps.errors and set(result.taps.errors) == {texts.ERRORS["busy"]}
    assert result.taps.photos + len(result.taps.errors) == 5
