"""The real bot when Telegram cannot be reached, answers 409 or refuses the webhook, or is
reached through a proxy (the fake Telegram server going away and coming back)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from telegram import Message

from bot.connection import AnotherInstance, TelegramLink, WebhookRefused, wait_for_telegram
from bot.settings import Settings
from masks import catalog
from tests.support.bot_processes import START_TIMEOUT, BotProcess, free_port
from tests.support.fake_telegram import FakeTelegram, has_keyboard
from tests.support.forward_proxy import http_proxy

WAITING_LINE = "Telegram cannot be reached yet (try"
OUTAGE_STARTS = "retrying quietly until it answers"
OUTAGE_ENDS = "Telegram answers again"


async def wait_until_polling(bot: BotProcess, telegram: FakeTelegram) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not telegram.calls("getUpdates"):
        assert bot.alive(), bot.log()[-3000:]
        assert time.monotonic() < deadline, bot.log()[-3000:]
        await asyncio.sleep(0.1)


async def masked_photo(
    telegram: FakeTelegram, name: str, face_jpeg: bytes, mask_id: int = 3
) -> Message:
    """A user sends a photo and picks a mask: the bot's masked photo."""
    user = telegram.user(name)
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard, timeout=90)
    await telegram.press(user, keyboard, f"{mask_id} ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=90)
    assert catalog.get(mask_id).name in result.caption
    return result


async def test_waits_for_telegram_at_start_and_through_an_outage(
    model_env: dict[str, str], tmp_path: Path, face_jpeg: bytes
) -> None:
    async with FakeTelegram(bot_username="facemask_patient_bot") as telegram:
        await telegram.go_away()  # the container's network is not up yet
        heartbeat = str(tmp_path / "alive")
        bot = BotProcess(
            telegram, tmp_path, WORKERS="1", POLL_TIMEOUT="2", HEARTBEAT_FILE=heartbeat, **model_env
        )
        bot.start_process()
        try:
            await asyncio.sleep(5)
            assert bot.alive(), bot.log()[-3000:]
            health = await asyncio.to_thread(bot.healthcheck)
            assert health.returncode == 1
            assert "waiting for Telegram" in health.stderr, health
            await telegram.come_back()
            await wait_until_polling(bot, telegram)
            await masked_photo(telegram, "Early", face_jpeg)

            waiting = [line for line in bot.log().splitlines() if WAITING_LINE in line]
            # one line per try (at 0, 1 and 3 s; a try at 7 s finds it up), each naming the
            # reason and when the next try comes
            assert 2 <= len(waiting) <= 4, bot.log()
            assert [int(re.findall(r"\(try (\d+)\)", line)[0]) for line in waiting] == list(
                range(1, len(waiting) + 1)
            )
            assert all("ConnectError" in line and "next try in" in line for line in waiting)

            # Telegram goes away for 12 s while the bot runs; a user sends a photo meanwhile
            await telegram.go_away()
            user = telegram.user("Patient")
            chat = telegram.private_chat(user)
            await asyncio.sleep(2)
            photo = await telegram.send_photo(chat, user, face_jpeg)
            await asyncio.sleep(6)
            health = await asyncio.to_thread(bot.healthcheck)
            assert health.returncode == 0, health  # alive: it waits, a restart would not help
            assert "waiting for Telegram since" in health.stdout, health
            await asyncio.sleep(4)
            await telegram.come_back()
            keyboard = await telegram.wait_reply(photo, has_keyboard, timeout=90)  # not lost
            await telegram.press(user, keyboard, "5 ")
            result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=90)
            assert catalog.get(5).name in result.caption
            health = await asyncio.to_thread(bot.healthcheck)
            assert health.returncode == 0 and health.stdout == "", health
        finally:
            assert await bot.stop() == 0, bot.log()[-3000:]
        bot.assert_clean_log()
        log = bot.log()
        # the outage is two lines: when it started, when it ended
        assert sum(OUTAGE_STARTS in line for line in log.splitlines()) == 1, log
        assert sum(OUTAGE_ENDS in line for line in log.splitlines()) == 1, log
        assert "Network Retry Loop" not in log and "Exception happened" not in log, log


