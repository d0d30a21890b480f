"""Telegram's limits: the group flood limit (429 with retry_after), and the lengths of texts,
captions, alerts, button data and the bot's profile."""

from __future__ import annotations

import math
import time
from typing import Any

from telegram.constants import (
    BotCommandLimit,
    BotDescriptionLimit,
    CallbackQueryLimit,
    InlineKeyboardButtonLimit,
    MessageLimit,
)

from tests.support.fake_telegram.common import (
    ApiError,
    utf16_length,
)

#: what Telegram refuses as too long, per parameter: (limit in UTF-16 units, its error)
LENGTHS = {
    "text": (MessageLimit.MAX_TEXT_LENGTH, "Bad Request: message is too long"),
    "caption": (MessageLimit.CAPTION_LENGTH, "Bad Request: message caption is too long"),
    "description": (BotDescriptionLimit.MAX_DESCRIPTION_LENGTH, "Bad Request: BOT_ABOUT_INVALID"),
    "short_description": (
        BotDescriptionLimit.MAX_SHORT_DESCRIPTION_LENGTH, "Bad Request: BOT_ABOUT_INVALID"
    ),
}  # fmt: skip


def check_lengths(method: str, params: dict[str, Any]) -> None:
    if method == "answercallbackquery":
        limit = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH
        if utf16_length(params.get("text") or "") > limit:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return
    for name, (limit, error) in LENGTHS.items():
        if isinstance(params.get(name), str) and utf16_length(params[name]) > limit:
            raise ApiError(400, error)
    for command in params.get("commands") or []:
        if not 1 <= len(command["description"]) <= BotCommandLimit.MAX_DESCRIPTION:
            raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
    if method.startswith("edit"):
        check_markup(params.get("reply_markup"))


def check_markup(markup: dict[str, Any] | None) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not (
                1 <= len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
            ):
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


class RateLimits:
    """Telegram's limits (a part of :class:`FakeTelegram`)."""

    def _count_group_message(self, chat_id: int, count: int = 1) -> None:
        """Telegram's flood control for one group: a bucket of ``group_messages`` that empties
        over ``group_window`` seconds; a message that would overflow it is refused with 429."""
        if chat_id >= 0 or not self.group_messages:
            return
        now = time.monotonic()
        level, then = self.state.flood.get(chat_id, (0.0, now))
        level = max(0.0, level - (now - then) * self.group_messages / self.group_window)
        if level + count > self.group_messages + 1e-9:
            self.state.flood[chat_id] = (level, now)
            wait = (level + count - self.group_messages) * self.group_window / self.group_messages
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        self.state.flood[chat_id] = (level + count, now)
