"""Albums out and in: "All 7" on one photo, and one keyboard for an album of photos.

- "🎭 All 7" under a photo's keyboard: the worker finds and reads the faces once and draws all
  seven masks (``FaceMasker.apply_many``); the answer is one album (sendMediaGroup) of seven
  photos, each captioned with its mask.
- An album sent to the bot (photos sharing a ``media_group_id``) arrives as one update per
  photo. They are collected for :data:`COLLECT_SECONDS` after the last one, remembered like
  single photos (:class:`~bot.state.PhotoRequest`) plus an :class:`~bot.state.AlbumRequest`
  in the chat's state, and answered with one keyboard. A mask button answers with one album in
  the same order; a photo the mask could not go on (no face) is sent as it was, and its
  caption says why.

The per-user throttle counts what is sent: an album as its photos, "All 7" as seven.
Media groups take no keyboard, so "Sticker" is offered under single masked photos only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from telegram import (
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, MediaGroupLimit
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot import handlers, journal, keyboards, kit, texts
from bot.callbacks import Action, matches
from bot.i18n import Translator
from bot.kit import Context
from bot.persistence import save_now
from bot.reactions import reacting
from bot.state import AlbumRequest, PhotoRequest
from core.errors import FaceMaskError, NoFaceFoundError
from core.results import MaskedPhoto, Mode
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

#: an album's photos arrive as separate updates within a moment of each other
COLLECT_SECONDS = 1.0
COLLECTING = "albums_collecting"  # bot_data key: albums being collected (not persisted)


class _InAlbum(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return message.media_group_id is not None


ALBUM_PHOTO = kit.IMAGE & _InAlbum(name="InAlbum")


def register(app: Application) -> None:
    """Registered before bot.handlers': an album's photos would each get a keyboard there."""
    addressed = filters.ChatType.PRIVATE | kit.ADDRESSED_TO_BOT
    app.add_handler(MessageHandler(ALBUM_PHOTO & addressed, album_photo))
    app.add_handler(CallbackQueryHandler(all_seven, pattern=matches(Action.ALL_SEVEN)))
    album_buttons = matches(Action.ALBUM_MASK, Action.ALBUM_MODE)
    app.add_handler(CallbackQueryHandler(album_button, pattern=album_buttons))


# ----------------------------------------------------------------------------- All 7


async def all_seven(update: Update, context: Context) -> None:
    """ "All 7" under a photo's keyboard: one album with every mask."""
    tapped = await kit.opening(update, context, lambda chat: chat.photos)
    if tapped is None:
        return
    query, photo_id, request = tapped.query, tapped.target_id, tapped.request
    t, svc = context.t, context.services
    if await kit.refused_by_throttle(update, context, count=len(svc.masks)):
        return
    await query.answer(t(texts.WORKING))
    chat_id = query.message.chat.id
    reply_to = ReplyParameters(photo_id, allow_sending_without_reply=True)
    async with reacting(context.bot, chat_id, photo_id, svc.no_reactions):
        try:
            async with kit.showing(context, chat_id, ChatAction.UPLOAD_PHOTO):
                image = await kit.download(context, request.file_id, t)
                ids = tuple(mask.id for mask in svc.masks)
                results = await svc.queue.mask_many(image, ids, request.mode)
        except FaceMaskError as error:
            logger.info("chat %s all seven: %s", chat_id, error.code)
            await context.bot.send_message(
                chat_id, texts.error_text(error, t), reply_parameters=reply_to
            )
            await journal.answered(context)
            return
        logger.info(
            "chat %s user %s all seven, mode %s: %d faces, %.0f ms in the worker",
            chat_id, query.from_user.id, request.mode, results[0].face_count,
            max(r.ms for r in results),
        )  # fmt: skip
        media = [
            _media(result, mask, texts.caption(mask, result.face_count, t), request.as_file)
            for mask, result in zip(svc.masks, results, strict=True)
        ]
        sent = await context.bot.send_media_group(chat_id, media, reply_parameters=reply_to)
        await journal.answered(context)
    await _share(context, query.from_user.id, sent, list(svc.masks))


# ----------------------------------------------------------------------------- albums in


@dataclass
class _Collecting:
    messages: list[Message]
    last: float
    # set once the album's keyboard is out: each photo's update is answered then, not before
    # (bot.journal replays every photo of an album a crash caught while it was collected)
    offered: asyncio.Event = field(default_factory=asyncio.Event)


async def album_photo(update: Update, context: Context) -> None:
    """One photo of an album: the first one waits for the rest, then offers one keyboard."""
    message = update.effective_message
    key = (message.chat.id, message.media_group_id)
    collecting: dict[tuple[int, str], _Collecting] = context.bot_data.setdefault(COLLECTING, {})
    entry = collecting.get(key)
    if entry is not None:
        entry.messages.append(message)
        entry.last = time.monotonic()
        await entry.offered.wait()
        return
    entry = collecting[key] = _Collecting([message], time.monotonic())
    try:
        try:
            while (left := entry.last + COLLECT_SECONDS - time.monotonic()) > 0:
                await asyncio.sleep(left)
        finally:
            collecting.pop(key, None)
        photos = sorted(entry.messages, key=lambda m: m.message_id)
        await offer_album(photos, context, context.t)
    finally:
        entry.offered.set()


