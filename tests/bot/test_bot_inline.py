"""The real bot's inline mode: the user's masked photos and profile photo, filtered by mask."""

from __future__ import annotations

import asyncio
import time

from bot import inline
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard


async def test_inline_offers_recent_photos_then_the_profile_photo_in_every_mask(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Ines")
    telegram.set_profile_photo(user, face_jpeg)
    empty = await telegram.inline_answer(await telegram.inline_query(user, ""))
    assert empty["results"] == [] and empty["is_personal"] in (True, "true")
    assert empty["button"]["start_parameter"] == inline.START_PARAMETER

    # the first query also had the profile photo masked and posted to the storage chat
    storage = int(bot.env["INLINE_CACHE_CHAT_ID"])
    await telegram.wait_for(
        lambda: len(telegram.from_bot(storage)) >= 7, timeout=120, what="the storage album"
    )
    avatar = {m.photo[-1].file_id for m in telegram.from_bot(storage)[-7:]}

    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "1 ")
    await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    await telegram.press(user, keyboard, "7 ")
    villain = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60, after=2)

    # the bot records a masked photo for inline mode once Telegram has it: the reply above can
    # arrive a moment before that, so ask again until it is there (at most 10 s)
    deadline = time.monotonic() + 10
    while True:
        started = time.perf_counter()
        answer = await telegram.inline_answer(await telegram.inline_query(user, ""))
        files = [r["photo_file_id"] for r in answer["results"]]
        if villain.photo[-1].file_id in files or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    print(f"inline answer with cached results: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert set(files[:7]) == avatar  # the profile photo in all seven masks first
    assert files[7] == villain.photo[-1].file_id and len(files) == 9  # then newest first

    for query, mask_id in (("villain", 7), ("7", 7), ("злодей", 7), ("1", 1), ("surg", 1)):
        answer = await telegram.inline_answer(await telegram.inline_query(user, query))
        captions = [r["caption"] for r in answer["results"]]
        assert len(captions) == 2, (query, captions)  # the profile photo's and a recent one
        assert all(catalog.get(mask_id).name in c for c in captions), (query, captions)
    nothing = await telegram.inline_answer(await telegram.inline_query(user, "dragon"))
    assert nothing["results"] == []

    # the results' button opens the private chat with /start mask
    start = await telegram.send_text(chat, user, f"/start {inline.START_PARAMETER}")
    assert "Send me a photo" in (await telegram.wait_reply(start)).text
