"""The toolkit every feature module of the bot shares.

A feature (``bot/handlers.py`` for photos, ``bot/video.py``, ``bot/stickers.py``, ...) imports
what it needs from here and nothing private from another feature:

- :class:`Context`: the handlers' ``context``, with ``context.services`` (what the process
  holds: settings, the worker queue, the masks) and ``context.t`` (the update's language).
- :func:`opening`: the steps every keyboard button starts with (read the callback data, find
  the request the keyboard belongs to, or answer "send it again").
- downloading a file (:func:`download`), a chat action while work runs (:func:`showing`),
  Telegram's size limits (:func:`too_big`, :func:`fits_photo`), the per-user throttle
  (:func:`refused_by_throttle`), a toggle shown on the same keyboard (:func:`toggle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot, filters

from bot import callbacks, i18n, journal, state, texts
from bot.i18n import Translator
from bot.persistence import save_now
from bot.queue import MaskQueue
from bot.settings import Settings
from bot.state import ChatState, UserState
from core.errors import FaceMaskError
from core.results import MaskedPhoto
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

SERVICES = "services"  # bot_data key; bot_data itself is not persisted
SEND_PHOTO_MAX_BYTES = 10 * 1024 * 1024  # sendPhoto's limit; bigger results go as files
SEND_PHOTO_MAX_SIDES = 10_000  # sendPhoto's limit on width + height
CHAT_ACTION_SECONDS = 4.5  # Telegram shows a chat action for 5 s
# one keyboard edit per message per interval: taps in between are shown together, so one
# member's fast tapping cannot fill a group's flood budget (20 messages a minute)
EDIT_INTERVAL_SECONDS = 1.0

R = TypeVar("R")  # what a chat keeps for a message with a keyboard (bot.state)


@dataclass
class Services:
    """What handlers need besides the update; lives in ``bot_data`` for the process's life."""

    settings: Settings
    queue: MaskQueue
    masks: list[MaskSpec]
    background: list[Any] = field(default_factory=list)
    # (chat id, message id) -> the task bringing that keyboard up to date
    pending_edits: dict[tuple[int, int], asyncio.Task[None]] = field(default_factory=dict)
    # getMe's can_read_all_group_messages: privacy mode off (bot.groups reads it at start)
    sees_all_groups: bool = False
    # chats that refused a reaction: the chat action alone shows progress there
    no_reactions: set[int] = field(default_factory=set)


def services(context: CallbackContext[Any, Any, Any, Any]) -> Services:
    return context.bot_data[SERVICES]


def translator(update: object, context: CallbackContext[Any, Any, Any, Any]) -> Translator:
    """The language to answer in: the chat's choice, else the person's (bot.i18n)."""
    if not isinstance(update, Update):
        return i18n.ENGLISH
    return i18n.for_update(update, context.chat_data)


class Context(CallbackContext[ExtBot[None], UserState, ChatState, dict[str, Any]]):
    """The ``context`` of every handler (python-telegram-bot's ``contexttypesbot.py``)."""

    _update: object = None

    @classmethod
    def from_update(cls, update: object, application: Application[Any, Any, Any, Any, Any, Any]
                    ) -> Context:  # fmt: skip
        context = super().from_update(update, application)
        context._update = update
        return context

    @property
    def services(self) -> Services:
        return services(self)

    @property
    def t(self) -> Translator:
        """The update's language, read each time: /settings may just have changed it."""
        return translator(self._update, self)


#: bot.state's chat and user states, with this context
CONTEXT_TYPES = ContextTypes(
    context=Context,
    chat_data=state.CONTEXT_TYPES.chat_data,
    user_data=state.CONTEXT_TYPES.user_data,
)


# ----------------------------------------------------------------------------- what comes in


class _AddressedToBot(filters.MessageFilter):
    """A caption holding /mask (or /mask@thisbot) or mentioning this bot."""

    def filter(self, message: Message) -> bool:
        username = (message.get_bot().username or "").lower()
        for entity, text in message.parse_caption_entities().items():
            text = text.lower()
            if entity.type == MessageEntity.BOT_COMMAND and text in ("/mask", f"/mask@{username}"):
                return True
            if entity.type == MessageEntity.MENTION and text == f"@{username}":
                return True
        return False


IMAGE = filters.PHOTO | filters.Document.IMAGE
ADDRESSED_TO_BOT = _AddressedToBot(name="AddressedToBot")


def is_image(message: Message) -> bool:
    """A photo, or an image sent as a file."""
    if message.photo:
        return True
    document = message.document
    return bool(document and (document.mime_type or "").startswith("image/"))


def mask_by_id(masks: list[MaskSpec], mask_id: int | None) -> MaskSpec | None:
    return next((mask for mask in masks if mask.id == mask_id), None)


# ----------------------------------------------------------------------------- buttons


@dataclass
class Opened(Generic[R]):
    """A tap on one of the bot's keyboards, read: the query, its callback data, the message
    id it works on and what the chat keeps for it."""

    query: CallbackQuery
    tap: callbacks.Tap
    target_id: int
    request: R


