"""The real bot in a private chat, over real HTTP to the fake Telegram server."""

from __future__ import annotations

import asyncio
import io
import pickle
import subprocess
import sys

from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import handlers, keyboards, texts
from core.results import Mode
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard


def keyboard_texts(message: Message) -> list[str]:
    assert message.reply_markup is not None, "no keyboard"
    return [button.text for row in message.reply_markup.inline_keyboard for button in row]


def picture_size(telegram: FakeTelegram, message: Message) -> tuple[int, int]:
    file_id = message.photo[-1].file_id if message.photo else message.document.file_id
    with Image.open(io.BytesIO(telegram.state.files[file_id].data)) as picture:
        return picture.size


async def test_start_help_and_commands(telegram: FakeTelegram, bot: BotProcess) -> None:
    user = telegram.user("Ann")
    chat = telegram.private_chat(user)
    start = await telegram.send_text(chat, user, "/start")
    start_text = texts.START.format(bot=telegram.bot_user.username)
    assert (await telegram.wait_reply(start)).text == start_text
    help_ = await telegram.send_text(chat, user, "/help")
    assert "never store" in (await telegram.wait_reply(help_)).text
    hello = await telegram.send_text(chat, user, "hello")
    assert (await telegram.wait_reply(hello)).text == start_text
    assert {c.command for c in telegram.state.commands} >= {"start", "help", "masks", "mask"}


async def test_masks_shows_all_seven(telegram: FakeTelegram, bot: BotProcess) -> None:
    user = telegram.user("Ben")
    chat = telegram.private_chat(user)
    command = await telegram.send_text(chat, user, "/masks")
    reply = await telegram.wait_reply(command)
    if all(mask.path.is_file() for mask in catalog.masks()):
        assert reply.photo and reply.caption.startswith(texts.MASKS_CAPTION)
        # the masks are named in the caption (the picture shows their numbers only)
        assert all(texts.mask_button(mask) in reply.caption for mask in catalog.masks())
        width, height = picture_size(telegram, reply)
        assert width > 500 and height > 200
    else:
        assert all(mask.button in reply.text for mask in catalog.masks())


