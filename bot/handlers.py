"""What the bot does with each update. Handlers are registered in :func:`register`.

Each handler parses the update, asks the inference worker through the queue, and replies.
State that must outlive a restart (which photo a keyboard belongs to, its mode) lives in the
chat's :class:`~bot.state.ChatState` (``context.chat_data``); the per-user throttle lives in
the user's :class:`~bot.state.UserState` (``context.user_data``). Both are persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import (
    CallbackQuery,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import gallery, i18n, journal, keyboards, texts
from bot.i18n import Translator
from bot.persistence import save_now
from bot.queue import MaskQueue
from bot.reactions import reacting
from bot.settings import Settings
from bot.state import ChatState, Context, PhotoRequest
from core.errors import FaceMaskError
from core.results import MaskedPhoto
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

SERVICES = "services"  # bot_data key; bot_data itself is not persisted
SEND_PHOTO_MAX_BYTES = 10 * 1024 * 1024  # sendPhoto's limit; bigger results go as files
SEND_PHOTO_MAX_SIDES = 10_000  # sendPhoto's limit on width + height
CHAT_ACTION_SECONDS = 4.5  # Telegram shows a chat action for 5 s
#: documents up to this size are downloaded and their first bytes checked before the keyboard
#: is shown, so a text file named .jpg is refused at once rather than after a tap
SNIFF_MAX_BYTES = 1024 * 1024
#: the signatures of the formats core decodes (JPEG, PNG, GIF, BMP, TIFF; WebP below)
IMAGE_SIGNATURES = (
    b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\0", b"MM\0*",
)  # fmt: skip
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


def services(context: Context) -> Services:
    return context.bot_data[SERVICES]


def translator(update: object, context: Context) -> Translator:
    """The language to answer in: the chat's choice, else the person's (bot.i18n)."""
    if not isinstance(update, Update):
        return i18n.ENGLISH
    return i18n.for_update(update, context.chat_data)


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


def register(app: Application) -> None:
    """Every handler of the bot, in the order they are tried."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("masks", masks_command))
    app.add_handler(CommandHandler("mask", mask_command))
    app.add_handler(MessageHandler(IMAGE & (private | ADDRESSED_TO_BOT), photo))
    app.add_handler(MessageHandler(private & filters.Document.ALL, not_an_image))
    app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, start))
    app.add_handler(CallbackQueryHandler(button, pattern=keyboards.CALLBACK_PATTERN))
    app.add_handler(CallbackQueryHandler(more, pattern=keyboards.MORE_PATTERN))
    app.add_handler(CallbackQueryHandler(unknown_button))  # every tap gets an answer
    app.add_error_handler(error_handler)


async def start(update: Update, context: Context) -> None:
    t = translator(update, context)
    text = t(texts.START, bot=context.bot.username)
    await update.effective_message.reply_text(text, do_quote=True)


async def help_command(update: Update, context: Context) -> None:
    t = translator(update, context)
    await update.effective_message.reply_text(t(texts.HELP), do_quote=True)


async def masks_command(update: Update, context: Context) -> None:
    message = update.effective_message
    t = translator(update, context)
    masks = services(context).masks
    picture = gallery.picture(masks)
    if picture is None:
        await message.reply_text(texts.masks_list(masks, t), do_quote=True)
        return
    caption = "\n".join([t(texts.MASKS_CAPTION), *(texts.mask_button(m, t) for m in masks)])
    picture_file = InputFile(picture, filename="masks.png")
    await message.reply_photo(picture_file, caption=caption, do_quote=True)


async def mask_command(update: Update, context: Context) -> None:
    """``/mask`` as a reply to a photo: offer the keyboard for that photo."""
    message = update.effective_message
    t = translator(update, context)
    target = message.reply_to_message
    if target is None or not is_image(target):
        await message.reply_text(mask_hint(message, context, t), do_quote=True)
        return
    await offer_masks(target, context, t)


def mask_hint(message: Message, context: Context, t: Translator) -> str:
    """How to use /mask, in the form that reaches the bot here: in a group, privacy mode
    delivers only ``/mask@bot``."""
    private = message.chat.type == ChatType.PRIVATE
    command = "/mask" if private else f"/mask@{context.bot.username}"
    return t(texts.MASK_HINT, command=command)


