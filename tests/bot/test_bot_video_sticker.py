"""The 🏷 Sticker button under a masked video, through the real bot, its embedded workers and the
fake Bot API: a video note masked, Sticker tapped, the user's set made with a video sticker
(WebM, VP9, 512 px, <= 3 s, <= 256 KB); a video whose first 3 s show no face gets a sentence."""

from __future__ import annotations

import io

import av
import numpy as np
from telegram import Message, User

from bot import stickers, texts
from tests.support import clips
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard

BOT = "facemask_test_bot"


async def masked_note(telegram: FakeTelegram, user: User, clip: bytes, seconds: int) -> Message:
    """A video note sent, mask 1 tapped: the masked note, which carries the Sticker button."""
    chat = telegram.private_chat(user)
    note = await telegram.send_video_note(chat, user, clip, duration=seconds, length=240)
    keyboard = await telegram.wait_reply(note, has_keyboard)
    await telegram.press(user, keyboard, "1 ")
    return await telegram.wait_reply(note, lambda m: bool(m.video_note), timeout=120)


def uploads(telegram: FakeTelegram, user: User) -> list:
    return [c for c in telegram.calls("uploadStickerFile") if c.params["user_id"] == str(user.id)]


async def tap_sticker(telegram: FakeTelegram, user: User, result: Message) -> Message:
    assert [b.text for b in result.reply_markup.inline_keyboard[-1]] == [texts.STICKER_BUTTON]
    await telegram.press(user, result, texts.STICKER_BUTTON)
    return await telegram.wait_reply(result, lambda m: bool(m.text), timeout=120)


async def test_a_masked_video_note_becomes_a_video_sticker_in_a_new_set(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user = telegram.user("Vida")
    result = await masked_note(telegram, user, clips.face_clip(4, fps=30, size=(240, 240)), 4)

    reply = await tap_sticker(telegram, user, result)
    name = stickers.set_name(user.id, BOT)
    assert reply.text == texts.STICKER_ADDED.format(link=f"https://t.me/addstickers/{name}")
    made = telegram.state.sticker_sets[name]
    assert made.owner == user.id and len(made.stickers) == 1
    (upload,) = uploads(telegram, user)
    assert upload.params["sticker_format"] == "video"
    data = telegram.state.files[made.stickers[0]].data
    assert len(data) <= 256 * 1024
    with av.open(io.BytesIO(data)) as webm:
        video = webm.streams.video[0]
        assert "webm" in webm.format.name and video.codec_context.name == "vp9"
        assert max(video.width, video.height) == 512 and not webm.streams.audio
        assert webm.duration / av.time_base <= 3.0 and video.metadata.get("alpha_mode") == "1"


async def test_no_face_in_the_first_3_seconds_is_said_and_no_set_is_made(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user = telegram.user("Blanche")
    # a face only after 3.5 s: the video is masked, but a sticker is made of its first 3 s
    wall = np.full((240, 240, 3), 128, np.uint8)
    face = clips.face_frames(15, (240, 240))
    clip = clips.encode([wall] * 53 + face, fps=15)
    result = await masked_note(telegram, user, clip, 5)

    reply = await tap_sticker(telegram, user, result)
    assert reply.text == texts.VIDEO_STICKER_NO_FACE
    assert stickers.set_name(user.id, BOT) not in telegram.state.sticker_sets
    assert not uploads(telegram, user)
