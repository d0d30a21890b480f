"""Moving pictures through the real bot, its embedded workers and the fake Bot API: video notes,
GIFs and videos (real clips encoded here with PyAV) come back masked as the same kind of
message, with progress, Cancel, the limits' sentences, and photos not waiting behind them."""

from __future__ import annotations

from telegram import Chat, Message, User

from bot import texts
from masks import catalog
from tests.support import clips
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard

BIG = 25 * 1024 * 1024  # over Telegram's 20 MB download limit


def is_progress(message: Message) -> bool:
    return bool(message.text and message.text.startswith("Masking... "))


def data_of(telegram: FakeTelegram, file_id: str) -> bytes:
    return telegram.state.files[file_id].data


def progress_edits(telegram: FakeTelegram, message: Message) -> list[str]:
    return [
        call.params["text"]
        for call in telegram.calls("editMessageText")
        if int(call.params["message_id"]) == message.message_id
        and int(call.params["chat_id"]) == message.chat.id
    ]


async def tap(telegram: FakeTelegram, user: User, video: Message, button: str = "1 ") -> Message:
    """Tap a mask under the video's keyboard; the progress message that appears."""
    keyboard = await telegram.wait_reply(video, has_keyboard)
    assert keyboard.text == texts.VIDEO_CHOOSE
    await telegram.press(user, keyboard, button)
    return await telegram.wait_reply(video, is_progress, timeout=60)


def chat_for(telegram: FakeTelegram, name: str) -> tuple[User, Chat]:
    user = telegram.user(name)
    return user, telegram.private_chat(user)


