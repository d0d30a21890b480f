"""A reaction on the request while its photo is masked: 👀 instead of chatter.

The bot reacts to the message that asked (a photo, a ``/mask 3``) when the work starts and
takes the reaction back when the answer is out. Where a chat allows no reactions (its settings,
or a kind of message that takes none) Telegram refuses; the chat is then remembered for as long
as the bot runs and only the chat action ("sending photo...") shows progress there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import Bot
from telegram.constants import ReactionEmoji
from telegram.error import BadRequest, TelegramError

logger = logging.getLogger(__name__)

#: one of the emoji Telegram lets bots react with (constants.ReactionEmoji)
WORKING = ReactionEmoji.EYES


@contextlib.asynccontextmanager
async def reacting(
    bot: Bot, chat_id: int, message_id: int, refused: set[int]
) -> AsyncIterator[None]:
    """React to ``message_id`` while the block runs; ``refused`` holds chats that said no."""
    reacted = False
    if chat_id not in refused:
        try:
            reacted = bool(await bot.set_message_reaction(chat_id, message_id, WORKING))
        except BadRequest as error:
            if "reaction" in error.message.lower():  # REACTION_INVALID: reactions are off here
                refused.add(chat_id)  # do not ask again on every photo
            logger.info("no reaction in chat %s (%s); the chat action only", chat_id, error)
        except TelegramError as error:  # a network blip: the chat action shows progress anyway
            logger.info("could not react in chat %s: %s", chat_id, error)
    try:
        yield
    finally:
        if reacted:
            with contextlib.suppress(TelegramError):
                await bot.set_message_reaction(chat_id, message_id)  # no reaction: takes it back
