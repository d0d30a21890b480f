"""Moving pictures: a video note, a GIF or a video gets the mask keyboard and comes back masked
as the same kind of message.

- What counts: a round video note, an animation (Telegram delivers GIFs as MP4 "animations"),
  a video, or a video or GIF sent as a file. In groups the rules are the photos': a caption or
  a reply with ``/mask@bot`` (or, where the bot sees everything, ``/mask`` or a mention), and
  ``/mask 3`` masks at once (:mod:`bot.groups`).
- Limits are checked on what Telegram reports, before anything is downloaded: longer than
  :data:`~serving.jobs.MAX_VIDEO_SECONDS` or larger than ``MAX_FILE_SIZE`` (Telegram lets bots
  download 20 MB) gets a sentence instead of a keyboard. What only the file can tell (no
  picture, no frames, cut off, no face in any frame) comes back from the worker as a typed error.
- While the worker masks it, the chat shows "recording video note..." or "sending video...",
  and a progress message ("Masking... 40%", edited at most every ``PROGRESS_SECONDS``)
  carries a Cancel button that stops the job in the worker. The progress message is deleted
  when the video is sent (after a video note, which has no caption, it becomes the caption's
  line instead: "😷 Surgical mask"), or becomes the error's sentence.
- The answer: sendVideoNote for a video note (a square of at most 640 px), sendAnimation for a
  GIF, sendVideo (its sound kept) for a video; the caption says when a video was scaled down.
  Under it, 🏷 Sticker (:func:`result_keyboard`) makes the masked face a video sticker
  (:mod:`bot.stickers`).

The throttle counts a video as one photo per :data:`SECONDS_PER_PHOTO` seconds of it. What a
keyboard needs after a restart is the chat's :class:`~bot.state.VideoRequest`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

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

from bot import callbacks, groups, journal, keyboards, kit, texts
from bot.callbacks import Action, matches
from bot.i18n import Translator
from bot.kit import Context
from bot.persistence import save_now
from bot.reactions import reacting
from bot.state import VideoRequest
from core.errors import FaceMaskError, JobCancelledError
from core.results import MaskedVideo
from masks.catalog import MaskSpec
from serving.jobs import MAX_VIDEO_SECONDS, VideoJob

logger = logging.getLogger(__name__)

#: the per-user throttle counts a video as one photo per this many seconds of it
SECONDS_PER_PHOTO = 5.0
#: bot_data key: (chat id, progress message id) -> the video job behind that message
RUNNING = "videos_running"


def kind_of(message: Message | None) -> str | None:
    """What a message's video comes back as: "video_note", "animation", "video"; else None."""
    if message is None:
        return None
    if message.video_note:
        return "video_note"
    if message.animation:  # before the document Telegram sets beside it
        return "animation"
    if message.video:
        return "video"
    mime_type = (message.document.mime_type or "") if message.document else ""
    if mime_type == "image/gif":  # a GIF sent as a file: moving, so an animation
        return "animation"
    if mime_type.startswith("video/"):
        return "video"
    return None


