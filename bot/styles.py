"""Styles in the chat (issue 26): the 🎨 palette under a masked photo, 🎲 and ``/mask mix``, and a
person's own picture on the cloth (``/pattern``).

- 🎨 Style (``"sty:3:812"``, mask 3 on photo 812) turns the masked photo's keyboard into a
  palette of eight colours and eight patterns (``"sp:navy:3:812"``; "« Back": ``"sb:3:812"``),
  the style the person chose last first; a choice masks the photo again in that style and is
  remembered in the person's :class:`~bot.state.UserState` (``style``).
- 🎲 Mix (``"mix:812"``) and ``/mask mix`` give every face a different mask
  (:func:`masks.mix.choose`), never the one it had in the chat's previous mix
  (:class:`~bot.state.ChatState` ``last_mix``).
- ``/pattern`` with a picture (as its caption, or as a reply to one), or a picture sent as a
  reply to a masked photo, keeps Telegram's file id of that picture as the person's pattern
  (never the picture: it is downloaded for each job); ``/pattern off`` forgets it. A picture
  that cannot be printed (not an image, too small, too large, moving) is answered at once.

Callback data stays far below 64 bytes: style ids are at most 8 letters.
"""

from __future__ import annotations

import io
import logging
import re

from PIL import Image, UnidentifiedImageError
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot import journal, keyboards, kit, texts
from bot.callbacks import Action, decode, encode, matches
from bot.i18n import Translator
from bot.kit import Context
from bot.persistence import save_now
from bot.state import PhotoRequest
from core.errors import FaceMaskError
from core.results import MaskedPhoto
from masks import mix, patterns
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

OWN = "own"  # serving.jobs.OWN_STYLE: the person's own picture
#: what a palette button shows before its name
SWATCHES = {
    "navy": "🟦", "red": "🟥", "pink": "🩷", "green": "🟩", "yellow": "🟨", "orange": "🟧",
    "purple": "🟪", "white": "⬜", "stripes": "〰️", "dots": "⚫", "checks": "🏁", "camo": "🌿",
    "hearts": "❤️", "stars": "⭐", "plaid": "🟫", "gradient": "🌈",
}  # fmt: skip
STYLE_IDS = (*patterns.PALETTE, *patterns.PATTERN_NAMES)
_PATTERN_CAPTION = re.compile(r"^/pattern(@\w+)?(\s|$)", re.I)


def register(app: Application) -> None:
    """Before bot.handlers' and bot.groups': a picture meant as a pattern is not a photo to mask."""
    app.add_handler(CallbackQueryHandler(palette, pattern=matches(Action.STYLE)))
    app.add_handler(CallbackQueryHandler(pick, pattern=matches(Action.STYLE_PICK)))
    app.add_handler(CallbackQueryHandler(back, pattern=matches(Action.STYLE_BACK)))
    app.add_handler(CallbackQueryHandler(mix_button, pattern=matches(Action.MIX)))
    app.add_handler(MessageHandler(filters.CaptionRegex(_PATTERN_CAPTION), pattern_caption))
    app.add_handler(CommandHandler("pattern", pattern_command))
    app.add_handler(MessageHandler(kit.IMAGE & filters.CaptionRegex(r"(?i)/mask(@\w+)?\s+mix\b"),
                                   mix_caption))  # fmt: skip
    app.add_handler(CommandHandler("mask", mix_command, filters=filters.Regex(r"(?i)\s+mix\s*$")))
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & _ReplyToMasked(), pattern_reply))


# ----------------------------------------------------------------------------- keyboards


def palette_keyboard(
    mask_id: int, photo_id: int, t: Translator, *, last: str = "", has_own: bool = False
) -> InlineKeyboardMarkup:
    """Eight colours and eight patterns, four a row, the person's last style first (⭐), their
    own picture where they have one, and "« Back"."""
    ids = list(STYLE_IDS)
    if has_own:
        ids.insert(0, OWN)
    if last in ids:
        ids.remove(last)
        ids.insert(0, last)
    buttons = []
    for style_id in ids:
        swatch = "⭐" if style_id == last else SWATCHES.get(style_id, "")
        text = f"{swatch} {texts.style_label(style_id, t)}".strip()
        data = encode(Action.STYLE_PICK, photo_id, mask_id, choice=style_id)
        buttons.append(InlineKeyboardButton(text, callback_data=data))
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    back_data = encode(Action.STYLE_BACK, photo_id, mask_id)
    back = InlineKeyboardButton(t(texts.SETTINGS_BACK), callback_data=back_data)
    return InlineKeyboardMarkup([*rows, [back]])


