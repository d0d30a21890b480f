"""The fake Telegram server answers python-telegram-bot's own Bot the way Telegram would."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.error import BadRequest, InvalidToken, RetryAfter

from tests.support.fake_telegram import FakeTelegram


async def test_the_methods_the_bot_uses(face_jpeg: bytes) -> None:
    async with FakeTelegram() as telegram:
        user = telegram.user("Kim")
        chat = telegram.private_chat(user)
        photo = await telegram.send_photo(chat, user, face_jpeg, caption="hi @someone /mask")
        assert [e.type for e in photo.caption_entities] == ["mention", "bot_command"]

        bot = Bot(telegram.token, base_url=telegram.base_url, base_file_url=telegram.base_file_url)
        async with bot:
            assert bot.username == telegram.bot_user.username  # getMe
            [update] = await bot.get_updates(timeout=1)
            assert update.message.photo[-1].file_id == photo.photo[-1].file_id
            assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()

            data = await (await bot.get_file(photo.photo[-1].file_id)).download_as_bytearray()
            assert bytes(data) == telegram.state.files[photo.photo[-1].file_id].data

            markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
            sent = await bot.send_message(
                chat.id, "pick", reply_markup=markup, reply_to_message_id=photo.message_id
            )
            assert sent.reply_to_message.message_id == photo.message_id
            edited = await bot.edit_message_text(
                "picked", chat.id, sent.message_id, reply_markup=markup
            )
            assert edited.text == "picked" and telegram.history(chat)[-1].text == "picked"
            with pytest.raises(BadRequest, match="not modified"):
                await bot.edit_message_text("picked", chat.id, sent.message_id, reply_markup=markup)

            picture = await bot.send_photo(chat.id, face_jpeg, caption="one")
            assert picture.photo[-1].width == 512
            recaptioned = await bot.edit_message_caption(chat.id, picture.message_id, caption="two")
            assert recaptioned.caption == "two"
            replaced = await bot.edit_message_media(
                InputMediaPhoto(face_jpeg, caption="three"), chat.id, picture.message_id
            )
            assert replaced.caption == "three"
            document = await bot.send_document(chat.id, b"%PDF-1.4", filename="a.pdf")
            assert document.document.mime_type == "application/pdf"

            query = await telegram.press(user, sent, "A")
            [update] = await bot.get_updates(offset=update.update_id + 1, timeout=1)
            assert update.callback_query.data == "a" and update.callback_query.id == query
            assert await bot.answer_callback_query(query, text="ok")
            assert telegram.state.callback_answers[query]["text"] == "ok"
        assert telegram.state.unknown_methods == []

        with pytest.raises(InvalidToken):
            async with Bot("1:wrong", base_url=telegram.base_url):
                pass


async def test_privacy_mode_and_the_flood_limit_as_telegram_has_them(face_jpeg: bytes) -> None:
    async with FakeTelegram(group_messages=20, group_window=60) as telegram:
        ann, boss = telegram.user("Ann"), telegram.user("Boss")
        group = telegram.group("Group", admins=(boss,))
        me = telegram.bot_user.username
        sent = [
            await telegram.send_photo(group, ann, face_jpeg, caption="/mask"),
            await telegram.send_photo(group, ann, face_jpeg, caption=f"@{me}"),
            await telegram.send_photo(group, ann, face_jpeg, caption=f"/mask@{me} 3"),
            await telegram.send_text(group, ann, f"/help@{me}"),
        ]
        bot = Bot(telegram.token, base_url=telegram.base_url, base_file_url=telegram.base_file_url)
        async with bot:
            assert bot.can_read_all_group_messages is False  # privacy on
            updates = await bot.get_updates(timeout=1)
            assert [u.message.message_id for u in updates] == [m.message_id for m in sent[2:]]
            reply = await bot.send_message(group.id, "hi", reply_to_message_id=sent[0].message_id)
            answer = await telegram.send_text(group, ann, "thanks", reply_to=reply)  # to the bot
            [update] = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1)
            assert update.message.message_id == answer.message_id

            assert (await bot.get_chat_member(group.id, boss.id)).status == "administrator"
            assert (await bot.get_chat_member(group.id, ann.id)).status == "member"
            await bot.set_message_reaction(group.id, sent[0].message_id, "👀")
            assert telegram.reaction(sent[0]) == ["👀"]
            with pytest.raises(BadRequest, match="(?i)reaction_invalid"):  # not one of theirs
                await bot.set_message_reaction(group.id, sent[0].message_id, "🧀")

            # 20 messages a minute into one group; the 21st meets Telegram's flood control
            for n in range(19):
                await bot.send_message(group.id, f"message {n}")
            with pytest.raises(RetryAfter, match=r"Retry in [1-9]"):
                await bot.send_message(group.id, "one too many")
            assert telegram.state.flood_errors == [(group.id, "sendmessage")]
            await bot.send_message(telegram.private_chat(ann).id, "no such limit in private")
