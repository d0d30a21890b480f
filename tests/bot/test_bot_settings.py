"""/settings through the real bot: admins only in groups, every setting's effect, a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from telegram import Chat, Message, User

from bot import i18n, texts
from bot.persistence import CHAT, SQLitePersistence
from bot.state import ChatSettings, ChatState, PhotoRequest
from core.results import Mode
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram


def labels(message: Message) -> list[str]:
    markup = message.reply_markup
    return [b.text for row in markup.inline_keyboard for b in row] if markup else []


async def open_menu(telegram: FakeTelegram, chat: Chat, admin: User) -> Message:
    me = telegram.bot_user.username
    command = "/settings" if chat.type == Chat.PRIVATE else f"/settings@{me}"
    menu = await telegram.wait_reply(await telegram.send_text(chat, admin, command))
    assert menu.reply_markup is not None, menu.text
    return menu


async def tap(telegram: FakeTelegram, user: User, menu: Message, label: str) -> dict:
    """Tap a menu button as it is now; the callback's answer (the toast or alert)."""
    current = telegram.message(menu.chat.id, menu.message_id)
    query = await telegram.press(user, current, label)
    return await telegram.wait_for(lambda: telegram.state.callback_answers.get(query))


async def shows(telegram: FakeTelegram, menu: Message, label: str) -> None:
    await telegram.wait_for(
        lambda: label in labels(telegram.message(menu.chat.id, menu.message_id)),
        what=f"the menu to show {label!r}",
    )


