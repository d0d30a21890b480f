"""The "Sticker" button under a masked photo: that face, masked, in the tapper's own sticker set.

The worker cuts the largest face out (``FaceMasker.sticker``: the head on transparency with a
white outline, 512 px, WebP); the bot uploads it (uploadStickerFile) and adds it to the set
``masks<user id>_by_<bot username>`` (Telegram requires the ``_by_<bot>`` ending), creating
the set on first use (createNewStickerSet) and adding to it afterwards (addStickerToSet). In a
group the set is the tapper's, whoever sent the photo. Sticker sets belong to users who have
started the bot: Telegram refuses the others (PEER_ID_INVALID, "bot was blocked"), and a full
set (120 stickers); each refusal gets a sentence that says what to do.

Under a masked video note, GIF or video the same button (:data:`Action.VIDEO_STICKER`) makes a
video sticker instead: the worker cuts the largest face's head out of the video's first 3 s,
masked, moving (``FaceMasker.video_sticker``: WebM, VP9 with alpha, 512 px, at most 256 KB, a
video job in the video lane), and it joins the same set (a set holds stickers of any format).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, InputFile, InputSticker, ReplyParameters, Update, User
from telegram.constants import ChatAction, StickerFormat, StickerType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, CallbackQueryHandler

from bot import kit, texts
from bot.callbacks import Action, matches
from bot.i18n import Translator
from bot.kit import Context
from bot.persistence import save_now
from bot.state import UserState
from core.errors import FaceMaskError, NoFaceInVideoError
from masks.catalog import MaskSpec
from serving.jobs import VideoJob

logger = logging.getLogger(__name__)

#: what Telegram says when the user never started the bot (or stopped it)
NOT_STARTED = ("peer_id_invalid", "user not found", "bot was blocked", "user_is_blocked",
               "bot can't initiate", "user is deactivated")  # fmt: skip
#: ... and when the set has no room left
SET_FULL = ("stickers_too_much", "too many stickers", "stickerset_too_much")


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(sticker_button, pattern=matches(Action.STICKER)))
    videos = matches(Action.VIDEO_STICKER)
    app.add_handler(CallbackQueryHandler(video_sticker_button, pattern=videos))


def set_name(user_id: int, bot_username: str) -> str:
    """The user's set: a letter first, letters, digits and single underscores, ``_by_<bot>``."""
    return f"masks{user_id}_by_{bot_username}"


def set_link(name: str) -> str:
    return f"https://t.me/addstickers/{name}"


class StickerRefusedError(Exception):
    """Telegram would not take the sticker; ``sentence`` tells the user what to do."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


async def sticker_button(update: Update, context: Context) -> None:
    """The Sticker button under a masked photo: its largest face in the tapper's set."""

    async def make(request: Any, mask: MaskSpec, t: Translator) -> tuple[bytes, bool]:
        image = await kit.download(context, request.file_id, t)
        return await context.services.queue.sticker(image, mask.id, request.mode), False

    await _make_sticker(update, context, lambda chat: chat.photos, make, texts.error_text)


async def video_sticker_button(update: Update, context: Context) -> None:
    """The Sticker button under a masked video: its face, moving, in the tapper's set."""

    async def make(request: Any, mask: MaskSpec, t: Translator) -> tuple[bytes, bool]:
        video = await kit.download(context, request.file_id, t)
        job = VideoJob(video, mask.id, request.mode, request.kind, request.duration_s, sticker=True)
        return (await context.services.queue.mask_video(job)).data, True

    def error_text(error: FaceMaskError, t: Translator) -> str:
        if isinstance(error, NoFaceInVideoError):
            return t(texts.VIDEO_STICKER_NO_FACE)
        return texts.video_error_text(error, t)

    await _make_sticker(update, context, lambda chat: chat.videos, make, error_text)


