"""Webhook mode: Telegram (the fake) posts updates to the bot's own HTTP server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from telegram import Message

from bot import texts
from masks import catalog
from tests.support.bot_processes import START_TIMEOUT, BotProcess, free_port
from tests.support.fake_telegram import FakeTelegram


async def test_webhook_mode(model_env: dict[str, str], tmp_path: Path, face_jpeg: bytes) -> None:
    port = free_port()
    async with FakeTelegram(bot_username="facemask_hook_bot") as telegram:
        bot = BotProcess(
            telegram,
            tmp_path,
            WORKERS="1",
            WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            WEBHOOK_SECRET="hook-secret-123",
            **model_env,
        )
        bot.start_process()
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not telegram.calls("setWebhook"):
                assert bot.alive() and time.monotonic() < deadline, bot.log()[-3000:]
                await asyncio.sleep(0.1)
            [set_webhook] = telegram.calls("setWebhook")
            assert set_webhook.params["url"] == f"http://127.0.0.1:{port}/hook"
            assert set_webhook.params["secret_token"] == "hook-secret-123"

            user = telegram.user("Wes")
            chat = telegram.private_chat(user)
            start = await telegram.send_text(chat, user, "/start")
            assert (await telegram.wait_reply(start, timeout=60)).text == texts.START.format(
                bot=telegram.bot_user.username
            )
            photo = await telegram.send_photo(chat, user, face_jpeg)
            keyboard = await telegram.wait_reply(photo, lambda m: m.reply_markup is not None)
            await telegram.press(user, keyboard, "3 ")
            result: Message = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
            assert catalog.get(3).name in result.caption
            assert not telegram.calls("getUpdates")
        finally:
            assert await bot.stop() == 0, bot.log()[-3000:]
        bot.assert_clean_log()
        assert "hook-secret-123" not in bot.log()