async def opening(
    update: Update, context: Context, kept: Callable[[ChatState], Mapping[int, R]]
) -> Opened[R] | None:
    """The steps every keyboard button starts with: the callback data read and the request
    the chat keeps for its message in ``kept`` (its photos, albums or videos).

    None, the tap answered "send it again", where it finds nothing: an inline message, a
    request forgotten, or callback data naming another message (forged, or from another
    chat: requests are looked up in this chat only, and only from the keyboard made for them).
    """
    query = update.callback_query
    tap = callbacks.decode(query.data)
    if query.message is None or context.chat_data is None or tap is None:
        await query.answer(context.t(texts.PHOTO_GONE), show_alert=True)
        return None
    request = kept(context.chat_data).get(tap.target_id)
    if request is None or not _keyboard_of(query.message, tap.target_id):
        await query.answer(context.t(texts.PHOTO_GONE), show_alert=True)
        return None
    return Opened(query, tap, tap.target_id, request)


def _keyboard_of(message: object, target_id: int) -> bool:
    """False if ``message`` (a keyboard) visibly belongs to another message than ``target_id``."""
    replied = getattr(message, "reply_to_message", None)
    return replied is None or replied.message_id == target_id


async def refused_by_throttle(update: Update, context: Context, count: int = 1) -> bool:
    """True, and the user told how long to wait, when ``count`` more masked pictures would be
    too many lately (a tap gets an alert, a message a reply); False records them."""
    settings = services(context).settings
    wait = context.user_data.throttle(settings.throttle_jobs, settings.throttle_seconds, count)
    if not wait:
        return False
    text = context.t(texts.TOO_MANY, seconds=wait)
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    else:
        await update.effective_message.reply_text(text, do_quote=True)
    return True


async def toggle(
    query: CallbackQuery,
    context: Context,
    flip: Callable[[], object],
    build: Callable[[], InlineKeyboardMarkup],
) -> None:
    """A toggle on a keyboard: flipped and saved before the tap is answered or anyone sees the
    new label (a crash in between cannot leave a label the saved state contradicts), then shown
    on the same message (``build`` runs when the edit is sent: fast taps in between show as one
    edit)."""
    flip()
    await save_now(context, chat_id=query.message.chat.id)
    await journal.answered(context)  # flipped and saved: a replay would flip it back
    await query.answer()
    edit_soon(context, query.message, build)


def edit_soon(context: Context, message: Any, build: Callable[[], InlineKeyboardMarkup]) -> None:
    """Show ``build()``'s keyboard on ``message``: at once, then at most once per interval."""
    svc = services(context)
    key = (message.chat.id, message.message_id)
    if key not in svc.pending_edits:  # else the edit under way shows the latest state
        shown = getattr(message, "reply_markup", None)
        task = asyncio.create_task(_edit_keyboard(context, key, shown, build))
        svc.pending_edits[key] = task


async def _edit_keyboard(
    context: Context,
    key: tuple[int, int],
    shown: InlineKeyboardMarkup | None,
    build: Callable[[], InlineKeyboardMarkup],
) -> None:
    try:
        while (markup := build()) != shown:
            try:
                await context.bot.edit_message_reply_markup(key[0], key[1], reply_markup=markup)
            except BadRequest as error:
                if "not modified" not in error.message.lower():
                    logger.info("could not update the keyboard in chat %s: %s", key[0], error)
                    return
            except TelegramError as error:
                logger.info("could not update the keyboard in chat %s: %s", key[0], error)
                return
            shown = markup
            await asyncio.sleep(EDIT_INTERVAL_SECONDS)
    finally:
        services(context).pending_edits.pop(key, None)


# ----------------------------------------------------------------------------- files and limits


@contextlib.asynccontextmanager
async def showing(context: Context, chat_id: int, action: str) -> AsyncIterator[None]:
    """Show a chat action ("sending photo...") for as long as the block runs.

    Telegram clears an action after 5 seconds, so it is sent again while work is queued.
    """

    async def repeat() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, action)
            await asyncio.sleep(CHAT_ACTION_SECONDS)

    task = asyncio.create_task(repeat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def download(context: Context, file_id: str, t: Translator) -> bytes:
    """The file's bytes, kept in memory only."""
    try:
        telegram_file = await context.bot.get_file(file_id)
    except BadRequest as error:
        if "too big" in error.message.lower():
            raise FileTooBigError(too_big(services(context).settings, t)) from error
        raise
    return bytes(await telegram_file.download_as_bytearray())


class FileTooBigError(FaceMaskError):
    """Telegram would not hand the file over; its sentence comes from texts.TOO_BIG."""

    code = "file_too_big"


def too_big(settings: Settings, t: Translator) -> str:
    """What to say about a file over ``MAX_FILE_SIZE`` (Telegram lets bots download 20 MB)."""
    return t(texts.TOO_BIG, limit=settings.max_file_size // (1024 * 1024))


def fits_photo(result: MaskedPhoto) -> bool:
    """Whether Telegram takes the result as a photo (else it goes as a file)."""
    return (
        len(result.image) <= SEND_PHOTO_MAX_BYTES
        and result.width + result.height <= SEND_PHOTO_MAX_SIDES
        and result.format.lower() in ("jpeg", "jpg", "png")
    )


def file_name(mask: MaskSpec, extension: str) -> str:
    """What a masked picture sent as a file is called: ``masked-<mask label>.<extension>``."""
    return f"masked-{mask.label.lower().replace(' ', '-')}.{extension.lower()}"