async def test_another_copy_polling_ends_the_bot_in_one_line(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    async with FakeTelegram(bot_username="facemask_twin_bot") as telegram:
        telegram.fail_next["getupdates"] = (
            409,
            "Conflict: terminated by other getUpdates request; "
            "make sure that only one bot instance is running",
        )
        bot = BotProcess(telegram, tmp_path, WORKERS="1", POLL_TIMEOUT="2", **model_env)
        bot.start_process()
        try:
            status = await bot.wait_exit(START_TIMEOUT)
        finally:
            await bot.stop()
        log = bot.log()
        assert status == AnotherInstance.exit_status, log[-3000:]
        last = log.strip().splitlines()[-1]
        assert last.startswith("facemask-bot: another copy of this bot is using the same token")
        assert "only one polling bot" in last and "WEBHOOK_URL" in last
        bot.assert_clean_log()


async def test_webhook_url_telegram_refuses_ends_the_bot_in_one_line(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    async with FakeTelegram(bot_username="facemask_hookless_bot") as telegram:
        refusal = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        telegram.fail_next["setwebhook"] = (400, refusal)
        url = f"http://127.0.0.1:{port}/hook"
        bot = BotProcess(
            telegram, tmp_path, WORKERS="1", WEBHOOK_URL=url, WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port), **model_env,
        )  # fmt: skip
        bot.start_process()
        try:
            status = await bot.wait_exit(START_TIMEOUT)
        finally:
            await bot.stop()
        log = bot.log()
        assert status == WebhookRefused.exit_status, log[-3000:]
        last = log.strip().splitlines()[-1]
        assert last.startswith(f"facemask-bot: Telegram refused WEBHOOK_URL {url}: "), log[-3000:]
        assert "an https url must be provided for webhook" in last.lower()  # Telegram's reason
        assert len(telegram.calls("setWebhook")) == 1  # refused is refused: not tried again
        bot.assert_clean_log()


# ----------------------------------------------------------------------------- the proxy


async def test_the_bot_goes_through_telegram_proxy(
    model_env: dict[str, str], tmp_path: Path, face_jpeg: bytes
) -> None:
    async with FakeTelegram(bot_username="facemask_proxied_bot") as telegram, http_proxy() as proxy:
        bot = BotProcess(
            telegram, tmp_path, WORKERS="1", POLL_TIMEOUT="2", TELEGRAM_PROXY=proxy.url,
            **model_env,
        )  # fmt: skip
        await bot.start()
        try:
            await masked_photo(telegram, "Behind", face_jpeg)
        finally:
            assert await bot.stop() == 0, bot.log()[-3000:]
        methods = {line.rsplit("/", 1)[-1] for line in proxy.seen if "/bot" in line}
        assert {"getMe", "deleteWebhook", "getUpdates", "getFile"} <= methods, proxy.seen
        assert any("/file/bot" in line for line in proxy.seen), proxy.seen  # the download
        # every call went through it: as many as Telegram saw
        assert len([line for line in proxy.seen if "/file/bot" not in line]) == len(
            telegram.calls()
        )
        bot.assert_clean_log()
        assert proxy.password not in bot.log()


async def test_without_telegram_proxy_the_standard_proxy_variables_are_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeTelegram() as telegram, http_proxy() as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "TELEGRAM_PROXY"):
            monkeypatch.delenv(name, raising=False)
        # the fake is plain HTTP, so httpx reads HTTP_PROXY (HTTPS_PROXY for api.telegram.org)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        settings = Settings(
            telegram_bot_token=telegram.token,
            telegram_base_url=telegram.base_url,
            telegram_base_file_url=telegram.base_file_url,
        )
        await wait_for_telegram(settings, TelegramLink(None))
    assert [line.rsplit("/", 1)[-1] for line in proxy.seen] == ["getMe"]