# ----------------------------------------------------------------------------- taps


def _numbers(data: str) -> tuple[str, int, int]:
    """(style id or "", mask id, photo id) of a palette button's data (bot.callbacks)."""
    tap = decode(data)
    if tap is None or tap.mask_id is None:  # the handlers' patterns let only these through
        raise ValueError(f"not a palette button's data: {data!r}")
    return tap.choice, tap.mask_id, tap.target_id


def _request(context: Context, message: object, photo_id: int) -> PhotoRequest | None:
    if message is None or context.chat_data is None:
        return None
    replied = getattr(message, "reply_to_message", None)
    if replied is not None and replied.message_id != photo_id:
        return None  # data naming another photo than the one this keyboard is under
    return context.chat_data.photos.get(photo_id)


async def palette(update: Update, context: Context) -> None:
    """🎨 Style: the palette in place of the masked photo's keyboard."""
    query = update.callback_query
    t = kit.translator(update, context)
    _, mask_id, photo_id = _numbers(query.data)
    if _request(context, query.message, photo_id) is None:
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    user = context.user_data
    markup = palette_keyboard(
        mask_id, photo_id, t, last=user.style, has_own=bool(user.pattern_file_id)
    )
    await query.answer(t(texts.PALETTE_PICK))
    kit.edit_soon(context, query.message, lambda: markup)


async def back(update: Update, context: Context) -> None:
    """ "« Back" under the palette: the masked photo's own keyboard again."""
    query = update.callback_query
    t = kit.translator(update, context)
    _, mask_id, photo_id = _numbers(query.data)
    request = _request(context, query.message, photo_id)
    if request is None:
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    masks = kit.services(context).masks
    await query.answer()
    kit.edit_soon(
        context, query.message,
        lambda: keyboards.result_keyboard(masks, photo_id, mask_id, request.mode, t,
                                          as_file=request.as_file),
    )  # fmt: skip


async def pick(update: Update, context: Context) -> None:
    """A colour or pattern tapped: the photo masked again in it, and the choice remembered."""
    query = update.callback_query
    t = kit.translator(update, context)
    style_id, mask_id, photo_id = _numbers(query.data)
    request = _request(context, query.message, photo_id)
    mask = kit.mask_by_id(kit.services(context).masks, mask_id)
    if request is None or mask is None or (style_id not in STYLE_IDS and style_id != OWN):
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    if await kit.refused_by_throttle(update, context):
        return
    context.user_data.style = style_id
    await save_now(context, user_id=query.from_user.id)
    await query.answer(t(texts.WORKING))
    await masked_reply(context, query.message.chat.id, photo_id, request, mask, t, style=style_id)


async def mix_button(update: Update, context: Context) -> None:
    """🎲 Mix under a photo: every face a different mask."""
    query = update.callback_query
    t = kit.translator(update, context)
    tap = decode(query.data)
    photo_id = tap.target_id if tap is not None else 0
    request = _request(context, query.message, photo_id)
    if request is None:
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    if await kit.refused_by_throttle(update, context):
        return
    await query.answer(t(texts.WORKING))
    await _mix(context, query.message.chat.id, photo_id, request, t)


async def mix_command(update: Update, context: Context) -> None:
    """``/mask mix`` as a reply to a photo."""
    message = update.effective_message
    target = message.reply_to_message
    if target is None or not kit.is_image(target):
        from bot import handlers

        hint = handlers.mask_hint(message, context, kit.translator(update, context))
        await message.reply_text(hint, do_quote=True)
        return
    await _mix_message(update, context, target)


async def mix_caption(update: Update, context: Context) -> None:
    """A photo captioned ``/mask mix``."""
    await _mix_message(update, context, update.effective_message)


async def _mix_message(update: Update, context: Context, photo_message: Message) -> None:
    from bot import handlers  # the photo's request is remembered as bot.handlers does

    t = kit.translator(update, context)
    request = await handlers.remember_photo(photo_message, context, t)
    if request is None or await kit.refused_by_throttle(update, context):
        return
    await _mix(context, update.effective_chat.id, photo_message.message_id, request, t)


