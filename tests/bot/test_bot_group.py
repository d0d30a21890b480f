"""The real bot in a group where it is an admin: it sees every message, answers those for it.

(What reaches a bot that is not an admin, with privacy mode on, is in test_bot_groups_privacy.)
"""

from __future__ import annotations

import asyncio

from bot import texts
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard


async def test_group_photos_addressed_to_the_bot(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    alice, bob = telegram.user("Alice"), telegram.user("Bob")
    group = telegram.group("Friends", bot_admin=True)  # so bare /mask and mentions reach it
    username = telegram.bot_user.username

    ignored = await telegram.send_photo(group, alice, face_jpeg, caption="holiday!")
    by_caption = await telegram.send_photo(group, alice, face_jpeg, caption="me /mask")
    by_mention = await telegram.send_photo(group, bob, face_jpeg, caption=f"@{username} please")
    keyboard = await telegram.wait_reply(by_caption, has_keyboard)
    await telegram.wait_reply(by_mention, has_keyboard)

    # /mask as a reply to the photo nobody addressed to the bot: now it gets a keyboard
    await asyncio.sleep(0.5)  # give the bot every chance to (wrongly) answer the ignored photo
    assert telegram.replies_to(ignored) == []
    command = await telegram.send_text(group, bob, f"/mask@{username}", reply_to=ignored)
    late_keyboard = await telegram.wait_reply(ignored, has_keyboard)
    assert telegram.replies_to(command) == []  # the keyboard goes under the photo

    # anyone in the group may press anyone's buttons
    await telegram.press(bob, keyboard, "4 ")
    result = await telegram.wait_reply(by_caption, lambda m: bool(m.photo), timeout=60)
    assert catalog.get(4).name in result.caption
    await telegram.press(alice, late_keyboard, "6 ")
    result = await telegram.wait_reply(ignored, lambda m: bool(m.photo), timeout=60)
    assert catalog.get(6).name in result.caption

    # /mask with nothing to work on explains itself
    lonely = await telegram.send_text(group, alice, "/mask")
    hint = (await telegram.wait_reply(lonely)).text  # in the form privacy mode lets through
    assert hint == texts.MASK_HINT.format(command=f"/mask@{username}")
    # other bots' commands and other people's mentions are not for us
    other = await telegram.send_photo(group, alice, face_jpeg, caption="/mask@other_bot @carol")
    await telegram.send_text(group, alice, "/mask", reply_to=other)
    await telegram.wait_reply(other, has_keyboard)
    assert len(telegram.replies_to(other)) == 1
