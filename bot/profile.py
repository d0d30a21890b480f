"""What Telegram shows about the bot, in every shipped language: its command menus and profile.

Each language gets its own command lists (private chats; groups; group admins, who also see
/settings) and descriptions; English is also the default for everyone else. Sent at every
start, all at once; a refusal is logged and the bot serves anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeDefault,
)
from telegram.error import TelegramError

from bot import i18n, texts
from bot.i18n import Translator

logger = logging.getLogger(__name__)

#: which commands each scope's menu lists (Telegram picks the narrowest scope that applies)
SCOPES: tuple[tuple[BotCommandScope, tuple[str, ...]], ...] = (
    (BotCommandScopeDefault(), texts.PRIVATE_COMMANDS),
    (BotCommandScopeAllGroupChats(), texts.GROUP_COMMANDS),
    (BotCommandScopeAllChatAdministrators(), texts.GROUP_ADMIN_COMMANDS),
)


def commands(names: tuple[str, ...], t: Translator) -> list[BotCommand]:
    return [BotCommand(name, t(texts.COMMANDS[name])) for name in names]


async def publish(bot: Bot) -> None:
    """setMyCommands, setMyDescription and setMyShortDescription for every language."""
    calls: list[Awaitable[bool]] = []
    for language in i18n.LANGUAGES:
        t = i18n.translator(language)
        # Telegram takes two-letter codes; no code: the default for every other language
        code = None if language == i18n.DEFAULT_LANGUAGE else i18n.telegram_code(language)
        for scope, names in SCOPES:
            calls.append(bot.set_my_commands(commands(names, t), scope=scope, language_code=code))
        calls.append(bot.set_my_description(t(texts.DESCRIPTION), language_code=code))
        calls.append(bot.set_my_short_description(t(texts.SHORT_DESCRIPTION), language_code=code))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    unexpected = [f for f in failures if not isinstance(f, TelegramError)]
    if unexpected:
        raise unexpected[0]
    for failure in failures[:3]:  # the same refusal repeats per language: a few say enough
        logger.warning("Telegram refused part of the bot's profile: %s", failure)
    logger.info(
        "commands and descriptions set in %d languages (%d of %d calls refused)",
        len(i18n.LANGUAGES), len(failures), len(calls),
    )  # fmt: skip
