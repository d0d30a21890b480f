"""Groups: what works in each privacy mode, masks named in the command, the welcome, auto mode.

Telegram runs bots in privacy mode unless @BotFather's /setprivacy turns it off. A bot in
privacy mode receives, in a group, only commands addressed to it (``/mask@bot``, in a caption or
as a reply), replies to its own messages and service messages; where it is an admin, or with
privacy off, it receives every message, so a bare ``/mask`` caption and a mention work too. The
bot reads its mode from getMe at start (``can_read_all_group_messages``), logs it, and says in
/help and in its welcome exactly what works in that group.

A mask named in the command (``/mask 3``, ``/mask villain``, ``/mask@bot 7``, as a caption or as
a reply to a photo) masks the photo at once, no keyboard first; names are the masks' names and
labels in any shipped language, any case.
"""

from __future__ import annotations

import logging
import re

from telegram import Bot, ChatMember, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ChatMemberHandler, CommandHandler, MessageHandler, filters

from bot import handlers, kit, texts
from bot.i18n import Translator
from bot.kit import IMAGE, Context
from masks import names as mask_names
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

GROUPS = filters.ChatType.GROUPS
ADMINS = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
IN_CHAT = (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER)
#: "/mask", "/mask@bot", then whatever follows on that line: a mask's number or name
_MASK_COMMAND = re.compile(
    r"(?<!\S)/mask(?:@(?P<bot>\w+))?(?![\w@])[ \t]*(?P<arg>[^\n]*?)(?=[ \t]+/\w|\n|$)", re.I
)
#: the longest name repeated back in "I don't know a mask called ..."
ECHO_CHARS = 40


def direct_argument(text: str | None, username: str) -> str | None:
    """What follows the first /mask addressed to this bot in ``text`` (None if nothing does)."""
    for match in _MASK_COMMAND.finditer(text or ""):
        if match["bot"] is None or match["bot"].lower() == username.lower():
            return match["arg"].strip() or None
    return None


def find_mask(name: str, masks: list[MaskSpec]) -> MaskSpec | None:
    """The mask ``name`` means: its number, emoji, or name or label in any shipped language
    (:mod:`masks.names`, which the command line matches with too)."""
    return mask_names.find(name, masks)


def unknown_mask_text(name: str, masks: list[MaskSpec], t: Translator) -> str:
    shown = name if len(name) <= ECHO_CHARS else name[: ECHO_CHARS - 1] + "…"
    buttons = [texts.mask_button(mask, t) for mask in masks]
    return "\n".join([t(texts.UNKNOWN_MASK_NAME, name=shown), *buttons])


def group_lines(t: Translator, bot: str, *, sees_all: bool, auto: bool) -> list[str]:
    """What works in a group, given whether the bot sees every message there."""
    lines = [t(texts.GROUP_HELP_TITLE), t(texts.GROUP_HOW_ADDRESSED, bot=bot)]
    if sees_all:
        lines.append(t(texts.GROUP_HOW_BARE, bot=bot))
    lines.append(t(texts.GROUP_HOW_DIRECT, bot=bot))
    lines.append(t(texts.GROUP_HOW_MORE, bot=bot))
    if sees_all and auto:
        lines.append(t(texts.GROUP_HOW_AUTO))
    if not sees_all:
        lines += ["", t(texts.GROUP_PRIVACY_ON)]
    lines += ["", t(texts.GROUP_SETTINGS_HINT, bot=bot), t(texts.GROUP_PHOTOS_PRIVATE)]
    return lines


def read_privacy_mode(bot: Bot) -> bool:
    """getMe's ``can_read_all_group_messages`` (read at start), logged in words."""
    sees_all = bool(bot.can_read_all_group_messages)
    if sees_all:
        logger.info(
            "group privacy mode is off: every group message reaches me "
            "(bare /mask captions, mentions and auto mode work in every group)"
        )
    else:
        logger.info(
            "group privacy mode is on: in groups I receive /mask@%s, replies to my messages, "
            "and everything only where I am an admin (@BotFather's /setprivacy turns it off)",
            bot.username,
        )
    return sees_all


async def is_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    """Whether the user (or the bot, by its id) is an admin or the owner of the chat."""
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError as error:
        logger.info("could not look up user %s in chat %s: %s", user_id, chat_id, error)
        return False
    return member.status in ADMINS