async def test_admins_change_settings_others_are_refused(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    boss, pat = telegram.user("Boss"), telegram.user("Pat")
    group = telegram.group("Settings", owner=boss)  # the owner counts as an admin
    me = telegram.bot_user.username

    refused = await telegram.send_text(group, pat, f"/settings@{me}")
    assert (await telegram.wait_reply(refused)).text == texts.SETTINGS_ADMINS_ONLY
    menu = await open_menu(telegram, group, boss)
    assert menu.text.startswith(texts.SETTINGS_TITLE_GROUP)
    assert labels(menu) == [
        texts.SETTING_MODE_FACES,
        texts.SETTING_LANGUAGE.format(language=texts.LANGUAGE_AUTOMATIC),
        texts.SETTING_QUIET_OFF,
        texts.SETTING_AUTO_OFF,
        texts.SETTINGS_DONE,
    ]

    # a member tapping the admin's menu: refused, nothing changes
    answer = await tap(telegram, pat, menu, texts.SETTING_QUIET_OFF)
    assert answer["text"] == texts.SETTINGS_ADMINS_ONLY and answer["show_alert"] in (True, "true")
    assert texts.SETTING_QUIET_OFF in labels(telegram.message(group.id, menu.message_id))

    # quiet: a named mask gets the photo alone, no buttons under it
    answer = await tap(telegram, boss, menu, texts.SETTING_QUIET_OFF)
    assert answer["text"] == texts.SETTINGS_SAVED
    await shows(telegram, menu, texts.SETTING_QUIET_ON)
    request = await telegram.send_photo(group, pat, face_jpeg, caption=f"/mask@{me} 5")
    result = await telegram.wait_reply(request, lambda m: bool(m.photo), timeout=60)
    assert catalog.get(5).name in result.caption and result.reply_markup is None

    # auto needs the bot to see every photo: here it does not (privacy on, not an admin)
    answer = await tap(telegram, boss, menu, texts.SETTING_AUTO_OFF)
    assert answer["text"] == texts.AUTO_NEEDS_ACCESS and answer["show_alert"] in (True, "true")
    assert texts.SETTING_AUTO_OFF in labels(telegram.message(group.id, menu.message_id))

    await tap(telegram, boss, menu, texts.SETTINGS_DONE)
    await telegram.wait_for(
        lambda: telegram.message(group.id, menu.message_id).text == texts.SETTINGS_CLOSED
    )
    assert labels(telegram.message(group.id, menu.message_id)) == []


async def test_auto_mode_and_the_default_mode_where_the_bot_sees_everything(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    boss, pat = telegram.user("Boss"), telegram.user("Pat")
    group = telegram.group("Auto", admins=(boss,), bot_admin=True)
    plain = await telegram.send_photo(group, pat, face_jpeg, caption="before auto")
    menu = await open_menu(telegram, group, boss)
    await asyncio.sleep(0.5)
    assert telegram.replies_to(plain) == []  # auto is off by default

    await tap(telegram, boss, menu, texts.SETTING_AUTO_OFF)
    await shows(telegram, menu, texts.SETTING_AUTO_ON)
    await tap(telegram, boss, menu, texts.SETTING_MODE_FACES)
    await shows(telegram, menu, texts.SETTING_MODE_WHOLE)

    # every photo now gets the keyboard, starting in the group's mode (whole photo)
    photo = await telegram.send_photo(group, pat, face_jpeg, caption="after auto")
    keyboard = await telegram.wait_reply(photo, lambda m: m.reply_markup is not None)
    assert labels(keyboard)[7] == texts.MORE  # a group's compact keyboard
    await telegram.press(pat, keyboard, texts.MORE)
    await telegram.wait_for(
        lambda: texts.MODE_WHOLE_BUTTON in labels(telegram.message(group.id, keyboard.message_id))
    )
    await telegram.press(pat, keyboard, "1 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    assert "1 face" in result.caption  # the whole photo is one face
    helped = await telegram.send_text(group, pat, "/help")
    assert texts.GROUP_HOW_AUTO in (await telegram.wait_reply(helped)).text


async def test_settings_survive_a_restart(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    de = i18n.translator("de")
    anna = telegram.user("Anna")  # her Telegram is in English
    chat = telegram.private_chat(anna)
    menu = await open_menu(telegram, chat, anna)
    assert menu.text.startswith(texts.SETTINGS_TITLE_PRIVATE)
    assert texts.SETTING_QUIET_OFF not in labels(menu)  # quiet and auto are for groups
    await tap(telegram, anna, menu, "Language")
    await shows(telegram, menu, "Deutsch")
    await tap(telegram, anna, menu, "Deutsch")
    await telegram.wait_for(
        lambda: telegram.message(chat.id, menu.message_id).text.startswith(
            de(texts.SETTINGS_TITLE_PRIVATE)
        )
    )
    boss, pat = telegram.user("Boss"), telegram.user("Pat")
    group = telegram.group("Restart", admins=(boss,))
    group_menu = await open_menu(telegram, group, boss)
    await tap(telegram, boss, group_menu, texts.SETTING_QUIET_OFF)
    await shows(telegram, group_menu, texts.SETTING_QUIET_ON)

    await bot.restart()

    start = await telegram.send_text(chat, anna, "/start")
    me = telegram.bot_user.username
    assert (await telegram.wait_reply(start)).text == de(texts.START, bot=me)
    request = await telegram.send_photo(group, pat, face_jpeg, caption=f"/mask@{me} villain")
    result = await telegram.wait_reply(request, lambda m: bool(m.photo), timeout=60)
    assert result.reply_markup is None  # still quiet
    again = await open_menu(telegram, group, boss)
    assert texts.SETTING_QUIET_ON in labels(again)


async def test_a_state_stored_before_settings_existed_gets_the_defaults(tmp_path: Path) -> None:
    old = ChatState()
    old.remember(12, PhotoRequest("AgAD-12", False, Mode.WHOLE))
    del old.__dict__["settings"]  # what the previous version pickled
    store = SQLitePersistence(tmp_path / "facemask-bot.sqlite3")
    await store.save(CHAT, 5, old)
    await store.close()

    again = SQLitePersistence(tmp_path / "facemask-bot.sqlite3")
    [(chat_id, state)] = (await again.get_chat_data()).items()
    assert chat_id == 5 and state.settings == ChatSettings()
    assert state.photos[12].mode is Mode.WHOLE