async def photo(update: Update, context: Context) -> None:
    await offer_masks(update.effective_message, context, translator(update, context))


async def not_an_image(update: Update, context: Context) -> None:
    t = translator(update, context)
    await update.effective_message.reply_text(t(texts.NOT_AN_IMAGE), do_quote=True)


async def button(update: Update, context: Context) -> None:
    """A mask button or the Crop toggle under one of our keyboards."""
    query = update.callback_query
    t = translator(update, context)
    tapped = await request_behind(query, context, t, lambda chat: chat.photos)
    if tapped is None:
        return
    photo_id, request = tapped
    svc = services(context)
    mask_id, _ = keyboards.parse(query.data)
    if mask_id is None:  # the toggle: same message, new keyboard
        await toggle(
            query, context, request.toggle_mode,
            lambda: keyboards.mask_keyboard(
                svc.masks, photo_id, request.mode, t, as_file=request.as_file
            ),
        )  # fmt: skip
        return
    mask = mask_by_id(svc.masks, mask_id)
    if mask is None:  # a button from a keyboard we never made
        await query.answer(t(texts.ERRORS["unknown_mask"]), show_alert=True)
        return
    if await refused_by_throttle(update, context, t):
        return
    await query.answer(t(texts.WORKING))
    await mask_and_reply(
        context, query.message.chat.id, photo_id, request, mask, t,
        user_id=query.from_user.id, react_to=photo_id,
    )  # fmt: skip


async def mask_and_reply(
    context: Context,
    chat_id: int,
    photo_id: int,
    request: PhotoRequest,
    mask: MaskSpec,
    t: Translator,
    *,
    user_id: int,
    react_to: int,
    keyboard: bool = False,
    buttons: bool = True,
    compact: bool = False,
) -> None:
    """Mask the photo and reply under it: the masked photo, or the error's sentence.

    While the worker runs, the request (``react_to``) wears a 👀 reaction where the chat allows
    reactions, and the chat shows "sending photo...". ``keyboard``: the masked photo carries
    the mask buttons, to try the others on the same photo; ``buttons`` False (a group's quiet
    setting): no buttons at all, not even "Sticker"; ``compact`` (groups): the masks and "⋯ More".
    """
    svc = services(context)
    reply_to = ReplyParameters(photo_id, allow_sending_without_reply=True)
    async with reacting(context.bot, chat_id, react_to, svc.no_reactions):
        try:
            async with _showing(context, chat_id, ChatAction.UPLOAD_PHOTO):
                image = await _download(context, request.file_id, t)
                result = await svc.queue.mask_photo(image, mask.id, request.mode)
        except FaceMaskError as error:
            logger.info("chat %s user %s mask %d: %s", chat_id, user_id, mask.id, error.code)
            await context.bot.send_message(
                chat_id, texts.error_text(error, t), reply_parameters=reply_to
            )
            await journal.answered(context)
            return
        logger.info(
            "chat %s user %s mask %d mode %s: %d faces, %dx%d, %.0f ms in the worker",
            chat_id, user_id, mask.id, request.mode,
            result.face_count, result.width, result.height, result.ms,
        )  # fmt: skip
        markup = keyboards.result_keyboard(
            svc.masks, photo_id, mask.id, request.mode, t,
            as_file=request.as_file, with_masks=keyboard, compact=compact,
        ) if buttons else None  # fmt: skip
        sent = await _send_result(
            context, chat_id, reply_to, mask, result, t, as_file=request.as_file, markup=markup
        )
        await journal.answered(context)  # a crash from here on must not send it twice
        if sent.photo and context.user_data is not None:  # inline mode offers it (bot.inline)
            context.user_data.share(sent.photo[-1].file_id, mask.id)
            await save_now(context, user_id=user_id)


