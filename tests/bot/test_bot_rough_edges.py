"""Issue 29's rough edges, through the real bot and the fake Bot API: files that are no photo
refused before any keyboard, the crop toggle saved before it is answered (a SIGKILL right after
it), hints in the form a group's privacy mode lets through, the groups' compact keyboard, and
no secret in a DEBUG log in any encoding."""

from __future__ import annotations

import base64
import signal
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, quote_plus

import pytest
from telegram import Message
from telegram.constants import InlineKeyboardButtonLimit

from bot import callbacks, keyboards, kit, texts
from bot.callbacks import Action, Tap
from core.results import Mode
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard
from tests.support.forward_proxy import http_proxy


def buttons(message: Message) -> list[tuple[str, str]]:
    markup = message.reply_markup
    rows = markup.inline_keyboard if markup else ()
    return [(b.text, b.callback_data) for row in rows for b in row]


def is_photo(message: Message) -> bool:
    return bool(message.photo)


# ----------------------------------------------------------------------------- files


async def test_an_empty_file_and_a_text_file_named_jpg_are_refused_before_any_keyboard(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Edgar")
    chat = telegram.private_chat(user)
    empty = await telegram.send_document(chat, user, b"", "photo.jpg", "image/jpeg")
    assert (await telegram.wait_reply(empty)).text == texts.ERRORS["empty"]
    notes = b"shopping list: eggs, milk, a new camera\n" * 20
    text = await telegram.send_document(chat, user, notes, "holiday.jpg", "image/jpeg")
    assert (await telegram.wait_reply(text)).text == texts.NOT_AN_IMAGE
    # a real image as a file still gets its keyboard, and a tap masks it
    real = await telegram.send_document(chat, user, face_jpeg, "me.jpg", "image/jpeg")
    keyboard = await telegram.wait_reply(real, has_keyboard)
    await telegram.press(user, keyboard, "1 ")
    await telegram.wait_reply(real, lambda m: bool(m.document), timeout=60)
    assert not any(has_keyboard(m) for m in telegram.replies_to(empty) + telegram.replies_to(text))


# ----------------------------------------------------------------------------- the toggle


async def test_a_toggle_is_saved_before_it_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    async def save_now(context: object, **ids: int) -> None:
        order.append("save")

    async def answer(*args: object, **kwargs: object) -> None:
        order.append("answer")

    monkeypatch.setattr(kit, "save_now", save_now)
    monkeypatch.setattr(kit, "edit_soon", lambda *args: order.append("edit"))
    query = SimpleNamespace(answer=answer, message=SimpleNamespace(chat=SimpleNamespace(id=5)))
    context = SimpleNamespace(application=None)  # no journal: bot.journal.answered skips it
    await kit.toggle(query, context, lambda: order.append("flip"), lambda: None)
    assert order == ["flip", "save", "answer", "edit"]


async def test_a_toggle_survives_a_sigkill_right_after_its_answer(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    user = telegram.user("Kira")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, has_keyboard)
    query = await telegram.press(user, keyboard, texts.MODE_FACES_BUTTON)
    await telegram.wait_for(lambda: query in telegram.state.callback_answers, what="the answer")
    # the bot's next getUpdates confirmed the tap (else Telegram would send it again)
    await telegram.wait_for(
        lambda: (
            not any(u.get("callback_query", {}).get("id") == query for u in telegram.state.updates)
        ),
        what="the tap confirmed",
    )
    await bot.stop(signal.SIGKILL)  # before the keyboard's edit, perhaps: no time to save after
    await bot.start()

    # the saved mode is the one the tap was answered for (whole photo): a second tap turns
    # Crop back on; had the save been lost, it would say "off"
    current = telegram.message(chat.id, keyboard.message_id)
    label = next(text for text, data in buttons(current) if data.startswith("crop:"))
    again = await telegram.press(user, current, label)
    await telegram.wait_for(lambda: again in telegram.state.callback_answers, what="the answer")
    await telegram.wait_for(
        lambda: (
            texts.MODE_FACES_BUTTON in dict(buttons(telegram.message(chat.id, keyboard.message_id)))
        ),
        timeout=30,
        what="Crop on again",
    )


# ----------------------------------------------------------------------------- groups


async def test_start_and_the_mask_hint_name_the_bot_in_groups(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    me = telegram.bot_user.username
    gus = telegram.user("Gus")
    group = telegram.group("Hints")
    start = await telegram.send_text(group, gus, f"/start@{me}")
    welcome = (await telegram.wait_reply(start)).text
    assert f"/mask@{me}" in welcome and f"/help@{me}" in welcome
    lonely = await telegram.send_text(group, gus, f"/mask@{me}")
    hint = (await telegram.wait_reply(lonely)).text
    assert hint.count(f"/mask@{me}") == 3 and " /mask " not in hint
    # in a private chat the plain command is the right one
    chat = telegram.private_chat(gus)
    alone = await telegram.send_text(chat, gus, "/mask")
    assert (await telegram.wait_reply(alone)).text == texts.MASK_HINT.format(command="/mask")


async def test_groups_get_a_compact_keyboard_that_expands(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    me = telegram.bot_user.username
    hal, ivy = telegram.user("Hal"), telegram.user("Ivy")
    group = telegram.group("Compact")
    masks = catalog.masks()
    mask_labels = [texts.mask_button(mask) for mask in masks]

    # "/mask@bot 3": the masked photo with the seven masks and "⋯ More" only (not 11 buttons)
    asked = await telegram.send_photo(group, hal, face_jpeg, caption=f"/mask@{me} 3")
    result = await telegram.wait_reply(asked, is_photo, timeout=60)
    shown = buttons(result)
    assert [text for text, _ in shown] == [*mask_labels, texts.MORE], shown
    limit = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
    assert all(len(data.encode()) <= limit for _, data in shown)
    await telegram.press(ivy, result, texts.MORE)
    # 7 masks, Crop, Full quality, Mix, All 7, Style, Sticker
    full = await telegram.wait_for(
        lambda: len(buttons(telegram.message(group.id, result.message_id))) == 13,
        what="the full keyboard",
    )
    assert full
    expanded = [t for t, _ in buttons(telegram.message(group.id, result.message_id))]
    assert texts.STICKER_BUTTON in expanded and texts.MODE_FACES_BUTTON in expanded
    assert texts.STYLE_BUTTON in expanded and texts.MIX_BUTTON in expanded

    # the photo's "pick a mask" keyboard: compact too; expanded, its toggles work
    plain = await telegram.send_photo(group, hal, face_jpeg, caption=f"/mask@{me}")
    keyboard = await telegram.wait_reply(plain, has_keyboard)
    assert [text for text, _ in buttons(keyboard)] == [*mask_labels, texts.MORE]
    await telegram.press(hal, keyboard, texts.MORE)
    await telegram.wait_for(
        lambda: (
            texts.MODE_FACES_BUTTON
            in dict(buttons(telegram.message(group.id, keyboard.message_id)))
        )
    )
    await telegram.press(
        hal, telegram.message(group.id, keyboard.message_id), texts.MODE_FACES_BUTTON
    )
    await telegram.wait_for(
        lambda: (
            texts.MODE_WHOLE_BUTTON
            in dict(buttons(telegram.message(group.id, keyboard.message_id)))
        )
    )
    # a mask from the compact keyboard works as from the full one
    await telegram.press(ivy, keyboard, "2 ")
    masked = await telegram.wait_reply(plain, is_photo, timeout=60)
    assert catalog.get(2).name in masked.caption


def test_more_buttons_data_and_old_keyboards_parse() -> None:
    big = 2**31 - 1
    compact = keyboards.result_keyboard(
        catalog.masks(), big, 7, Mode.FACES, with_masks=True, compact=True
    )
    data = [b.callback_data for row in compact.inline_keyboard for b in row]
    assert data[-1] == f"more:7:{big}"
    assert all(len(d.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA for d in data)
    more = callbacks.matches(Action.MORE)
    assert more(data[-1]) and more(f"more:{big}")
    assert callbacks.decode(f"more:7:{big}") == Tap(Action.MORE, big, 7)
    assert callbacks.decode(f"more:{big}") == Tap(Action.MORE, big)
    # data of keyboards already in chats
    assert callbacks.decode("mask:3:812") == Tap(Action.MASK, 812, 3)
    assert callbacks.decode("crop:812") == Tap(Action.MODE, 812)


# ----------------------------------------------------------------------------- the log


async def test_no_secret_in_a_debug_log_in_any_encoding(
    model_env: dict[str, str], tmp_path: Path, face_jpeg: bytes
) -> None:
    token = "555444333:AAHsecretHalfOfTheToken_for-Tests-42"
    hook_secret = "hook-secret-never-logged-77"
    async with (
        FakeTelegram(token, bot_username="facemask_debug_bot") as telegram,
        http_proxy(password="p@ss:w0rd/proxy") as proxy,
    ):
        bot = BotProcess(
            telegram, tmp_path, WORKERS="1", POLL_TIMEOUT="2", LOG_LEVEL="DEBUG",
            TELEGRAM_PROXY=proxy.url, WEBHOOK_SECRET=hook_secret, **model_env,
        )  # fmt: skip
        await bot.start()
        try:
            user = telegram.user("Dora")
            chat = telegram.private_chat(user)
            photo = await telegram.send_photo(chat, user, face_jpeg)
            keyboard = await telegram.wait_reply(photo, has_keyboard, timeout=90)
            await telegram.press(user, keyboard, "1 ")  # the tap downloads the photo
            await telegram.wait_reply(photo, is_photo, timeout=90)
        finally:
            assert await bot.stop() == 0, bot.log()[-3000:]
    log = bot.log()
    assert "HTTP Request: GET" in log  # httpx logs every request at DEBUG
    secrets = [token, token.split(":")[1], hook_secret, proxy.password, proxy.url]
    forms = {proxy.authorization}
    for secret in secrets:
        for form in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret)):
            forms |= {form, form.lower(), form.replace("%3A", "%3a")}
    forms |= {base64.b64encode(s.encode()).decode() for s in secrets}
    found = {form: log.count(form) for form in forms if form in log}
    assert found == {}, found
    assert "/file/bot<secret>/" in log  # the download URL was logged, and redacted
    assert "Traceback" not in log
