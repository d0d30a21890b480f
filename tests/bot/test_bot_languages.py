"""The real bot speaks each person's Telegram language: replies, buttons, captions, menus."""

from __future__ import annotations

from telegram import Message

from bot import i18n, texts
from core.results import Mode
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram


def labels(message: Message) -> list[str]:
    assert message.reply_markup is not None, "no keyboard"
    return [button.text for row in message.reply_markup.inline_keyboard for button in row]


async def test_a_russian_user_gets_russian_replies_buttons_and_captions(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    ru = i18n.translator("ru")
    me = telegram.bot_user.username
    user = telegram.user("Оля", language_code="ru")
    chat = telegram.private_chat(user)

    start = await telegram.send_text(chat, user, "/start")
    assert (await telegram.wait_reply(start)).text == ru(texts.START, bot=me)
    assert ru(texts.START).startswith("Привет!")
    help_ = await telegram.send_text(chat, user, "/help")
    assert (await telegram.wait_reply(help_)).text == ru(texts.HELP)

    photo = await telegram.send_photo(chat, user, face_jpeg)
    keyboard = await telegram.wait_reply(photo, lambda m: m.reply_markup is not None)
    assert keyboard.text == ru(texts.CHOOSE)
    masks = catalog.masks()
    assert labels(keyboard) == [
        *(texts.mask_button(mask, ru) for mask in masks),
        ru(texts.MODE_FACES_BUTTON),
        ru(texts.QUALITY_OFF),
        ru(texts.MIX_BUTTON),
        ru(texts.ALL_SEVEN),
    ]
    assert "Злодей" in labels(keyboard)[6] and "Обрезка" in labels(keyboard)[7]

    query = await telegram.press(user, keyboard, "7 ")
    result = await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    assert result.caption.startswith(f"{masks[6].emoji} {ru(masks[6].name)} · ")
    assert result.caption.endswith(("лицо", "лица", "лиц"))
    answer = await telegram.wait_for(lambda: telegram.state.callback_answers.get(query))
    assert answer["text"] == ru(texts.WORKING)

    # the Crop toggle's new label is Russian too
    await telegram.press(user, keyboard, ru(texts.MODE_FACES_BUTTON))
    await telegram.wait_for(
        lambda: (
            labels(telegram.message(chat.id, keyboard.message_id))[7] == ru(texts.MODE_WHOLE_BUTTON)
        )
    )


async def test_other_languages_and_english_for_the_rest(
    telegram: FakeTelegram, bot: BotProcess, blank_png: bytes
) -> None:
    me = telegram.bot_user.username
    for code, language in (("pt-br", "pt_BR"), ("uk", "uk"), ("tr", "tr"), ("fr", "en")):
        t = i18n.translator(language)
        user = telegram.user(f"Person {code}", language_code=code)
        chat = telegram.private_chat(user)
        start = await telegram.send_text(chat, user, "/start")
        assert (await telegram.wait_reply(start)).text == t(texts.START, bot=me), code
    # an error, by its code, in the person's language
    user = telegram.user("Hans", language_code="de")
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, blank_png)
    keyboard = await telegram.wait_reply(photo, lambda m: m.reply_markup is not None)
    de = i18n.translator("de")
    await telegram.press(user, keyboard, "3 ")
    reply = await telegram.wait_reply(photo, lambda m: bool(m.text), after=1)
    assert reply.text == de(texts.ERRORS["no_face"])


async def test_menus_and_profile_in_every_language(telegram: FakeTelegram, bot: BotProcess) -> None:
    lists = telegram.state.command_lists
    for language in i18n.LANGUAGES:
        t = i18n.translator(language)
        code = "" if language == "en" else i18n.telegram_code(language)
        private = lists[("default", code)]
        assert [(c.command, c.description) for c in private] == [
            (name, t(texts.COMMANDS[name])) for name in texts.PRIVATE_COMMANDS
        ]
        assert "settings" not in {c.command for c in lists[("all_group_chats", code)]}
        assert "settings" in {c.command for c in lists[("all_chat_administrators", code)]}
        assert telegram.state.descriptions[code] == t(texts.DESCRIPTION)
        assert telegram.state.short_descriptions[code] == t(texts.SHORT_DESCRIPTION)
    assert telegram.state.descriptions["pt"] != telegram.state.descriptions[""]


async def test_a_chat_language_overrides_the_persons(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    """In a group set to Spanish, a German member's request is answered in Spanish."""
    es = i18n.translator("es")
    boss, hans = telegram.user("Boss"), telegram.user("Hans", language_code="de")
    group = telegram.group("Grupo", admins=(boss,))
    me = telegram.bot_user.username
    menu = await telegram.wait_reply(await telegram.send_text(group, boss, f"/settings@{me}"))
    await telegram.press(boss, menu, texts.SETTING_LANGUAGE.format(language="").rstrip())
    await telegram.wait_for(
        lambda: telegram.message(group.id, menu.message_id).text == texts.SETTINGS_PICK_LANGUAGE
    )
    await telegram.press(boss, telegram.message(group.id, menu.message_id), "Español")
    await telegram.wait_for(
        lambda: telegram.message(group.id, menu.message_id).text.startswith(
            es(texts.SETTINGS_TITLE_GROUP)
        )
    )
    photo = await telegram.send_photo(group, hans, face_jpeg, caption=f"/mask@{me}")
    keyboard = await telegram.wait_reply(photo, lambda m: m.reply_markup is not None)
    assert keyboard.text == es(texts.CHOOSE)
    assert labels(keyboard)[0] == texts.mask_button(catalog.get(1), es)
    assert labels(keyboard)[7] == es(texts.MORE)  # a group's compact keyboard
    await telegram.press(hans, keyboard, es(texts.MORE))
    await telegram.wait_for(
        lambda: (
            labels(telegram.message(group.id, keyboard.message_id))[7]
            == texts.mode_button(Mode.FACES, es)
        )
    )