async def _make_sticker(
    update: Update,
    context: Context,
    requests: Callable[[Any], Any],
    make: Callable[[Any, MaskSpec, Translator], Awaitable[tuple[bytes, bool]]],
    error_text: Callable[[FaceMaskError, Translator], str],
) -> None:
    """A Sticker tap, photo or video alike: the request behind the button, ``make``'s sticker
    (its bytes and whether it moves) added to the tapper's set, and the answer under it."""
    tapped = await kit.opening(update, context, requests)
    if tapped is None:
        return
    query, request, t, svc = tapped.query, tapped.request, context.t, context.services
    mask = kit.mask_by_id(svc.masks, tapped.tap.mask_id)
    if mask is None:
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    if await kit.refused_by_throttle(update, context):
        return
    await query.answer(t(texts.STICKER_WORKING))
    chat_id = query.message.chat.id
    reply_to = ReplyParameters(query.message.message_id, allow_sending_without_reply=True)
    user = query.from_user
    try:
        async with kit.showing(context, chat_id, ChatAction.CHOOSE_STICKER):
            data, video = await make(request, mask, t)
            name = await add_to_set(
                context.bot, user, context.user_data, data, mask, t, video=video
            )
    except FaceMaskError as error:
        logger.info("chat %s user %s sticker: %s", chat_id, user.id, error.code)
        await context.bot.send_message(chat_id, error_text(error, t), reply_parameters=reply_to)
        return
    except StickerRefusedError as refused:
        await context.bot.send_message(chat_id, refused.sentence, reply_parameters=reply_to)
        return
    await save_now(context, user_id=user.id)
    logger.info(
        "chat %s user %s: %s sticker of mask %d added to %s",
        chat_id, user.id, "video" if video else "photo", mask.id, name,
    )  # fmt: skip
    await context.bot.send_message(
        chat_id, t(texts.STICKER_ADDED, link=set_link(name)), reply_parameters=reply_to
    )


async def add_to_set(
    bot: Bot,
    user: User,
    state: UserState,
    data: bytes,
    mask: MaskSpec,
    t: Translator,
    *,
    video: bool = False,
) -> str:
    """Upload the sticker (WebP; ``video``: WebM) and put it in the user's set (made on first
    use); the set's name."""
    name = set_name(user.id, bot.username)
    sticker_format = StickerFormat.VIDEO if video else StickerFormat.STATIC
    file_name = "sticker.webm" if video else "sticker.webp"
    try:
        uploaded = await bot.upload_sticker_file(
            user.id, InputFile(data, filename=file_name), sticker_format
        )
        sticker = InputSticker(uploaded.file_id, [mask.emoji], sticker_format)
        if state.sticker_set == name and await _added(bot, user.id, name, sticker):
            return name
        try:
            title = t(texts.STICKER_SET_TITLE, bot=bot.username)
            await bot.create_new_sticker_set(
                user.id, name, title, [sticker], sticker_type=StickerType.REGULAR
            )
        except BadRequest as error:
            if "occupied" not in error.message.lower():
                raise
            # made before this user's state was lost (or by an earlier tap): add to it
            await bot.add_sticker_to_set(user.id, name, sticker)
    except TelegramError as error:
        raise StickerRefusedError(_refusal(error, name, bot.username, t)) from error
    state.sticker_set = name
    return name


async def _added(bot: Bot, user_id: int, name: str, sticker: InputSticker) -> bool:
    """Add to the existing set; False if the user deleted it (Telegram: STICKERSET_INVALID)."""
    try:
        await bot.add_sticker_to_set(user_id, name, sticker)
    except BadRequest as error:
        if "stickerset_invalid" in error.message.lower():
            return False
        raise
    return True


def _refusal(error: TelegramError, name: str, bot_username: str, t: Translator) -> str:
    message = error.message.lower()
    if any(words in message for words in SET_FULL):
        return t(texts.STICKER_SET_FULL, link=set_link(name))
    if isinstance(error, Forbidden) or any(words in message for words in NOT_STARTED):
        return t(texts.STICKER_START_FIRST, bot=bot_username)
    logger.warning("Telegram refused a sticker for set %s: %s", name, error)
    return t(texts.STICKER_FAILED)
