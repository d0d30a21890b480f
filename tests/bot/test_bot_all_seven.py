"""The real bot: "All 7" answers with one album of seven photos, and the Full quality toggle."""

from __future__ import annotations

import io

from PIL import Image
from telegram import Message

from bot import texts
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard


def labels(message: Message) -> list[str]:
    return [b.text for row in message.reply_markup.inline_keyboard for b in row]


async def test_all_seven_is_one_album_and_counts_as_seven_photos(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Sam")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    assert labels(keyboard)[7].startswith("✂️ Crop") and labels(keyboard)[-1] == "🎭 All 7"
    assert "🗜 Full quality: off" in labels(keyboard)

    await telegram.press(user, keyboard, "🎭 All 7")
    album = await telegram.wait_for(
        lambda: len(m := [r for r in telegram.replies_to(photo) if r.photo]) == 7 and m,
        timeout=120, what="an album of seven",
    )  # fmt: skip
    assert len({m.media_group_id for m in album}) == 1 and album[0].media_group_id
    masks = catalog.masks()
    assert [m.caption for m in album] == [texts.caption(mask, 1) for mask in masks]
    assert len(telegram.calls("sendMediaGroup")) >= 1
    for message in album:
        data = telegram.state.files[message.photo[-1].file_id].data
        assert Image.open(io.BytesIO(data)).size == (512, 512)
    assert len({telegram.state.files[m.photo[-1].file_id].data for m in album}) == 7

    # Full quality: the toggle edits the keyboard in place, then the result is a file
    await telegram.press(user, keyboard, "🗜 Full quality")
    await telegram.wait_for(
        lambda: "📄 Full quality: on" in labels(telegram.message(chat.id, keyboard.message_id))
    )
    await telegram.press(user, keyboard, "1 ")  # the eighth photo of the session's 8 a minute
    document = await telegram.wait_reply(photo, lambda m: bool(m.document))
    assert document.document.file_name.endswith(".jpeg") and masks[0].name in document.caption

    refused = await telegram.press(user, keyboard, "2 ")
    answer = await telegram.wait_for(lambda: telegram.state.callback_answers.get(refused))
    assert answer["text"].startswith("Too many")


def test_the_new_keyboards_and_sentences_fit_telegrams_limits() -> None:
    from telegram.constants import CallbackQueryLimit, InlineKeyboardButtonLimit, MessageLimit

    from bot import i18n, keyboards, stickers
    from core.results import Mode

    masks, big = catalog.masks(), 2**31 - 1
    for language in i18n.LANGUAGES:
        t = i18n.translator(language)
        markups = [
            keyboards.mask_keyboard(masks, big, Mode.WHOLE, t, as_file=True),
            keyboards.result_keyboard(masks, big, 7, Mode.FACES, t, with_masks=True),
            keyboards.album_keyboard(masks, big, Mode.FACES, t),
        ]
        data = [b.callback_data for m in markups for row in m.inline_keyboard for b in row]
        assert all(len(d.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA for d in data)
        name = stickers.set_name(big * 1000, "a" * 32)  # user ids reach 52 bits
        assert len(name) <= 64
        link = stickers.set_link(name)
        assert len(t(texts.STICKER_SET_FULL, link=link)) <= MessageLimit.MAX_TEXT_LENGTH
        assert len(t(texts.STICKER_SET_TITLE, bot="a" * 32)) <= 64
        assert len(t(texts.INLINE_BUTTON)) <= 64
        assert len(t(texts.STICKER_WORKING)) <= CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH
