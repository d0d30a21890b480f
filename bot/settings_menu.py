"""/settings: one chat's settings in an inline menu (the chat's :class:`~bot.state.ChatSettings`).

In a private chat the person changes them; in a group only its admins may (getChatMember, asked
again on every tap, since anyone can tap a menu someone else opened). Settings are saved before
the menu shows them, so they survive a restart. Button data is ``"set:<what>"``
(:data:`bot.callbacks.Action.SETTINGS`).
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot import callbacks, groups, i18n, texts
from bot.callbacks import Action, matches
from bot.i18n import Translator
from bot.kit import Context
from bot.persistence import save_now
from bot.state import ChatSettings
from core.results import Mode

logger = logging.getLogger(__name__)

AUTOMATIC = "auto"  # the language choice "each person's own"
LANGUAGE_COLUMNS = 2


def register(app: Application) -> None:
    app.add_handler(CommandHandler("settings", settings_command))
    app.add_handler(CallbackQueryHandler(settings_button, pattern=matches(Action.SETTINGS)))


def menu_text(t: Translator, settings: ChatSettings, group: bool) -> str:
    lines = [
        t(texts.SETTINGS_TITLE_GROUP if group else texts.SETTINGS_TITLE_PRIVATE),
        "",
        t(texts.SETTINGS_ABOUT_MODE),
        t(texts.SETTINGS_ABOUT_LANGUAGE),
    ]
    if group:  # quiet and auto are about groups
        lines += [t(texts.SETTINGS_ABOUT_QUIET), t(texts.SETTINGS_ABOUT_AUTO)]
    return "\n".join(lines)


def menu_keyboard(t: Translator, settings: ChatSettings, group: bool) -> InlineKeyboardMarkup:
    mode = texts.SETTING_MODE_FACES if settings.mode is Mode.FACES else texts.SETTING_MODE_WHOLE
    language = (
        i18n.LANGUAGES[settings.language]
        if settings.language in i18n.LANGUAGES
        else t(texts.LANGUAGE_AUTOMATIC)
    )
    rows = [
        [_button(t(mode), "mode")],
        [_button(t(texts.SETTING_LANGUAGE, language=language), "lang")],
    ]
    if group:
        quiet = texts.SETTING_QUIET_ON if settings.quiet else texts.SETTING_QUIET_OFF
        auto = texts.SETTING_AUTO_ON if settings.auto else texts.SETTING_AUTO_OFF
        rows += [[_button(t(quiet), "quiet")], [_button(t(auto), "auto")]]
    rows.append([_button(t(texts.SETTINGS_DONE), "done")])
    return InlineKeyboardMarkup(rows)


def language_keyboard(t: Translator, chosen: str | None) -> InlineKeyboardMarkup:
    """Each language in its own name; the chosen one ticked."""

    def label(name: str, code: str | None) -> str:
        return f"✓ {name}" if code == chosen else name

    choices = [_button(label(t(texts.LANGUAGE_AUTOMATIC), None), f"lang:{AUTOMATIC}")]
    choices += [_button(label(name, code), f"lang:{code}") for code, name in i18n.LANGUAGES.items()]
    rows = [choices[i : i + LANGUAGE_COLUMNS] for i in range(0, len(choices), LANGUAGE_COLUMNS)]
    rows.append([_button(t(texts.SETTINGS_BACK), "back")])
    return InlineKeyboardMarkup(rows)


def _button(text: str, action: str) -> InlineKeyboardButton:
    data = callbacks.encode(Action.SETTINGS, choice=action)
    return InlineKeyboardButton(text, callback_data=data)


async def may_change(update: Update, context: Context) -> bool:
    """Anyone in a private chat; in a group, its admins (anonymous ones post as the group)."""
    chat = update.effective_chat
    if chat.type == ChatType.PRIVATE:
        return True
    sender = update.message.sender_chat if update.message is not None else None
    if sender is not None and sender.id == chat.id:
        return True
    return await groups.is_admin(context.bot, chat.id, update.effective_user.id)


async def settings_command(update: Update, context: Context) -> None:
    t = context.t
    message = update.effective_message
    if not await may_change(update, context):
        await message.reply_text(t(texts.SETTINGS_ADMINS_ONLY), do_quote=True)
        return
    group = update.effective_chat.type != ChatType.PRIVATE
    settings = context.chat_data.settings
    await message.reply_text(
        menu_text(t, settings, group),
        reply_markup=menu_keyboard(t, settings, group),
        do_quote=True,
    )


async def settings_button(update: Update, context: Context) -> None:
    query = update.callback_query
    t = context.t
    if query.message is None or context.chat_data is None:  # an inline message: not ours
        await query.answer()
        return
    if not await may_change(update, context):
        await query.answer(t(texts.SETTINGS_ADMINS_ONLY), show_alert=True)
        return
    chat_id = query.message.chat.id
    group = query.message.chat.type != ChatType.PRIVATE
    settings = context.chat_data.settings
    action = callbacks.decode(query.data).choice

    if action == "lang":
        await query.answer()
        await _show(query, t(texts.SETTINGS_PICK_LANGUAGE), language_keyboard(t, settings.language))
        return
    if action == "back":
        await query.answer()
        await _show(query, menu_text(t, settings, group), menu_keyboard(t, settings, group))
        return
    if action == "done":
        await query.answer(t(texts.SETTINGS_SAVED))
        await _show(query, t(texts.SETTINGS_CLOSED), None)
        return

    if action == "mode":
        settings.mode = Mode.WHOLE if settings.mode is Mode.FACES else Mode.FACES
    elif action == "quiet" and group:
        settings.quiet = not settings.quiet
    elif action == "auto" and group:
        if not settings.auto and not await groups.sees_everything(context, chat_id):
            await query.answer(t(texts.AUTO_NEEDS_ACCESS), show_alert=True)
            return
        settings.auto = not settings.auto
    elif action.startswith("lang:") and action[5:] in (AUTOMATIC, *i18n.LANGUAGES):
        settings.language = None if action[5:] == AUTOMATIC else action[5:]
    else:  # a menu of another version
        await query.answer()
        return
    await save_now(context, chat_id=chat_id)  # before the menu shows it
    logger.info("chat %s settings: %s", chat_id, settings)
    t = context.t  # the language may have just changed
    await query.answer(t(texts.SETTINGS_SAVED))
    await _show(query, menu_text(t, settings, group), menu_keyboard(t, settings, group))


async def _show(query: object, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=markup)  # type: ignore[attr-defined]
    except BadRequest as error:  # the same menu again (a double tap): nothing to change
        if "not modified" not in error.message.lower():
            raise
