"""The fake Telegram server answers python-telegram-bot's own Bot the way Telegram would."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.error import BadRequest, InvalidToken

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