class _IsVideo(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return kind_of(message) is not None


class _RepliesToVideo(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return kind_of(message.reply_to_message) is not None


VIDEO = _IsVideo(name="Video")
REPLIES_TO_VIDEO = _RepliesToVideo(name="RepliesToVideo")


def register(app: Application) -> None:
    """Registered before bot.groups' and bot.handlers': they would take videos for files."""
    addressed = filters.ChatType.PRIVATE | kit.ADDRESSED_TO_BOT
    app.add_handler(MessageHandler(VIDEO & groups.DIRECT_CAPTION, direct_caption))
    app.add_handler(CommandHandler("mask", mask_reply, filters=REPLIES_TO_VIDEO))
    app.add_handler(MessageHandler(VIDEO & addressed, video_message))
    videos = matches(Action.VIDEO_MASK, Action.VIDEO_MODE, Action.VIDEO_CANCEL)
    app.add_handler(CallbackQueryHandler(button, pattern=videos))


# ----------------------------------------------------------------------------- in


async def video_message(update: Update, context: Context) -> None:
    await offer(update.effective_message, context, context.t)


async def direct_caption(update: Update, context: Context) -> None:
    """A video captioned "/mask 3": masked at once."""
    message = update.effective_message
    argument = groups.direct_argument(message.caption, context.bot.username) or ""
    await _mask_at_once(update, context, message, argument)


async def mask_reply(update: Update, context: Context) -> None:
    """``/mask`` as a reply to a video: its keyboard; ``/mask 3``: masked at once."""
    target = update.effective_message.reply_to_message
    argument = " ".join(context.args or [])
    if not argument:
        await offer(target, context, context.t)
        return
    await _mask_at_once(update, context, target, argument)


async def offer(message: Message, context: Context, t: Translator) -> None:
    """Reply to a video with the mask keyboard (or with the limit it is over)."""
    request = await remember_video(message, context, t)
    if request is None:
        return
    markup = keyboards.video_keyboard(context.services.masks, message.message_id, request.mode, t)
    await message.reply_text(t(texts.VIDEO_CHOOSE), reply_markup=markup, do_quote=True)


async def remember_video(message: Message, context: Context, t: Translator) -> VideoRequest | None:
    """The video's request, saved; None, and said why, if Telegram's facts put it over a limit."""
    svc = context.services
    kind = kind_of(message)
    media = message.video_note or message.animation or message.video or message.document
    if kind is None or media is None:
        return None
    duration = _seconds(getattr(media, "duration", None))
    size = media.file_size or 0
    if size > svc.settings.max_file_size:
        await message.reply_text(kit.too_big(svc.settings, t), do_quote=True)
        return None
    if duration > MAX_VIDEO_SECONDS:
        text = t(texts.VIDEO_TOO_LONG, seconds=round(duration), limit=round(MAX_VIDEO_SECONDS))
        await message.reply_text(text, do_quote=True)
        return None
    side = getattr(media, "length", 0) or 0  # a video note is a square of this side
    request = VideoRequest(
        media.file_id, kind, duration,
        getattr(media, "width", side) or 0, getattr(media, "height", side) or 0, size,
        context.chat_data.settings.mode,
    )  # fmt: skip
    request = context.chat_data.remember_video(message.message_id, request)
    await save_now(context, chat_id=message.chat.id)  # before anyone sees the keyboard
    return request


def _seconds(duration: object) -> float:
    """Telegram's duration (python-telegram-bot gives int seconds or a timedelta)."""
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    return float(duration or 0)


def photos_worth(request: VideoRequest) -> int:
    """How many photos the throttle counts this video as."""
    return max(1, math.ceil(request.duration_s / SECONDS_PER_PHOTO))


async def _mask_at_once(
    update: Update, context: Context, video_message: Message, argument: str
) -> None:
    t = context.t
    request_message = update.effective_message
    svc = context.services
    mask = groups.find_mask(argument, svc.masks)
    if mask is None:
        text = groups.unknown_mask_text(argument, svc.masks, t)
        await request_message.reply_text(text, do_quote=True)
        return
    request = await remember_video(video_message, context, t)
    if request is None:  # over a limit, and said so
        return
    if await kit.refused_by_throttle(update, context, count=photos_worth(request)):
        return
    await mask_and_reply(
        context, update.effective_chat.id, video_message.message_id, request, mask, t,
        user_id=update.effective_user.id, react_to=request_message.message_id,
    )  # fmt: skip


# ----------------------------------------------------------------------------- buttons


async def button(update: Update, context: Context) -> None:
    """A mask, the Crop toggle, or Cancel under a video's progress message."""
    query, t = update.callback_query, context.t
    tap = callbacks.decode(query.data)
    if tap and tap.action is Action.VIDEO_CANCEL and query.message is not None:
        await _cancel(update, context, t)  # by the progress message, not the video
        return
    tapped = await kit.opening(update, context, lambda chat: chat.videos)
    if tapped is None:
        return
    video_id, request, svc = tapped.target_id, tapped.request, context.services
    chat_id = query.message.chat.id
    if tapped.tap.action is Action.VIDEO_MODE:  # same message, new keyboard
        latest = lambda: keyboards.video_keyboard(svc.masks, video_id, request.mode, t)  # noqa: E731
        await kit.toggle(query, context, request.toggle_mode, latest)
        return
    mask = kit.mask_by_id(svc.masks, tapped.tap.mask_id)
    if mask is None:
        await query.answer(t(texts.ERRORS["unknown_mask"]), show_alert=True)
        return
    if await kit.refused_by_throttle(update, context, count=photos_worth(request)):
        return
    await query.answer(t(texts.WORKING))
    await mask_and_reply(
        context, chat_id, video_id, request, mask, t, user_id=query.from_user.id, react_to=video_id
    )


@dataclass
class _Running:
    """A video being masked, by its progress message: who may cancel it, and its job."""

    user_id: int
    task: asyncio.Task[MaskedVideo] | None = None
    cancelled: bool = False
    fraction: float = 0.0  # the worker's latest report


async def _cancel(update: Update, context: Context, t: Translator) -> None:
    query = update.callback_query
    key = (query.message.chat.id, query.message.message_id)
    running: _Running | None = context.bot_data.get(RUNNING, {}).get(key)
    if running is None:  # finished meanwhile, or made before a restart
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    if running.user_id != query.from_user.id:
        await query.answer(t(texts.VIDEO_NOT_YOURS), show_alert=True)
        return
    running.cancelled = True
    if running.task is not None:
        running.task.cancel()  # the queue stops the job in its worker
    await query.answer(t(texts.VIDEO_CANCELLING))


# ----------------------------------------------------------------------------- out


async def mask_and_reply(
    context: Context,
    chat_id: int,
    video_id: int,
    request: VideoRequest,
    mask: MaskSpec,
    t: Translator,
    *,
    user_id: int,
    react_to: int,
) -> None:
    """Mask the video and reply under it with the same kind of message, or with the error's
    sentence; a progress message with Cancel shows the way there."""
    svc = context.services
    reply_to = ReplyParameters(video_id, allow_sending_without_reply=True)
    cancel = keyboards.cancel_keyboard(video_id, t)
    progress = await context.bot.send_message(
        chat_id, t(texts.VIDEO_PROGRESS, percent=0), reply_parameters=reply_to, reply_markup=cancel
    )
    key = (chat_id, progress.message_id)
    running = _Running(user_id)
    jobs: dict[tuple[int, int], _Running] = context.bot_data.setdefault(RUNNING, {})
    jobs[key] = running
    note = request.kind == "video_note"
    action = ChatAction.RECORD_VIDEO_NOTE if note else ChatAction.UPLOAD_VIDEO
    async with reacting(context.bot, chat_id, react_to, svc.no_reactions):
        try:
            async with kit.showing(context, chat_id, action):
                data = await kit.download(context, request.file_id, t)
                if running.cancelled:
                    raise JobCancelledError()
                result = await _masked(context, running, progress, cancel, t, VideoJob(
                    data, mask.id, request.mode, request.kind, request.duration_s
                ))  # fmt: skip
        except FaceMaskError as error:
            logger.info("chat %s user %s video mask %d: %s", chat_id, user_id, mask.id, error.code)
            await _say_instead(context, progress, texts.video_error_text(error, t), reply_to)
            await journal.answered(context)
            return
        finally:
            jobs.pop(key, None)
        logger.info(
            "chat %s user %s mask %d on a %s: %dx%d, %d frames, %.1f faces a frame, %.0f ms",
            chat_id, user_id, mask.id, request.kind, result.width, result.height, result.frames,
            result.faces_mean, result.ms,
        )  # fmt: skip
        await _send(context, chat_id, reply_to, mask, result, t)
        await journal.answered(context)  # a crash from here on must not send it twice
    if note:  # a round video has no caption: the progress message names the mask instead
        scaled_to = max(result.width, result.height) if result.scaled_down else None
        line = texts.video_caption(mask, t, scaled_to=scaled_to, cut_off=not result.complete)
        await _say_instead(context, progress, line, reply_to)
        return
    with contextlib.suppress(TelegramError):  # the answer is out: the progress has done its job
        await context.bot.delete_message(chat_id, progress.message_id)


async def _masked(
    context: Context,
    running: _Running,
    progress: Message,
    cancel_markup: object,
    t: Translator,
    job: VideoJob,
) -> MaskedVideo:
    """The worker's masked video, the progress message edited while it works."""

    def report(fraction: float) -> None:
        running.fraction = max(running.fraction, fraction)

    running.task = asyncio.create_task(context.services.queue.mask_video(job, report))
    editor = asyncio.create_task(_show_progress(context, progress, running, cancel_markup, t))
    try:
        return await running.task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if running.cancelled and not (current and current.cancelling()):
            raise JobCancelledError() from None  # the Cancel button, not a shutdown
        raise
    finally:
        editor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await editor


async def _show_progress(
    context: Context, message: Message, running: _Running, markup: object, t: Translator
) -> None:
    """Edit "Masking... N%" in place, at most every ``PROGRESS_SECONDS`` (settings; Telegram's
    flood limits, and calm), while N grows."""
    shown = 0
    while True:
        await asyncio.sleep(context.services.settings.progress_seconds)
        percent = min(99, int(running.fraction * 100))
        if percent <= shown:
            continue
        try:
            await context.bot.edit_message_text(
                t(texts.VIDEO_PROGRESS, percent=percent), message.chat.id, message.message_id,
                reply_markup=markup,
            )  # fmt: skip
        except TelegramError as error:  # decoration: the video still comes
            logger.info("could not show progress in chat %s: %s", message.chat.id, error)
        shown = percent


async def _say_instead(
    context: Context, progress: Message, text: str, reply_to: ReplyParameters
) -> None:
    """The progress message becomes the sentence (a new message if it cannot)."""
    try:
        await context.bot.edit_message_text(text, progress.chat.id, progress.message_id)
    except TelegramError:
        await context.bot.send_message(progress.chat.id, text, reply_parameters=reply_to)


async def _send(
    context: Context,
    chat_id: int,
    reply_to: ReplyParameters,
    mask: MaskSpec,
    result: MaskedVideo,
    t: Translator,
) -> Message:
    """The masked video as the kind of message it came as, the Sticker button under it."""
    duration = max(1, round(result.duration_s))
    name = kit.file_name(mask, "mp4")
    markup = result_keyboard(reply_to.message_id, mask, t)
    if result.kind == "video_note":  # no caption: a round video has none
        return await context.bot.send_video_note(
            chat_id, InputFile(result.data, filename=name), duration=duration,
            length=result.width, reply_parameters=reply_to, reply_markup=markup,
        )  # fmt: skip
    scaled_to = max(result.width, result.height) if result.scaled_down else None
    caption = texts.video_caption(mask, t, scaled_to=scaled_to, cut_off=not result.complete)
    if result.kind == "animation":
        return await context.bot.send_animation(
            chat_id, InputFile(result.data, filename=name), duration=duration,
            width=result.width, height=result.height, caption=caption, reply_parameters=reply_to,
            reply_markup=markup,
        )  # fmt: skip
    return await context.bot.send_video(
        chat_id, InputFile(result.data, filename=name), duration=duration, width=result.width,
        height=result.height, caption=caption, supports_streaming=True, reply_parameters=reply_to,
        reply_markup=markup,
    )  # fmt: skip


def result_keyboard(video_id: int, mask: MaskSpec, t: Translator) -> InlineKeyboardMarkup:
    """Under a masked video: 🏷 Sticker, naming the video (its request) and the mask."""
    data = callbacks.encode(Action.VIDEO_STICKER, video_id, mask.id)
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t(texts.STICKER_BUTTON), callback_data=data)]]
    )
