"""The "Full quality" toggle under a photo's keyboard: results as files, not recompressed photos.

Telegram recompresses what a bot sends as a photo (JPEG, at most 1280 px on its long side in
the apps); a file arrives as it was made. A photo sent as a file starts with the toggle on
(documents in, documents out); the toggle lives in the photo's
:class:`~bot.state.PhotoRequest` (``as_file``), stored before the keyboard shows it.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot import handlers, keyboards, texts
from bot.handlers import services, translator
from bot.persistence import save_now
from bot.state import Context


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(quality_toggle, pattern=keyboards.QUALITY_PATTERN))


async def quality_toggle(update: Update, context: Context) -> None:
    query = update.callback_query
    t = translator(update, context)
    if query.message is None or context.chat_data is None:  # an inline message: not ours
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    photo_id = int(query.data.rpartition(":")[2])
    request = context.chat_data.photos.get(photo_id)
    if request is None or not handlers._keyboard_of(query.message, photo_id):
        await query.answer(t(texts.PHOTO_GONE), show_alert=True)
        return
    await query.answer()
    request.as_file = not request.as_file
    await save_now(context, chat_id=query.message.chat.id)
    masks = services(context).masks
    latest = lambda: keyboards.mask_keyboard(  # noqa: E731
        masks, photo_id, request.mode, t, as_file=request.as_file
    )
    handlers._edit_soon(context, query.message, latest)