async def more(update: Update, context: Context) -> None:
    """Tapped "⋯ More" under a group's compact keyboard: the full keyboard in its place."""
    query = update.callback_query
    t = translator(update, context)
    tapped = await request_behind(query, context, t, lambda chat: chat.photos)
    if tapped is None:
        return
    photo_id, request = tapped
    mask_id, _ = keyboards.parse(query.data)
    masks = services(context).masks

    def full() -> InlineKeyboardMarkup:  # built when the edit is sent: the latest toggles
        mode, as_file = request.mode, request.as_file
        if mask_id is None:  # under the photo's "Pick a mask"
            return keyboards.mask_keyboard(masks, photo_id, mode, t, as_file=as_file)
        return keyboards.result_keyboard(  # under a masked photo: its Sticker too
            masks, photo_id, mask_id, mode, t, as_file=as_file, with_masks=True
        )

    await query.answer()
    _edit_soon(context, query.message, full)


async def unknown_button(update: Update, context: Context) -> None:
    """A button whose data we do not recognise (an old keyboard): answered, never left spinning."""
    t = translator(update, context)
    await update.callback_query.answer(t(texts.PHOTO_GONE), show_alert=True)


async def request_behind(
    query: CallbackQuery,
    context: Context,
    t: Translator,
    kept: Callable[[ChatState], Mapping[int, R]],
) -> tuple[int, R] | None:
    """The message id a button works on (its callback data's last number) and what the chat
    keeps for it in ``kept`` (its photos, albums or videos).

    None, the tap answered "send it again", where it finds nothing: an inline message, a
    request forgotten, or callback data naming another message (forged, or from another
    chat: requests are looked up in this chat only, and only from the keyboard made for them).
    """
    if query.message is None or context.chat_data is None:  # an inline message: not ours
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return None
    target_id = int(query.data.rpartition(":")[2])
    request = kept(context.chat_data).get(target_id)
    if request is None or not _keyboard_of(query.message, target_id):
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return None
    return target_id, request


async def refused_by_throttle(
    update: Update, context: Context, t: Translator, count: int = 1
) -> bool:
    """True, and the user told how long to wait, when ``count`` more masked pictures would be
    too many lately (a tap gets an alert, a message a reply); False records them."""
    settings = services(context).settings
    wait = context.user_data.throttle(settings.throttle_jobs, settings.throttle_seconds, count)
    if not wait:
        return False
    text = t(texts.TOO_MANY, seconds=wait)
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
    _edit_soon(context, query.message, build)


def mask_by_id(masks: list[MaskSpec], mask_id: int) -> MaskSpec | None:
    return next((mask for mask in masks if mask.id == mask_id), None)


def _keyboard_of(message: object, photo_id: int) -> bool:
    """False if ``message`` (a keyboard) visibly belongs to another photo than ``photo_id``."""
    replied = getattr(message, "reply_to_message", None)
    return replied is None or replied.message_id == photo_id


def _edit_soon(context: Context, message: Any, build: Callable[[], InlineKeyboardMarkup]) -> None:
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