async def test_photo_gets_keyboard_then_masked_photo(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Cleo")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    assert [p.width for p in photo.photo] == [90, 320, 512]  # several sizes, like Telegram

    keyboard = await telegram.wait_reply(photo, has_keyboard)
    labels = keyboard_texts(keyboard)
    masks = catalog.masks()
    assert labels[:7] == [mask.button for mask in masks]
    assert [label.split()[0] for label in labels[:7]] == [str(n) for n in range(1, 8)]
    assert "Crop" in labels[7] and "on" in labels[7]
    buttons = [b for row in keyboard.reply_markup.inline_keyboard for b in row]
    assert all(len(b.callback_data.encode()) <= 64 for b in buttons)

    query = await telegram.press(user, keyboard, "1 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo))
    assert picture_size(telegram, result) == (512, 512)  # the largest size, masked, same size
    assert masks[0].name in result.caption and "face" in result.caption

    # the query was answered at once, before the work; the user saw "sending photo"
    answers = telegram.calls("answerCallbackQuery")
    answer = next(c for c in answers if c.params["callback_query_id"] == query)
    sent = next(c for c in telegram.calls("sendPhoto") if int(c.params["chat_id"]) == chat.id)
    actions = [c for c in telegram.calls("sendChatAction") if int(c.params["chat_id"]) == chat.id]
    assert answer.at < sent.at
    assert actions and actions[0].params["action"] == "upload_photo" and actions[0].at < sent.at


async def test_crop_toggle_edits_the_keyboard_in_place(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Dan")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    before = len(telegram.history(chat))

    await telegram.press(user, keyboard, "✂️ Crop")
    edited = await telegram.wait_for(
        lambda: (
            "off" in keyboard_texts(telegram.message(chat.id, keyboard.message_id))[7]
            and telegram.message(chat.id, keyboard.message_id)
        )
    )
    assert edited.text == keyboard.text
    await telegram.press(user, edited, "🖼 Crop")
    await telegram.wait_for(
        lambda: "on" in keyboard_texts(telegram.message(chat.id, keyboard.message_id))[7]
    )
    assert len(telegram.history(chat)) == before  # no new messages, only edits


async def test_every_mask_then_throttled(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Eve")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    # tap all seven masks and one more on the same keyboard, quickly, then a ninth
    queries = [await telegram.press(user, keyboard, f"{mask.id} ") for mask in catalog.masks()]
    queries.append(await telegram.press(user, keyboard, "1 "))
    queries.append(await telegram.press(user, keyboard, "2 "))

    def photos() -> list[Message]:
        return [m for m in telegram.replies_to(photo) if m.photo]

    await telegram.wait_for(lambda: len(photos()) >= 8, timeout=120, what="8 masked photos")
    named = {mask.name for mask in catalog.masks() for m in photos() if mask.name in m.caption}
    assert named == {mask.name for mask in catalog.masks()}
    assert all(picture_size(telegram, m) == (512, 512) for m in photos())

    # the session bot allows 8 photos per user per minute: one of the nine taps was refused
    answers = await telegram.wait_for(
        lambda: (
            len(telegram.state.callback_answers.keys() & set(queries)) == 9
            and [telegram.state.callback_answers[q] for q in queries]
        )
    )
    refused = [a for a in answers if a.get("text", "").startswith("Too many")]
    assert len(refused) == 1 and refused[0]["show_alert"] in (True, "true")
    await asyncio.sleep(0.5)
    assert len(photos()) == 8


async def test_no_face_suggests_the_toggle(
    telegram: FakeTelegram, bot: BotProcess, blank_png: bytes
) -> None:
    user = telegram.user("Finn")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, blank_png)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "3 ")
    reply = await telegram.wait_reply(photo, lambda m: bool(m.text), after=1)
    assert reply.text == texts.ERRORS["no_face"] and "Crop" in reply.text

    # with crop off the whole photo is one face: a photo comes back
    await telegram.press(user, keyboard, "✂️ Crop")
    await telegram.wait_for(
        lambda: "off" in keyboard_texts(telegram.message(chat.id, keyboard.message_id))[7]
    )
    await telegram.press(user, keyboard, "3 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo))
    assert picture_size(telegram, result) == (480, 360)
    assert "1 face" in result.caption


async def test_files(telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes) -> None:
    user = telegram.user("Gus")
    chat = telegram.private_chat(user)

    text_file = await telegram.send_document(chat, user, b"hello", "notes.txt", "text/plain")
    assert (await telegram.wait_reply(text_file)).text == texts.NOT_AN_IMAGE

    too_big = await telegram.send_document(
        chat, user, face_jpeg, "huge.jpg", "image/jpeg", file_size=25 * 1024 * 1024
    )
    reply = await telegram.wait_reply(too_big)
    assert "too big" in reply.text and "20 MB" in reply.text and not reply.reply_markup

    # an image sent as a file comes back as a file, same size
    png = Image.open(io.BytesIO(face_jpeg))
    out = io.BytesIO()
    png.save(out, format="PNG")
    as_file = await telegram.send_document(chat, user, out.getvalue(), "me.png", "image/png")
    keyboard = await telegram.wait_reply(as_file, has_keyboard)
    await telegram.press(user, keyboard, "2 ")
    result = await telegram.wait_reply(as_file, lambda m: bool(m.document))
    assert result.document.file_name.endswith(".png")
    assert catalog.get(2).name in result.caption
    assert picture_size(telegram, result) == (512, 512)

    # a small file that says it is an image but is not: refused before any keyboard
    fake = await telegram.send_document(chat, user, b"\x00" * 500, "broken.jpg", "image/jpeg")
    assert (await telegram.wait_reply(fake)).text == texts.NOT_AN_IMAGE
    # a big one is not downloaded before its keyboard: the worker says so after a tap, politely
    zeros = b"\x00" * (handlers.SNIFF_MAX_BYTES + 1)
    fake = await telegram.send_document(chat, user, zeros, "broken.jpg", "image/jpeg")
    keyboard = await telegram.wait_reply(fake, has_keyboard)
    await telegram.press(user, keyboard, "1 ")
    reply = await telegram.wait_reply(fake, lambda m: bool(m.text), after=1)
    assert reply.text in {texts.ERRORS[code] for code in ("not_an_image", "empty", "truncated")}


async def test_buttons_work_after_a_restart(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Hana")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    await telegram.press(user, keyboard, "✂️ Crop")
    await telegram.wait_for(
        lambda: "off" in keyboard_texts(telegram.message(chat.id, keyboard.message_id))[7]
    )

    await bot.restart()
    # the state is in its own folder, not in the working directory
    assert (bot.workdir / "state" / "facemask-bot.sqlite3").is_file()
    assert not list(bot.workdir.glob("*.sqlite3"))

    # the old keyboard still knows its photo and that crop is off
    await telegram.press(user, keyboard, "🖼 Crop")
    await telegram.wait_for(
        lambda: "on" in keyboard_texts(telegram.message(chat.id, keyboard.message_id))[7]
    )
    await telegram.press(user, keyboard, "5 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    assert catalog.get(5).name in result.caption


async def test_keyboards_saved_by_the_previous_version_still_work(
    telegram: FakeTelegram, bot: BotProcess, blank_png: bytes
) -> None:
    """State written as plain dicts (``crop`` a boolean) is read as typed state after an upgrade."""
    user = telegram.user("Kai")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, blank_png)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    assert await bot.stop() == 0, bot.log()[-3000:]

    # the previous version kept python-telegram-bot's pickle file and nothing else
    state = bot.workdir / "state"
    for path in state.glob("facemask-bot.sqlite3*"):
        path.unlink()
    old_photo = {"file_id": photo.photo[-1].file_id, "as_file": False, "crop": False}
    data = {
        "chat_data": {chat.id: {"photos": {photo.message_id: old_photo}}},
        "user_data": {user.id: {"recent_jobs": []}},
        "bot_data": {},
        "callback_data": None,
        "conversations": {},
    }
    (state / "facemask-bot.pickle").write_bytes(pickle.dumps(data))
    await bot.start()
    assert (state / "facemask-bot.pickle.converted").is_file()  # converted once, kept aside

    # crop was off in the old state: the whole grey picture is one face, so a photo comes back
    await telegram.press(user, keyboard, "3 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    assert "1 face" in result.caption and picture_size(telegram, result) == (480, 360)


async def test_buttons_of_a_forgotten_photo_say_send_it_again(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    """Buttons for a photo the bot no longer remembers (older than its memory) fail politely."""
    user = telegram.user("Ivo")
    chat = telegram.private_chat(user)
    message = await telegram.send_text(chat, user, "an old keyboard")
    forgotten = keyboards.mask_keyboard(catalog.masks(), photo_id=99_999, mode=Mode.FACES)
    telegram._record(Message.de_json({**message.to_dict(), "reply_markup": forgotten.to_dict()}))
    query = await telegram.press(user, message, "1 ")
    answer = await telegram.wait_for(lambda: telegram.state.callback_answers.get(query))
    assert answer["text"] == texts.PHOTO_GONE


async def test_a_mask_that_does_not_exist_fails_politely(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Jo")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    forged = InlineKeyboardMarkup(
        [[InlineKeyboardButton("9 ?", callback_data=f"mask:9:{photo.message_id}")]]
    )
    telegram._record(Message.de_json({**keyboard.to_dict(), "reply_markup": forged.to_dict()}))
    query = await telegram.press(user, keyboard, "9 ")
    answer = await telegram.wait_for(lambda: telegram.state.callback_answers.get(query))
    assert answer["text"] == texts.ERRORS["unknown_mask"]


async def test_health_check_sees_the_running_bot(bot: BotProcess) -> None:
    command = [sys.executable, "-m", "bot", "--healthcheck"]
    alive = await asyncio.to_thread(subprocess.run, command, env=bot.env, cwd=bot.workdir)
    assert alive.returncode == 0
    stale = {**bot.env, "HEARTBEAT_FILE": str(bot.workdir / "nothing-here")}
    dead = await asyncio.to_thread(
        subprocess.run, command, env=stale, cwd=bot.workdir, capture_output=True
    )
    assert dead.returncode == 1
