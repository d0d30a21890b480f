"""Telegram's flood limits, with photos first: edits and chat actions yield to messages.

python-telegram-bot's :class:`~telegram.ext.AIORateLimiter` queues every request to a group
behind one limiter (about 20 a minute per group), first come, first served: one member tapping
the Crop toggle quickly filled a group's minute with keyboard edits, and everybody's masked
photos waited behind them. Here, in groups, a keyboard edit waits until the group's budget has
room to spare (:data:`RESERVE` requests stay free for messages), and a chat action ("sending
photo...") that finds no spare room is skipped: it is decoration. A ``RetryAfter`` that outlasts
the retries is logged as one line, not a traceback, and raised for the caller to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

logger = logging.getLogger(__name__)

#: requests of a group's budget kept for messages (photos, keyboards, error texts)
RESERVE = 4
#: how long an edit waits for room before it goes into the ordinary queue anyway
EDIT_PATIENCE_SECONDS = 60.0
SKIPPABLE = frozenset({"sendChatAction"})
#: not messages: Telegram's ~20 a minute per group is about messages, so these bypass the
#: group's budget (a 👀 reaction or an admin check must not delay anyone's photo)
NOT_MESSAGES = frozenset({"setMessageReaction", "getChatMember", "getChatAdministrators"})


def _low_priority(endpoint: str) -> bool:
    return endpoint.startswith("edit") or endpoint in SKIPPABLE


class MessagesFirstRateLimiter(AIORateLimiter):
    """:class:`AIORateLimiter` where, in groups, edits and chat actions give way to messages."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[Any]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[Any]:
        max_retries = rate_limit_args or self._max_retries
        chat_id = data.get("chat_id")
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        group: int | str | bool = False
        if (isinstance(chat_id, int) and chat_id < 0) or isinstance(chat_id, str):
            group = chat_id if endpoint not in NOT_MESSAGES else False
        if group and self._group_max_rate and _low_priority(endpoint):
            limiter = self._get_group_limiter(group)
            if endpoint in SKIPPABLE and not limiter.has_capacity(RESERVE + 1):
                return True  # what Telegram answers to a chat action
            loop = asyncio.get_running_loop()
            deadline = loop.time() + EDIT_PATIENCE_SECONDS
            while not limiter.has_capacity(RESERVE + 1) and loop.time() < deadline:
                await asyncio.sleep(0.25)

        for attempt in range(max_retries + 1):
            try:
                return await self._run_request(
                    chat=chat_id is not None,
                    group=group,
                    allow_paid_broadcast=data.get("allow_paid_broadcast", False),
                    callback=callback,
                    args=args,
                    kwargs=kwargs,
                )
            except RetryAfter as error:
                if attempt == max_retries:
                    logger.warning(
                        "Telegram still says 'retry after %s' after %d retries (%s)",
                        error.retry_after, max_retries, endpoint,
                    )  # fmt: skip
                    raise
                seconds = error._retry_after.total_seconds() + 0.1
                logger.info("flood limit on %s; retrying in %.1f s", endpoint, seconds)
                self._retry_after_event.clear()
                await asyncio.sleep(seconds)
            finally:
                self._retry_after_event.set()
        raise AssertionError("unreachable")
