"""The real bot's styles (issue 26): the 🎨 palette, a style remembered across a restart, an own
picture printed and forgotten, 🎲 Mix on a photo with several faces, and pictures refused."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from telegram import Chat, Message, User

from bot import texts
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard


def encode(rgb: np.ndarray, format: str = "JPEG", **kwargs) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=format, **kwargs)
    return out.getvalue()


def pixels(telegram: FakeTelegram, message: Message) -> np.ndarray:
    data = telegram.state.files[message.photo[-1].file_id].data
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).astype(np.float32)


async def masked(telegram: FakeTelegram, chat: Chat, user: User, jpeg: bytes) -> Message:
    photo = await telegram.send_photo(chat, user, jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "4 ")  # the black cloth mask
    return await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)


async def test_the_palette_styles_the_mask_and_remembers_the_choice(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Paula")
    chat = telegram.private_chat(user)
    result = await masked(telegram, chat, user, face_jpeg)
    await telegram.press(user, result, texts.STYLE_BUTTON)
    palette = await telegram.wait_for(
        lambda: "sp:" in str(telegram.message(chat.id, result.message_id).reply_markup)
    )
    assert palette
    buttons = [
        b for row in telegram.message(chat.id, result.message_id).reply_markup.inline_keyboard
        for b in row
    ]  # fmt: skip
    assert len(buttons) == 17 and all(len(b.callback_data.encode()) <= 64 for b in buttons)
    await telegram.press(user, result, "🟥 Red")
    photo_id = result.reply_to_message.message_id
    original = telegram.message(chat.id, photo_id)
    red = await telegram.wait_reply(
        original, lambda m: bool(m.photo) and "🎨" in (m.caption or ""), timeout=60
    )
    assert red.caption.endswith("🎨 Red")
    plain, styled = pixels(telegram, result), pixels(telegram, red)
    changed = np.abs(styled - plain).sum(axis=2) > 60
    assert changed.sum() > 2000
    r, g, b = styled[changed].mean(axis=0)
    assert r > 1.6 * g and r > 1.6 * b  # the black mask is red now

    await bot.restart()  # the choice outlives the process: offered first, with a star
    await telegram.press(user, red, texts.STYLE_BUTTON)
    await telegram.wait_for(
        lambda: "sp:" in str(telegram.message(chat.id, red.message_id).reply_markup)
    )
    first = telegram.message(chat.id, red.message_id).reply_markup.inline_keyboard[0][0]
    assert first.text == "⭐ Red" and first.callback_data.startswith("sp:red:")


async def test_an_own_picture_is_printed_kept_and_forgotten(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Olga")
    chat = telegram.private_chat(user)
    result = await masked(telegram, chat, user, face_jpeg)
    green = np.zeros((240, 320, 3), np.uint8)
    green[...] = (30, 200, 60)
    reply = await telegram.send_photo(chat, user, encode(green), reply_to=result)
    photo_id = result.reply_to_message.message_id
    printed = await telegram.wait_reply(
        telegram.message(chat.id, photo_id),
        lambda m: bool(m.photo) and "🖼" in (m.caption or ""),
        timeout=60,
    )
    assert reply
    plain, mine = pixels(telegram, result), pixels(telegram, printed)
    changed = np.abs(mine - plain).sum(axis=2) > 60
    assert changed.sum() > 2000
    r, g, b = mine[changed].mean(axis=0)
    assert g > 1.5 * r and g > 1.5 * b  # the picture's green, under the mask

    off = await telegram.send_text(chat, user, "/pattern off")
    answer = await telegram.wait_reply(off, lambda m: bool(m.text))
    assert answer.text == texts.PATTERN_OFF
    again = await telegram.send_text(chat, user, "/pattern off")
    assert (await telegram.wait_reply(again, lambda m: bool(m.text))).text == texts.PATTERN_NONE


async def test_pictures_that_cannot_be_printed_are_refused(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user = telegram.user("Rita")
    chat = telegram.private_chat(user)
    errors = texts.ERRORS
    text = await telegram.send_document(
        chat, user, b"just words", "notes.txt", "text/plain", caption="/pattern"
    )
    assert (await telegram.wait_reply(text)).text == errors["pattern_not_image"]
    tiny = await telegram.send_photo(
        chat, user, encode(np.zeros((40, 40, 3), np.uint8)), caption="/pattern", sizes=(40,)
    )
    assert (await telegram.wait_reply(tiny, lambda m: bool(m.text))).text == errors[
        "pattern_too_small"
    ]
    big = await telegram.send_document(
        chat, user, encode(np.zeros((80, 80, 3), np.uint8), "PNG"), "big.png", "image/png",
        caption="/pattern", file_size=30 * 2**20,
    )  # fmt: skip
    assert (await telegram.wait_reply(big)).text == errors["pattern_too_large"]
    frames = [Image.new("RGB", (100, 100), colour) for colour in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    moving = await telegram.send_document(
        chat, user, gif.getvalue(), "moving.gif", "image/gif", caption="/pattern"
    )
    assert (await telegram.wait_reply(moving)).text == errors["pattern_animated"]
    hint = await telegram.send_text(chat, user, "/pattern")
    assert (await telegram.wait_reply(hint)).text == texts.PATTERN_HINT


async def test_mix_gives_every_face_a_different_mask(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    from skimage import data

    face = np.asarray(Image.fromarray(data.astronaut()).resize((360, 360)))
    group = np.hstack([face, face, face])
    user = telegram.user("Max")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, encode(group))
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    results = []
    for n in range(2):
        await telegram.press(user, keyboard, texts.MIX_BUTTON)
        results.append(
            await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=90, after=n + 1)
        )
    for result in results:
        assert result.caption.startswith("🎲") and "3" in result.caption
        rgb = pixels(telegram, result)
        # each third's mouth and jaw, where the mask sits (her face at 360 px: x 127-186)
        thirds = [rgb[85:135, i * 360 + 130 : i * 360 + 185] for i in range(3)]
        # the same face three times: what differs between the thirds is the mask alone (one
        # mask on two thirds differs by up to ~2, the two N95s, the least alike, by ~6)
        for a in range(3):
            for b in range(a + 1, 3):
                assert np.abs(thirds[a] - thirds[b]).mean() > 4, "two faces wear one mask"
    first, second = (pixels(telegram, r) for r in results)
    for i in range(3):  # no face wears the same mask twice in a row
        part = (slice(85, 135), slice(i * 360 + 130, i * 360 + 185))
        assert np.abs(first[part] - second[part]).mean() > 4
