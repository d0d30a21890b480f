"""The real bot and albums: one keyboard per album, one album back, a restart in between."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image
from telegram import Message

from bot import texts
from masks import catalog
from tests.bot.conftest import encode
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard


@pytest.fixture(scope="module")
def small_face(face_jpeg: bytes) -> bytes:
    picture = Image.open(io.BytesIO(face_jpeg)).resize((300, 300))
    return encode(np.asarray(picture))


def size(telegram: FakeTelegram, message: Message) -> tuple[int, int]:
    data = telegram.state.files[message.photo[-1].file_id].data
    return Image.open(io.BytesIO(data)).size


def keyboards_for(telegram: FakeTelegram, photos: list[Message]) -> list[Message]:
    return [m for photo in photos for m in telegram.replies_to(photo) if has_keyboard(m)]


async def album_back(telegram: FakeTelegram, first: Message, count: int) -> list[Message]:
    return await telegram.wait_for(
        lambda: len(m := [r for r in telegram.replies_to(first) if r.media_group_id]) >= count
        and m,
        timeout=120, what=f"an album of {count}",
    )  # fmt: skip


async def test_an_album_gets_one_keyboard_and_comes_back_in_order(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes, small_face: bytes, blank_png: bytes
) -> None:
    user = telegram.user("Alba")
    chat = telegram.private_chat(user)
    photos = await telegram.send_album(chat, user, [face_jpeg, blank_png, small_face])
    keyboard = await telegram.wait_reply(photos[0], has_keyboard)
    assert keyboard.text == texts.ALBUM_CHOOSE.format(count=3)
    await asyncio.sleep(1.5)  # nothing else comes
    assert keyboards_for(telegram, photos) == [keyboard]

    await telegram.press(user, keyboard, "3 ")
    album = await album_back(telegram, photos[0], 3)
    assert [size(telegram, m) for m in album] == [(512, 512), (480, 360), (300, 300)]
    mask = catalog.get(3)
    assert [m.caption for m in album] == [
        texts.caption(mask, 1), texts.ALBUM_NO_FACE, texts.caption(mask, 1),
    ]  # fmt: skip
    assert len({m.media_group_id for m in album}) == 1


async def test_an_albums_keyboard_survives_a_restart(
    telegram: FakeTelegram, bot: BotProcess, small_face: bytes
) -> None:
    user = telegram.user("Remy")
    chat = telegram.private_chat(user)
    photos = await telegram.send_album(chat, user, [small_face, small_face])
    keyboard = await telegram.wait_reply(photos[0], has_keyboard)
    await bot.restart()  # killed after the keyboard went out
    await telegram.press(user, keyboard, "5 ")
    album = await album_back(telegram, photos[0], 2)
    assert all(catalog.get(5).name in m.caption for m in album)


async def test_the_throttle_counts_an_album_as_its_photos(
    telegram: FakeTelegram, bot: BotProcess, small_face: bytes
) -> None:
    user = telegram.user("Theo")
    chat = telegram.private_chat(user)
    photos = await telegram.send_album(chat, user, [small_face] * 5)
    keyboard = await telegram.wait_reply(photos[0], has_keyboard)
    first = await telegram.press(user, keyboard, "1 ")  # 5 of the session's 8 a minute
    second = await telegram.press(user, keyboard, "2 ")  # 5 more: refused
    answers = await telegram.wait_for(
        lambda: (
            {first, second} <= telegram.state.callback_answers.keys()
            and [telegram.state.callback_answers[q] for q in (first, second)]
        )
    )
    assert answers[0]["text"] == texts.WORKING
    assert answers[1]["text"].startswith("Too many") and answers[1]["show_alert"] in (True, "true")
    album = await album_back(telegram, photos[0], 5)
    assert len(album) == 5 and all(catalog.get(1).name in m.caption for m in album)
