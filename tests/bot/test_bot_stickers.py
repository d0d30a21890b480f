"""The real bot's "Sticker" button: the user's own set, made then added to; Telegram's refusals."""

from __future__ import annotations

import io

from PIL import Image
from telegram import Chat, Message, User

from bot import stickers, texts
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import STATIC_SET_LIMIT, FakeTelegram, has_keyboard

BOT = "facemask_test_bot"


async def masked_photo(
    telegram: FakeTelegram, chat: Chat, user: User, face_jpeg: bytes, caption: str | None = None
) -> Message:
    """A photo masked with mask 1: the result, which carries the Sticker button."""
    photo = await telegram.send_photo(chat, user, face_jpeg, caption=caption)
    if caption is None:
        keyboard = await telegram.wait_reply(photo, has_keyboard)
        await telegram.press(user, keyboard, "1 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    if "⋯" in str(result.reply_markup):  # a group's compact keyboard: Sticker is behind More
        await telegram.press(user, result, texts.MORE)
        await telegram.wait_for(
            lambda: "🏷" in str(telegram.message(chat.id, result.message_id).reply_markup)
        )
    return result


async def sticker_reply(telegram: FakeTelegram, user: User, result: Message, after: int = 0):
    await telegram.press(user, result, "🏷 Sticker")
    return await telegram.wait_reply(result, lambda m: bool(m.text), timeout=60, after=after)


async def test_the_first_sticker_makes_the_set_the_next_is_added(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Stella")
    chat = telegram.private_chat(user)
    result = await masked_photo(telegram, chat, user, face_jpeg)
    assert [b.text for b in result.reply_markup.inline_keyboard[-1]] == ["🏷 Sticker"]

    name = stickers.set_name(user.id, BOT)
    link = f"https://t.me/addstickers/{name}"
    reply = await sticker_reply(telegram, user, result)
    assert reply.text == texts.STICKER_ADDED.format(link=link)
    made = telegram.state.sticker_sets[name]
    assert made.owner == user.id and len(made.stickers) == 1
    with Image.open(io.BytesIO(telegram.state.files[made.stickers[0]].data)) as sticker:
        assert sticker.format == "WEBP" and sticker.mode == "RGBA" and max(sticker.size) == 512

    reply = await sticker_reply(telegram, user, result, after=1)
    assert reply.text == texts.STICKER_ADDED.format(link=link)
    assert len(telegram.state.sticker_sets[name].stickers) == 2
    creations = [c for c in telegram.calls("createNewStickerSet") if c.params["name"] == name]
    assert len(creations) == 1


async def test_a_full_set_says_what_to_do(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Fay")
    chat = telegram.private_chat(user)
    name = stickers.set_name(user.id, BOT)
    telegram.fill_sticker_set(user, name, STATIC_SET_LIMIT)  # made before the bot knew
    result = await masked_photo(telegram, chat, user, face_jpeg)
    reply = await sticker_reply(telegram, user, result)
    assert reply.text == texts.STICKER_SET_FULL.format(link=f"https://t.me/addstickers/{name}")
    assert len(telegram.state.sticker_sets[name].stickers) == STATIC_SET_LIMIT


async def test_in_a_group_the_set_is_the_tappers_who_must_have_started_the_bot(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    ann, bob = telegram.user("Ann"), telegram.user("Bob")
    group = telegram.group("Stickers")
    result = await masked_photo(telegram, group, ann, face_jpeg, caption=f"/mask@{BOT} 1")
    start_first = texts.STICKER_START_FIRST.format(bot=BOT)

    reply = await sticker_reply(telegram, bob, result)  # Bob never wrote to the bot
    assert reply.text == start_first
    assert stickers.set_name(bob.id, BOT) not in telegram.state.sticker_sets

    await telegram.send_text(telegram.private_chat(bob), bob, "/start")
    telegram.fail_next["uploadstickerfile"] = (403, "Forbidden: bot was blocked by the user")
    reply = await sticker_reply(telegram, bob, result, after=1)
    assert reply.text == start_first

    reply = await sticker_reply(telegram, bob, result, after=2)
    name = stickers.set_name(bob.id, BOT)
    assert reply.text == texts.STICKER_ADDED.format(link=f"https://t.me/addstickers/{name}")
    assert telegram.state.sticker_sets[name].owner == bob.id
    assert stickers.set_name(ann.id, BOT) not in telegram.state.sticker_sets
