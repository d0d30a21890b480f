"""Photos: what the bot does with a photo and its keyboard. Handlers are registered in
:func:`register`; the tools every feature shares (services, downloads, the button opening,
the throttle) are in :mod:`bot.kit`.

Each handler parses the update, asks the inference worker through the queue, and replies.
State that must outlive a restart (which photo a keyboard belongs to, its mode) lives in the
chat's :class:`~bot.state.ChatState` (``context.chat_data``); the per-user throttle lives in
the user's :class:`~bot.state.UserState` (``context.user_data``). Both are persisted.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, InputFile, Message, ReplyParameters, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import gallery, journal, keyboards, kit, texts
from bot.callbacks import Action, matches
from bot.i18n import Translator
from bot.kit import ADDRESSED_TO_BOT, IMAGE, Context, is_image
from bot.persistence import save_now
from bot.reactions import reacting
from bot.state import PhotoRequest
from core.errors import FaceMaskError
from core.results import MaskedPhoto
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

#: documents up to this size are downloaded and their first bytes checked before the keyboard
#: is shown, so a text file named .jpg is refused at once rather than after a tap
SNIFF_MAX_BYTES = 1024 * 1024
#: the signatures of the formats core decodes (JPEG, PNG, GIF, BMP, TIFF; WebP below)
IMAGE_SIGNATURES = (
    b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\0", b"MM\0*",
)  # fmt: skip


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
    app.add_handler(CallbackQueryHandler(button, pattern=matches(Action.MASK, Action.MODE)))
    app.add_handler(CallbackQueryHandler(more, pattern=matches(Action.MORE)))
    app.add_handler(CallbackQueryHandler(unknown_button))  # every tap gets an answer
    app.add_error_handler(error_handler)


async def start(update: Update, context: Context) -> None:
    text = context.t(texts.START, bot=context.bot.username)
    await update.effective_message.reply_text(text, do_quote=True)


async def help_command(update: Update, context: Context) -> None:
    await update.effective_message.reply_text(context.t(texts.HELP), do_quote=True)


async def masks_command(update: Update, context: Context) -> None:
    message = update.effective_message
    t = context.t
    masks = context.services.masks
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
    target = message.reply_to_message
    if target is None or not is_image(target):
        await message.reply_text(mask_hint(message, context, context.t), do_quote=True)
        return
    await offer_masks(target, context, context.t)


def mask_hint(message: Message, context: Context, t: Translator) -> str:
    """How to use /mask, in the form that reaches the bot here: in a group, privacy mode
    delivers only ``/mask@bot``."""
    private = message.chat.type == ChatType.PRIVATE
    command = "/mask" if private else f"/mask@{context.bot.username}"
    return t(texts.MASK_HINT, command=command)


async def photo(update: Update, context: Context) -> None:
    await offer_masks(update.effective_message, context, context.t)


async def not_an_image(update: Update, context: Context) -> None:
    await update.effective_message.reply_text(context.t(texts.NOT_AN_IMAGE), do_quote=True)


async def button(update: Update, context: Context) -> None:
    """A mask button or the Crop button (the mode) under one of our keyboards."""
    tapped = await kit.opening(update, context, lambda chat: chat.photos)
    if tapped is None:
        return
    query, photo_id, request, t = tapped.query, tapped.target_id, tapped.request, context.t
    masks = context.services.masks
    if tapped.tap.action is Action.MODE:  # same message, new keyboard
        await kit.toggle(
            query, context, request.toggle_mode,
            lambda: keyboards.mask_keyboard(
                masks, photo_id, request.mode, t, as_file=request.as_file
            ),
        )  # fmt: skip
        return
    mask = kit.mask_by_id(masks, tapped.tap.mask_id)
    if mask is None:  # a button from a keyboard we never made
        await query.answer(t(texts.ERRORS["unknown_mask"]), show_alert=True)
        return
    if await kit.refused_by_throttle(update, context):
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
    svc = context.services
    reply_to = ReplyParameters(photo_id, allow_sending_without_reply=True)
    async with reacting(context.bot, chat_id, react_to, svc.no_reactions):
        try:
            async with kit.showing(context, chat_id, ChatAction.UPLOAD_PHOTO):
                image = await kit.download(context, request.file_id, t)
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
    tapped = await kit.opening(update, context, lambda chat: chat.photos)
    if tapped is None:
        return
    photo_id, request, mask_id, t = tapped.target_id, tapped.request, tapped.tap.mask_id, context.t
    masks = context.services.masks

    def full() -> InlineKeyboardMarkup:  # built when the edit is sent: the latest toggles
        mode, as_file = request.mode, request.as_file
        if mask_id is None:  # under the photo's "Pick a mask"
            return keyboards.mask_keyboard(masks, photo_id, mode, t, as_file=as_file)
        return keyboards.result_keyboard(  # under a masked photo: its Sticker too
            masks, photo_id, mask_id, mode, t, as_file=as_file, with_masks=True
        )

    await tapped.query.answer()
    kit.edit_soon(context, tapped.query.message, full)


async def unknown_button(update: Update, context: Context) -> None:
    """A button whose data we do not read (an old or later keyboard): answered, never left
    spinning."""
    await update.callback_query.answer(context.t(texts.PHOTO_GONE), show_alert=True)


async def error_handler(update: object, context: Context) -> None:
    """Log every unexpected error with the update's ids; tell the user something useful."""
    logger.error("error while handling %s", _describe(update), exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            t = kit.translator(update, context)
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
            context.services.masks, photo_id, request.mode, t,
            as_file=request.as_file, compact=compact,
        ),
        do_quote=True,
    )  # fmt: skip


async def remember_photo(
    photo_message: Message, context: Context, t: Translator
) -> PhotoRequest | None:
    """The photo's request, saved (in the chat's default mode); None, said, if it is too big,
    empty, or (a small file, downloaded to look) not an image at all."""
    svc = context.services
    if photo_message.photo:
        size = photo_message.photo[-1]  # Telegram lists sizes smallest first
        file_id, file_size, as_file = size.file_id, size.file_size, False
    else:
        document = photo_message.document
        file_id, file_size, as_file = document.file_id, document.file_size, True
    if file_size and file_size > svc.settings.max_file_size:
        await photo_message.reply_text(kit.too_big(svc.settings, t), do_quote=True)
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
        data = await kit.download(context, file_id, t)
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
    if as_file or not kit.fits_photo(result):
        name = kit.file_name(mask, result.format)
        return await context.bot.send_document(
            chat_id, InputFile(result.image, filename=name), caption=caption,
            reply_parameters=reply_to, reply_markup=markup,
        )  # fmt: skip
    return await context.bot.send_photo(
        chat_id, result.image, caption=caption, reply_parameters=reply_to, reply_markup=markup
    )


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