async def _mix(
    context: Context, chat_id: int, photo_id: int, request: PhotoRequest, t: Translator
) -> None:
    masks = kit.services(context).masks
    order = mix.choose(context.chat_data.last_mix, [m.id for m in masks])
    context.chat_data.last_mix = list(order)
    await save_now(context, chat_id=chat_id)
    first = kit.mask_by_id(masks, order[0])
    assert first is not None
    await masked_reply(context, chat_id, photo_id, request, first, t, mix_ids=order)


# ----------------------------------------------------------------------------- the answer


async def masked_reply(
    context: Context,
    chat_id: int,
    photo_id: int,
    request: PhotoRequest,
    mask: MaskSpec,
    t: Translator,
    *,
    style: str = "",
    mix_ids: tuple[int, ...] = (),
) -> None:
    """The photo masked in ``style`` (or as a mix), sent under it with the masked photo's
    keyboard; or the error's sentence."""
    svc = kit.services(context)
    reply_to = ReplyParameters(photo_id, allow_sending_without_reply=True)
    try:
        async with kit.showing(context, chat_id, ChatAction.UPLOAD_PHOTO):
            pattern = b""
            if style == OWN:
                file_id = context.user_data.pattern_file_id
                if not file_id:
                    await context.bot.send_message(
                        chat_id, t(texts.PATTERN_NONE), reply_parameters=reply_to
                    )
                    await journal.answered(context)
                    return
                pattern = await kit.download(context, file_id, t)
            image = await kit.download(context, request.file_id, t)
            result = await svc.queue.mask_photo(
                image, mask.id, request.mode, style=style, pattern=pattern, mix=mix_ids
            )
    except FaceMaskError as error:
        logger.info("chat %s style %r mix %s: %s", chat_id, style, mix_ids, error.code)
        await context.bot.send_message(
            chat_id, texts.error_text(error, t), reply_parameters=reply_to
        )
        await journal.answered(context)
        return
    logger.info(
        "chat %s mask %d style %r mix %s: %d faces, %.0f ms in the worker",
        chat_id, mask.id, style, mix_ids, result.face_count, result.ms,
    )  # fmt: skip
    markup = keyboards.result_keyboard(
        svc.masks, photo_id, mask.id, request.mode, t, as_file=request.as_file
    )
    await _send(context, chat_id, reply_to, _caption(mask, result, t, style, mix_ids), result,
                mask, as_file=request.as_file, markup=markup)  # fmt: skip
    await journal.answered(context)


def _caption(
    mask: MaskSpec, result: MaskedPhoto, t: Translator, style: str, mix_ids: tuple[int, ...]
) -> str:
    faces = t.plural(texts.FACES, result.face_count, count=result.face_count)
    if mix_ids:
        return f"🎲 {t(texts.MIX_NAME)} · {faces}"
    return f"{texts.caption(mask, result.face_count, t)} · 🎨 {texts.style_label(style, t)}"


async def _send(
    context: Context,
    chat_id: int,
    reply_to: ReplyParameters,
    caption: str,
    result: MaskedPhoto,
    mask: MaskSpec,
    *,
    as_file: bool,
    markup: InlineKeyboardMarkup,
) -> None:
    if as_file or not kit.fits_photo(result):
        name = kit.file_name(mask, result.format)
        await context.bot.send_document(
            chat_id, InputFile(result.image, filename=name), caption=caption,
            reply_parameters=reply_to, reply_markup=markup,
        )  # fmt: skip
        return
    await context.bot.send_photo(
        chat_id, result.image, caption=caption, reply_parameters=reply_to, reply_markup=markup
    )


# ----------------------------------------------------------------------------- /pattern