async def sees_everything(context: Context, chat_id: int) -> bool:
    """Whether every message of this group reaches the bot: privacy off, or it is an admin."""
    return context.services.sees_all_groups or await is_admin(context.bot, chat_id, context.bot.id)


# ----------------------------------------------------------------------------- handlers


class _DirectMaskCaption(filters.MessageFilter):
    """A caption with /mask (or /mask@thisbot) followed by a mask's number or name."""

    def filter(self, message: Message) -> bool:
        return direct_argument(message.caption, message.get_bot().username or "") is not None


DIRECT_CAPTION = _DirectMaskCaption(name="DirectMaskCaption")


def register(app: Application) -> None:
    """Group handlers; registered before bot.handlers', which take what these leave."""
    app.add_handler(ChatMemberHandler(welcome, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(IMAGE & DIRECT_CAPTION, direct_caption))
    app.add_handler(CommandHandler("mask", direct_command, has_args=True))
    app.add_handler(CommandHandler("help", group_help, filters=GROUPS))
    app.add_handler(MessageHandler(IMAGE & GROUPS & ~kit.ADDRESSED_TO_BOT, auto_photo))


async def direct_caption(update: Update, context: Context) -> None:
    """A photo captioned "/mask 3": masked at once."""
    message = update.effective_message
    argument = direct_argument(message.caption, context.bot.username) or ""
    await _mask_at_once(update, context, message, argument)


async def direct_command(update: Update, context: Context) -> None:
    """ "/mask villain" as a reply to a photo: that photo, masked at once."""
    message = update.effective_message
    target = message.reply_to_message
    if target is None or not kit.is_image(target):
        hint = handlers.mask_hint(message, context, context.t)
        await message.reply_text(hint, do_quote=True)
        return
    await _mask_at_once(update, context, target, " ".join(context.args or []))


async def _mask_at_once(
    update: Update, context: Context, photo_message: Message, argument: str
) -> None:
    t = context.t
    request_message = update.effective_message
    svc = context.services
    mask = find_mask(argument, svc.masks)
    if mask is None:
        await request_message.reply_text(unknown_mask_text(argument, svc.masks, t), do_quote=True)
        return
    request = await handlers.remember_photo(photo_message, context, t)
    if request is None:  # too big, and said so
        return
    if await kit.refused_by_throttle(update, context):
        return
    chat = update.effective_chat
    quiet = chat.type != ChatType.PRIVATE and context.chat_data.settings.quiet
    await handlers.mask_and_reply(
        context, chat.id, photo_message.message_id, request, mask, t,
        user_id=update.effective_user.id, react_to=request_message.message_id,
        keyboard=not quiet, buttons=not quiet, compact=chat.type != ChatType.PRIVATE,
    )  # fmt: skip


async def group_help(update: Update, context: Context) -> None:
    """/help in a group: exactly what works in this group."""
    t = context.t
    chat_id = update.effective_chat.id
    lines = group_lines(
        t,
        context.bot.username,
        sees_all=await sees_everything(context, chat_id),
        auto=context.chat_data.settings.auto,
    )
    await update.effective_message.reply_text("\n".join(lines), do_quote=True)


async def welcome(update: Update, context: Context) -> None:
    """Added to a group: say hello and how to use the bot there, once."""
    change = update.my_chat_member
    joined = (
        change.old_chat_member.status not in IN_CHAT and change.new_chat_member.status in IN_CHAT
    )
    if change.chat.type == ChatType.PRIVATE or not joined:
        return  # promotions, demotions, leaving, a private chat blocked or unblocked
    t = context.t  # whoever added the bot
    sees_all = context.services.sees_all_groups or change.new_chat_member.status in ADMINS
    lines = group_lines(
        t, context.bot.username, sees_all=sees_all, auto=context.chat_data.settings.auto
    )
    logger.info("added to group %s by user %s", change.chat.id, change.from_user.id)
    await context.bot.send_message(change.chat.id, "\n".join([t(texts.WELCOME), "", *lines]))


async def auto_photo(update: Update, context: Context) -> None:
    """Any photo in a group with auto on (the bot receives them only if it sees everything)."""
    if context.chat_data.settings.auto:
        await handlers.offer_masks(update.effective_message, context, context.t)
