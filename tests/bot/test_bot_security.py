"""Security: webhook secrets, secrets in logs, buttons that try to reach another chat's photo,
buttons we never made, and no pictures in the state or the log."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import ClientSession
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from bot import texts
from tests.support.bot_processes import START_TIMEOUT, BotProcess, free_port
from tests.support.fake_telegram import FakeTelegram, has_keyboard

PICTURE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"JFIF")


async def test_webhook_secret_is_made_up_checked_and_never_logged(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    async with FakeTelegram(bot_username="facemask_secret_bot") as telegram:
        bot = BotProcess(
            telegram,
            tmp_path,
            WORKERS="1",
            WEBHOOK_URL=hook,
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            LOG_LEVEL="DEBUG",  # every logger, httpx and telegram included
            **model_env,
        )  # no WEBHOOK_SECRET: the bot makes one up
        bot.start_process()
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not telegram.calls("setWebhook"):
                assert bot.alive() and time.monotonic() < deadline, bot.log()[-3000:]
                await asyncio.sleep(0.1)
            secret = telegram.calls("setWebhook")[0].params["secret_token"]
            assert len(secret) >= 32

            # requests without the secret, or with another one, are refused and not handled
            user = telegram.user("Mallory")
            chat = telegram.private_chat(user)
            forged = await telegram.send_text(chat, user, "/help")  # Telegram posts this one
            await telegram.wait_reply(forged, timeout=60)
            update = Update(10_000, message=forged).to_dict()
            async with ClientSession() as http:
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                    async with http.post(hook, json=update, headers=headers) as response:
                        assert response.status == 403
            await asyncio.sleep(1.0)
            assert len(telegram.replies_to(forged)) == 1  # only the genuine one was answered
        finally:
            assert await bot.stop() == 0, bot.log()[-3000:]
    log = bot.log()
    assert " DEBUG " in log and "telegram" in log  # it did log at DEBUG
    bot.assert_clean_log()  # no traceback, no token
    assert secret not in log


async def test_buttons_reach_only_their_own_photo_in_their_own_chat(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes, blank_png: bytes
) -> None:
    victim, attacker = telegram.user("Vic"), telegram.user("Ann")
    victim_chat, attacker_chat = telegram.private_chat(victim), telegram.private_chat(attacker)
    for _ in range(3):  # message ids are per chat: keep the attacker's apart from the victim's
        await telegram.send_text(attacker_chat, attacker, "hi")
    secret_photo = await telegram.send_photo(victim_chat, victim, face_jpeg)
    await telegram.wait_reply(secret_photo, has_keyboard)
    own_photo = await telegram.send_photo(attacker_chat, attacker, blank_png)
    own_keyboard = await telegram.wait_reply(own_photo, has_keyboard)
    other_photo = await telegram.send_photo(attacker_chat, attacker, blank_png)
    await telegram.wait_reply(other_photo, has_keyboard)
    photos_before = len(telegram.calls("sendPhoto")) + len(telegram.calls("sendDocument"))

    forgeries = {
        "another chat's photo id": f"mask:1:{secret_photo.message_id}",
        "another photo of this chat": f"mask:1:{other_photo.message_id}",
        "a toggle for another chat's photo": f"crop:{secret_photo.message_id}",
        "data we never made": "mask:1:x; DROP TABLE",
        "nonsense": "hello",
    }
    for label, data in forgeries.items():
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)]])
        telegram._record(
            Message.de_json({**own_keyboard.to_dict(), "reply_markup": markup.to_dict()}, None)
        )
        query = await telegram.press(attacker, own_keyboard, label)
        answer = await telegram.wait_for(lambda q=query: telegram.state.callback_answers.get(q))
        assert answer.get("text") == texts.PHOTO_GONE, label
    await asyncio.sleep(1.0)
    after = len(telegram.calls("sendPhoto")) + len(telegram.calls("sendDocument"))
    assert after == photos_before  # no photo went anywhere
    assert len(telegram.from_bot(victim_chat)) == 1  # the victim's chat: its keyboard only


async def test_a_button_on_an_inline_message_is_answered(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    """Inline messages (and very old ones) come without a message: answered, no AttributeError."""
    user = telegram.user("Ines")
    query = CallbackQuery("inline-1", user, "instance", data="mask:1:5", inline_message_id="i1")
    await telegram._push(Update(99_999, callback_query=query))
    answer = await telegram.wait_for(lambda: telegram.state.callback_answers.get("inline-1"))
    assert answer.get("text") == texts.PHOTO_GONE
    await asyncio.sleep(0.5)
    assert "AttributeError" not in bot.log()


async def test_no_picture_in_the_saved_state_or_the_log(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Pia")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "4 ")
    await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    state_files = [p for p in (bot.workdir / "state").iterdir() if p.is_file()]
    assert any(p.name.startswith("facemask-bot.sqlite3") for p in state_files)
    for path in [*state_files, bot.log_path]:
        data = path.read_bytes()
        assert not any(sig in data for sig in PICTURE_SIGNATURES), path.name