class _ReplyToMasked(filters.MessageFilter):
    """A picture (or any file) sent as a reply to one of the bot's masked photos."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        if replied is None or not (message.photo or message.document or message.animation):
            return False
        return (
            _masked_photo_of(replied) is not None
            and replied.from_user is not None
            and (replied.from_user.id == message.get_bot().id)
        )


def _masked_photo_of(message: Message) -> tuple[int, int] | None:
    """(mask id, photo id) of a masked photo, read from its 🏷 Sticker button."""
    markup = message.reply_markup
    for row in markup.inline_keyboard if markup else ():
        for button in row:
            tap = decode(button.callback_data)
            if tap is not None and tap.action is Action.STICKER and tap.mask_id is not None:
                return tap.mask_id, tap.target_id
    return None


async def pattern_command(update: Update, context: Context) -> None:
    """``/pattern off`` forgets the picture; ``/pattern`` as a reply to a picture keeps it."""
    message = update.effective_message
    t = kit.translator(update, context)
    if [word.lower() for word in context.args or []] == ["off"]:
        had = context.user_data.pattern_file_id is not None
        context.user_data.pattern_file_id = None
        if context.user_data.style == OWN:
            context.user_data.style = ""
        await save_now(context, user_id=update.effective_user.id)
        await message.reply_text(t(texts.PATTERN_OFF if had else texts.PATTERN_NONE), do_quote=True)
        return
    target = message.reply_to_message
    if target is not None and (target.photo or target.document or target.animation):
        await _keep_pattern(update, context, target)
        return
    await message.reply_text(t(texts.PATTERN_HINT), do_quote=True)


async def pattern_caption(update: Update, context: Context) -> None:
    """A picture sent with ``/pattern`` as its caption."""
    message = update.effective_message
    if message.photo or message.document or message.animation:
        await _keep_pattern(update, context, message)
    else:
        await message.reply_text(kit.translator(update, context)(texts.PATTERN_HINT), do_quote=True)


async def pattern_reply(update: Update, context: Context) -> None:
    """A picture sent as a reply to a masked photo: kept, and printed on that photo's mask."""
    message = update.effective_message
    kept = await _keep_pattern(update, context, message, say_saved=False)
    if not kept:
        return
    t = kit.translator(update, context)
    mask_id, photo_id = _masked_photo_of(message.reply_to_message) or (0, 0)
    request = context.chat_data.photos.get(photo_id)
    mask = kit.mask_by_id(kit.services(context).masks, mask_id)
    if request is None or mask is None:
        await message.reply_text(t(texts.PATTERN_SAVED), do_quote=True)
        return
    if await kit.refused_by_throttle(update, context):
        return
    await masked_reply(context, message.chat.id, photo_id, request, mask, t, style=OWN)


async def _keep_pattern(
    update: Update, context: Context, picture: Message, say_saved: bool = True
) -> bool:
    """Check the picture and keep its file id as the person's pattern; False, said, if it
    cannot be printed."""
    message = update.effective_message
    t = kit.translator(update, context)
    refusal, file_id = await _pattern_refusal(context, picture, t)
    if refusal is not None:
        await message.reply_text(refusal, do_quote=True)
        await journal.answered(context)
        return False
    context.user_data.pattern_file_id = file_id
    context.user_data.style = OWN
    await save_now(context, user_id=update.effective_user.id)
    logger.info("user %s keeps a pattern", update.effective_user.id)
    if say_saved:
        await message.reply_text(t(texts.PATTERN_SAVED), do_quote=True)
        await journal.answered(context)
    return True


async def _pattern_refusal(
    context: Context, picture: Message, t: Translator
) -> tuple[str | None, str]:
    """(what to say instead of keeping it, or None; the picture's file id)."""
    errors = texts.ERRORS
    if picture.animation or picture.sticker or picture.video:
        return t(errors["pattern_animated"]), ""
    if picture.photo:
        size = picture.photo[-1]
        file_id, file_size = size.file_id, size.file_size
        if min(size.width, size.height) < patterns.OWN_PICTURE_MIN_SIDE:
            return t(errors["pattern_too_small"]), ""
    elif picture.document is not None:
        document = picture.document
        if not (document.mime_type or "").startswith("image/"):
            return t(errors["pattern_not_image"]), ""
        file_id, file_size = document.file_id, document.file_size
    else:
        return t(errors["pattern_not_image"]), ""
    if file_size and file_size > patterns.OWN_PICTURE_MAX_BYTES:
        return t(errors["pattern_too_large"]), ""
    try:
        data = await kit.download(context, file_id, t)
    except (TelegramError, FaceMaskError):
        return t(errors["pattern_too_large"]), ""
    code = picture_problem(data)
    return (t(errors[code]) if code else None), file_id


def picture_problem(data: bytes) -> str | None:
    """Why a picture cannot be printed (an error code), from its header only; None if it can.
    The worker reads it again when it prints it (core.render.style.read_picture)."""
    if len(data) > patterns.OWN_PICTURE_MAX_BYTES:
        return "pattern_too_large"
    try:
        with Image.open(io.BytesIO(data)) as image:
            if getattr(image, "is_animated", False) and getattr(image, "n_frames", 1) > 1:
                return "pattern_animated"
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "pattern_not_image"
    if width * height > patterns.OWN_PICTURE_MAX_PIXELS:
        return "pattern_too_large"
    if min(width, height) < patterns.OWN_PICTURE_MIN_SIDE:
        return "pattern_too_small"
    return None