async def test_a_video_note_comes_back_round_with_its_frames_and_progress(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user, chat = chat_for(telegram, "Nora")
    clip = clips.face_clip(6, fps=30, size=(400, 400))  # long enough to see progress twice
    note = await telegram.send_video_note(chat, user, clip, duration=6, length=400)
    progress = await tap(telegram, user, note, "3 ")
    assert progress.reply_markup.inline_keyboard[0][0].text == texts.VIDEO_CANCEL
    answer = await telegram.wait_reply(note, lambda m: bool(m.video_note), timeout=120)

    out = clips.read_back(data_of(telegram, answer.video_note.file_id))
    assert out["size"] == (400, 400) and answer.video_note.length == 400
    assert out["frames"] == 180 and out["codec"] == "h264"
    # a round video has no caption: once it is out, the progress message names the mask
    mask = catalog.get(3)
    named = f"{mask.emoji} {mask.name}"
    await telegram.wait_for(
        lambda: telegram.message(chat.id, progress.message_id).text == named, what="the name"
    )
    assert telegram.message(chat.id, progress.message_id).reply_markup is None  # no Cancel
    assert (chat.id, progress.message_id) not in telegram.state.deleted
    edits = progress_edits(telegram, progress)
    # at least one "Masking... N%" while it worked (edited every 0.2 s here: conftest), then
    # the mask's name
    assert edits[-1] == named and len(edits) >= 2, edits
    # "Masking... N%" edited in place while it worked
    percents = [int(text.split()[-1].rstrip("%")) for text in edits[:-1]]
    assert percents == sorted(percents) and 0 < percents[0] and percents[-1] < 100
    actions = {c.params["action"] for c in telegram.calls("sendChatAction")
               if int(c.params["chat_id"]) == chat.id}  # fmt: skip
    assert actions == {"record_video_note"}


async def test_a_gif_comes_back_as_an_animation_and_a_video_with_its_sound(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user, chat = chat_for(telegram, "Gil")
    # Telegram delivers a GIF as an MP4 animation; a GIF sent as a file stays a GIF file
    gif_mp4 = clips.face_clip(1, fps=10, size=(160, 120))
    animation = await telegram.send_animation(chat, user, gif_mp4, 160, 120, 1)
    await tap(telegram, user, animation, "2 ")
    answer = await telegram.wait_reply(animation, lambda m: bool(m.animation), timeout=60)
    out = clips.read_back(data_of(telegram, answer.animation.file_id))
    assert out["size"] == (160, 120) and out["frames"] == 10 and out["audio"] is None
    assert answer.caption == texts.video_caption(catalog.get(2))

    gif_file = await telegram.send_document(chat, user, clips.face_gif(12), "fun.gif", "image/gif")
    await tap(telegram, user, gif_file, "4 ")
    answer = await telegram.wait_reply(gif_file, lambda m: bool(m.animation), timeout=60)
    assert clips.read_back(data_of(telegram, answer.animation.file_id))["frames"] == 12

    clip = clips.face_clip(2, size=(240, 180), audio=True)
    video = await telegram.send_video(chat, user, clip, 240, 180, 2, caption="look")
    await tap(telegram, user, video, "7 ")
    answer = await telegram.wait_reply(video, lambda m: bool(m.video), timeout=60)
    out = clips.read_back(data_of(telegram, answer.video.file_id))
    assert out["size"] == (240, 180) and out["frames"] == 30 and out["audio"] == "aac"
    assert answer.caption == texts.video_caption(catalog.get(7))


async def test_every_limit_gets_its_sentence_and_nothing_is_downloaded_when_telegram_says(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user, chat = chat_for(telegram, "Lim")
    clip = clips.face_clip(1)
    # too long and too big: said at once, from what Telegram reports, before any download
    long_one = await telegram.send_video(chat, user, clip, 240, 180, 75)
    reply = await telegram.wait_reply(long_one)
    assert reply.text == texts.VIDEO_TOO_LONG.format(seconds=75, limit=60)
    big = await telegram.send_video(chat, user, clip, 240, 180, 1, file_size=BIG)
    reply = await telegram.wait_reply(big)
    assert reply.text == texts.TOO_BIG.format(limit=20)
    fetched = {c.params["file_id"] for c in telegram.calls("getFile")}
    assert long_one.video.file_id not in fetched and big.video.file_id not in fetched

    # what only the file can tell: the progress message becomes the sentence
    cut = clips.encode(clips.face_frames(20), faststart=False)  # index last, as cameras write
    cases = [
        (cut[: len(cut) * 6 // 10], "video_truncated"),
        (clips.audio_only(), "no_video_stream"),
        (clips.encode([frame * 0 + 128 for frame in clips.face_frames(10)]), "no_face_in_video"),
    ]
    for data, code in cases:
        sent = await telegram.send_document(chat, user, data, "clip.mp4", "video/mp4")
        progress = await tap(telegram, user, sent)
        await telegram.wait_for(
            lambda p=progress: not is_progress(telegram.message(chat.id, p.message_id)),
            timeout=60,
            what=code,
        )
        said = telegram.message(chat.id, progress.message_id)
        assert said.text == texts.ERRORS[code] and said.reply_markup is None, said.text
    assert "Crop off" in texts.ERRORS["no_face_in_video"]


async def test_a_photo_is_not_kept_waiting_by_a_video_and_cancel_stops_the_video(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user, chat = chat_for(telegram, "Pat")
    clip = clips.face_clip(20, fps=25, size=(320, 240))  # 500 frames: many seconds of work
    video = await telegram.send_video(chat, user, clip, 320, 240, 20)
    progress = await tap(telegram, user, video)
    await telegram.wait_for(lambda: progress_edits(telegram, progress), timeout=120,
                            what="the video's first progress")  # fmt: skip

    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "5 ")
    await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    # the masked photo came while the video was still being masked
    assert is_progress(telegram.message(chat.id, progress.message_id))
    assert not [m for m in telegram.replies_to(video) if m.video]

    # Cancel: by the one who asked only; the job stops in its worker process
    other = telegram.user("Mallory")
    refused = await telegram.press(other, progress, texts.VIDEO_CANCEL)
    answer = await telegram.wait_for(lambda: telegram.state.callback_answers.get(refused))
    assert answer["text"] == texts.VIDEO_NOT_YOURS
    await telegram.press(user, progress, texts.VIDEO_CANCEL)
    await telegram.wait_for(
        lambda: telegram.message(chat.id, progress.message_id).text == texts.ERRORS["cancelled"],
        timeout=30, what="the cancelled sentence",
    )  # fmt: skip
    assert "cancelling VideoJob" in bot.log()
    # the video process is free again: a short note is answered at once
    note = await telegram.send_video_note(chat, user, clips.face_clip(1, size=(160, 160)), 1, 160)
    await tap(telegram, user, note)
    await telegram.wait_reply(note, lambda m: bool(m.video_note), timeout=30)
    assert not [m for m in telegram.replies_to(video) if m.video]


async def test_in_a_group_a_video_is_masked_when_addressed(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user = telegram.user("Gus")
    group = telegram.group("video fans")
    clip = clips.face_clip(1, size=(160, 120))
    username = telegram.bot_user.username
    # "/mask@bot 6" in the caption: masked at once, no keyboard
    caption = f"/mask@{username} 6"
    direct = await telegram.send_video(group, user, clip, 160, 120, 1, caption=caption)
    answer = await telegram.wait_reply(direct, lambda m: bool(m.video), timeout=60)
    assert answer.caption == texts.video_caption(catalog.get(6))
    # a video nobody addressed never reaches the bot; "/mask@bot" as a reply offers the keyboard
    quiet = await telegram.send_video(group, user, clip, 160, 120, 1)
    assert quiet in telegram.state.withheld
    await telegram.send_text(group, user, f"/mask@{username}", reply_to=quiet)
    keyboard = await telegram.wait_reply(quiet, has_keyboard)
    assert keyboard.text == texts.VIDEO_CHOOSE
    labels = [b.text for row in keyboard.reply_markup.inline_keyboard for b in row]
    assert len(labels) == 8 and labels[-1] == texts.MODE_FACES_BUTTON


async def test_a_videos_keyboard_and_its_crop_setting_survive_a_restart(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    user, chat = chat_for(telegram, "Rex")
    # no face anywhere: only with Crop off (the whole frame is the face) does it get a mask
    grey = clips.encode([frame * 0 + 128 for frame in clips.face_frames(15, (160, 160))])
    note = await telegram.send_video_note(chat, user, grey, duration=1, length=160)
    keyboard = await telegram.wait_reply(note, has_keyboard)
    await telegram.press(user, keyboard, texts.MODE_FACES_BUTTON)
    await telegram.wait_for(
        lambda: (
            texts.MODE_WHOLE_BUTTON
            in str(telegram.message(chat.id, keyboard.message_id).reply_markup)
        )
    )
    await bot.restart()
    await telegram.press(user, keyboard, "4 ")
    answer = await telegram.wait_reply(note, lambda m: bool(m.video_note), timeout=120)
    assert clips.read_back(data_of(telegram, answer.video_note.file_id))["frames"] == 15