async def offer_album(photos: list[Message], context: Context, t: Translator) -> None:
    """One keyboard for the album (the photos remembered first); one photo: the usual one."""
    if len(photos) == 1:  # e.g. only the captioned photo of a group's album reached us
        await handlers.offer_masks(photos[0], context, t)
        return
    kept: list[Message] = []
    for photo in photos[: MediaGroupLimit.MAX_MEDIA_LENGTH]:
        if await handlers.remember_photo(photo, context, t) is not None:  # too big: said so
            kept.append(photo)
    if not kept:
        return
    first = kept[0]
    mode = context.chat_data.settings.mode
    album = context.chat_data.remember_album(
        first.message_id, AlbumRequest([p.message_id for p in kept], mode)
    )
    await save_now(context, chat_id=first.chat.id)  # before anyone sees the keyboard
    await first.reply_text(
        t(texts.ALBUM_CHOOSE, count=len(kept)),
        reply_markup=keyboards.album_keyboard(
            context.services.masks, first.message_id, album.mode, t
        ),
        do_quote=True,
    )


async def album_button(update: Update, context: Context) -> None:
    """A mask or the Crop toggle under an album's keyboard."""
    tapped = await kit.opening(update, context, lambda chat: chat.albums)
    if tapped is None:
        return
    query, album_id, album, t = tapped.query, tapped.target_id, tapped.request, context.t
    requests = [context.chat_data.photos.get(p) for p in album.photo_ids]
    if None in requests:  # a photo of it forgotten
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    svc = context.services
    chat_id = query.message.chat.id
    if tapped.tap.action is Action.ALBUM_MODE:  # same message, new keyboard
        latest = lambda: keyboards.album_keyboard(svc.masks, album_id, album.mode, t)  # noqa: E731
        await kit.toggle(query, context, album.toggle_mode, latest)
        return
    mask = kit.mask_by_id(svc.masks, tapped.tap.mask_id)
    if mask is None:
        await query.answer(t(texts.ERRORS["unknown_mask"]), show_alert=True)
        return
    if await kit.refused_by_throttle(update, context, count=len(requests)):
        return
    await query.answer(t(texts.WORKING))
    await mask_album(
        context, chat_id, album_id, [r for r in requests if r], album.mode, mask, t,
        user_id=query.from_user.id,
    )  # fmt: skip


async def mask_album(
    context: Context,
    chat_id: int,
    album_id: int,
    requests: list[PhotoRequest],
    mode: Mode,
    mask: MaskSpec,
    t: Translator,
    *,
    user_id: int,
) -> None:
    """Every photo of the album masked (all at once, through the queue), sent as one album."""
    svc = context.services
    reply_to = ReplyParameters(album_id, allow_sending_without_reply=True)

    async def one(request: PhotoRequest) -> MaskedPhoto | FaceMaskError:
        try:
            image = await kit.download(context, request.file_id, t)
            return await svc.queue.mask_photo(image, mask.id, mode)
        except FaceMaskError as error:
            return error

    async with reacting(context.bot, chat_id, album_id, svc.no_reactions):
        async with kit.showing(context, chat_id, ChatAction.UPLOAD_PHOTO):
            results = await asyncio.gather(*(one(request) for request in requests))
        masked = [r for r in results if isinstance(r, MaskedPhoto)]
        logger.info(
            "chat %s user %s album of %d, mask %d mode %s: %d masked",
            chat_id, user_id, len(requests), mask.id, mode, len(masked),
        )  # fmt: skip
        if not masked:  # nothing to show: the reason, once (the first photo's)
            error = next(r for r in results if isinstance(r, FaceMaskError))
            await context.bot.send_message(
                chat_id, texts.error_text(error, t), reply_parameters=reply_to
            )
            await journal.answered(context)
            return
        as_file = all(request.as_file for request in requests)  # albums never mix the two
        media = []
        for request, result in zip(requests, results, strict=True):
            if isinstance(result, MaskedPhoto):
                caption = texts.caption(mask, result.face_count, t)
                media.append(_media(result, mask, caption, as_file))
                continue
            why = (
                t(texts.ALBUM_NO_FACE)
                if isinstance(result, NoFaceFoundError)
                else texts.error_text(result, t)
            )
            kind = InputMediaDocument if as_file else InputMediaPhoto
            media.append(kind(request.file_id, caption=why))  # sent as it was
        sent = await context.bot.send_media_group(chat_id, media, reply_parameters=reply_to)
        await journal.answered(context)
    await _share(context, user_id, sent, [mask] * len(sent))


# ----------------------------------------------------------------------------- helpers


def _media(
    result: MaskedPhoto, mask: MaskSpec, caption: str, as_file: bool
) -> InputMediaPhoto | InputMediaDocument:
    """One masked photo for an album: a photo, or a file when asked or too big for a photo."""
    if as_file or not kit.fits_photo(result):
        name = kit.file_name(mask, result.format)
        return InputMediaDocument(InputFile(result.image, filename=name), caption=caption)
    return InputMediaPhoto(result.image, caption=caption)


async def _share(
    context: Context, user_id: int, sent: Sequence[Message], masks: list[MaskSpec]
) -> None:
    """Remember the album's masked photos for the user's inline mode (bot.inline)."""
    if context.user_data is None:
        return
    for message, mask in reversed(list(zip(sent, masks, strict=False))):
        caption = message.caption or ""
        if message.photo and caption.startswith(mask.emoji):  # not the unmasked ones
            context.user_data.share(message.photo[-1].file_id, mask.id)
    await save_now(context, user_id=user_id)
