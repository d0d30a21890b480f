"""The real bot's /maskme: the sender's profile photo with the keyboard under it."""

from __future__ import annotations

import io

from PIL import Image

from bot import texts
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard

BOT = "facemask_test_bot"


async def test_maskme_in_private_and_in_a_group(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Mia")
    telegram.set_profile_photo(user, face_jpeg)
    command = await telegram.send_text(telegram.private_chat(user), user, "/maskme")
    offered = await telegram.wait_reply(command, has_keyboard)
    assert offered.photo and offered.caption == texts.CHOOSE
    files = telegram.state.files
    profile = telegram.state.profile_photos[user.id][-1].file_id
    assert files[offered.photo[-1].file_id].data == files[profile].data
    await telegram.press(user, offered, "2 ")
    result = await telegram.wait_reply(
        command, lambda m: bool(m.photo) and m is not offered, after=1, timeout=60
    )
    assert catalog.get(2).name in result.caption
    data = telegram.state.files[result.photo[-1].file_id].data
    assert Image.open(io.BytesIO(data)).size == (512, 512)

    group = telegram.group("Profiles")
    command = await telegram.send_text(group, user, f"/maskme@{BOT}")
    offered = await telegram.wait_reply(command, has_keyboard)
    await telegram.press(user, offered, "7 ")
    result = await telegram.wait_reply(command, lambda m: bool(m.photo), after=1, timeout=60)
    assert catalog.get(7).name in result.caption


async def test_no_profile_photo_or_a_hidden_one_is_said(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    nobody, private = telegram.user("Noa"), telegram.user("Priv")
    telegram.set_profile_photo(private, face_jpeg, hidden=True)
    for user in (nobody, private):
        command = await telegram.send_text(telegram.private_chat(user), user, "/maskme")
        reply = await telegram.wait_reply(command)
        assert reply.text == texts.MASKME_NO_PHOTO and not reply.reply_markup