async def error_handler(update: object, context: Context) -> None:
    """Log every unexpected error with the update's ids; tell the user something useful."""
    logger.error("error while handling %s", _describe(update), exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            t = translator(update, context)
            await update.effective_message.reply_text(t(texts.INTERNAL_ERROR), do_quote=True)
        except TelegramError:
            logger.warning("could not tell the user about the error either")


async def offer_masks(photo_message: Message, context: Context, t: Translator) -> None:
    """Reply to a photo with the mask keyboard and remember which photo it belongs to."""
    request = await remember_photo(photo_message, context, t)
    if request is None:
        return
    photo_id = photo_message.message_id
    compact = photo_message.chat.type != ChatType.PRIVATE  # groups: the masks and "⋯ More"
    await photo_message.reply_text(
        t(texts.CHOOSE),
        reply_markup=keyboards.mask_keyboard(
            services(context).masks, photo_id, request.mode, t,
            as_file=request.as_file, compact=compact,
        ),
        do_quote=True,
    )  # fmt: skip


async def remember_photo(
    photo_message: Message, context: Context, t: Translator
) -> PhotoRequest | None:
    """The photo's request, saved (in the chat's default mode); None, said, if it is too big,
    empty, or (a small file, downloaded to look) not an image at all."""
    svc = services(context)
    if photo_message.photo:
        size = photo_message.photo[-1]  # Telegram lists sizes smallest first
        file_id, file_size, as_file = size.file_id, size.file_size, False
    else:
        document = photo_message.document
        file_id, file_size, as_file = document.file_id, document.file_size, True
    if file_size and file_size > svc.settings.max_file_size:
        await photo_message.reply_text(_too_big(svc.settings, t), do_quote=True)
        return None
    refusal = await _refusal_before_keyboard(context, file_id, file_size, as_file, t)
    if refusal is not None:
        await photo_message.reply_text(refusal, do_quote=True)
        return None
    mode = context.chat_data.settings.mode
    request = context.chat_data.remember(
        photo_message.message_id, PhotoRequest(file_id, as_file, mode)
    )
    await save_now(context, chat_id=photo_message.chat.id)  # before anyone sees the keyboard
    return request


async def _refusal_before_keyboard(
    context: Context, file_id: str, file_size: int | None, as_file: bool, t: Translator
) -> str | None:
    """What to say instead of a keyboard: the file is empty (Telegram says so), or it is a
    small file whose first bytes are no image's; None where a tap may go ahead."""
    if file_size == 0:
        return t(texts.ERRORS["empty"])
    if not as_file or file_size is None or file_size > SNIFF_MAX_BYTES:
        return None  # a compressed photo is a JPEG Telegram made; a big file is read on a tap
    try:
        data = await _download(context, file_id, t)
    except (TelegramError, FaceMaskError) as error:  # the tap will say what is wrong
        logger.info("could not look at a file before its keyboard: %s", error)
        return None
    if not data:
        return t(texts.ERRORS["empty"])
    if not looks_like_an_image(data):
        return t(texts.NOT_AN_IMAGE)
    return None


def looks_like_an_image(data: bytes) -> bool:
    """Whether ``data`` starts like a format core decodes."""
    return data.startswith(IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


@contextlib.asynccontextmanager
async def _showing(context: Context, chat_id: int, action: str) -> AsyncIterator[None]:
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


async def _download(context: Context, file_id: str, t: Translator) -> bytes:
    """The photo's bytes, kept in memory only."""
    try:
        telegram_file = await context.bot.get_file(file_id)
    except BadRequest as error:
        if "too big" in error.message.lower():
            raise _FileTooBigError(_too_big(services(context).settings, t)) from error
        raise
    return bytes(await telegram_file.download_as_bytearray())


async def _send_result(
    context: Context,
    chat_id: int,
    reply_to: ReplyParameters,
    mask: MaskSpec,
    result: MaskedPhoto,
    t: Translator,
    *,
    as_file: bool,
    markup: InlineKeyboardMarkup | None = None,
) -> Message:
    caption = texts.caption(mask, result.face_count, t)
    if as_file or not fits_photo(result):
        name = file_name(mask, result.format)
        return await context.bot.send_document(
            chat_id, InputFile(result.image, filename=name), caption=caption,
            reply_parameters=reply_to, reply_markup=markup,
        )  # fmt: skip
    return await context.bot.send_photo(
        chat_id, result.image, caption=caption, reply_parameters=reply_to, reply_markup=markup
    )


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


def _too_big(settings: Settings, t: Translator) -> str:
    return t(texts.TOO_BIG, limit=settings.max_file_size // (1024 * 1024))


def is_image(message: Message) -> bool:
    """A photo, or an image sent as a file."""
    return bool(message.photo) or _is_image_document(message)


def _is_image_document(message: Message) -> bool:
    document = message.document
    return bool(document and (document.mime_type or "").startswith("image/"))


def _describe(update: object) -> str:
    if not isinstance(update, Update):
        return repr(update)[:200]
    parts = [f"update {update.update_id}"]
    if update.effective_chat:
        parts.append(f"chat {update.effective_chat.id}")
    if update.effective_user:
        parts.append(f"user {update.effective_user.id}")
    if update.effective_message:
        parts.append(f"message {update.effective_message.message_id}")
    if update.callback_query:
        parts.append(f"callback {update.callback_query.data!r}")
    return " ".join(parts)


class _FileTooBigError(FaceMaskError):
    """Telegram would not hand the file over; its sentence comes from texts.TOO_BIG."""

    code = "file_too_big"
