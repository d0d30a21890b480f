"""Inline mode: users type @bot, the bot answers (answerInlineQuery)."""

from __future__ import annotations

import re
from typing import Any

from telegram import (
    InlineQuery,
    Update,
    User,
)
from telegram.constants import (
    InlineQueryLimit,
)

from tests.support.fake_telegram.common import (
    ApiError,
)


class Inline:
    """Inline mode (a part of :class:`FakeTelegram`)."""

    async def inline_query(self, user: User, query: str = "") -> str:
        """``user`` types ``@bot query`` somewhere: an inline query; its id."""
        query_id = str(next(self._ids))
        inline = InlineQuery(query_id, user, query, "", chat_type="sender")
        await self._push(Update(update_id=next(self._update_ids), inline_query=inline))
        return query_id

    async def inline_answer(self, query_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """answerInlineQuery's parameters for that query, once the bot has answered."""
        return await self.wait_for(
            lambda: self.state.inline_answers.get(query_id), timeout, "an inline answer"
        )

    def _m_answerinlinequery(self, params: dict[str, Any]) -> bool:
        query_id = params["inline_query_id"]
        if query_id in self.state.inline_answers:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        results = params.get("results") or []
        ids = [str(result.get("id", "")) for result in results]
        if len(results) > InlineQueryLimit.RESULTS or len(set(ids)) < len(ids):
            raise ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
        if any(not 1 <= len(i.encode()) <= 64 for i in ids):
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        for result in results:
            if result.get("photo_file_id") not in self.state.files:
                raise ApiError(400, "Bad Request: PHOTO_INVALID")
        start = (params.get("button") or {}).get("start_parameter")
        if start is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", start):
            raise ApiError(400, "Bad Request: START_PARAM_INVALID")
        self.state.inline_answers[query_id] = params
        return True
