"""/maskme: the sender's current profile photo gets the mask keyboard, as a sent photo would.

getUserProfilePhotos lists what the bot may see; a person without a profile photo, or whose
privacy settings hide it from bots, gets none, and is told so. The bot posts the profile photo
with the keyboard under it, as a reply to the /maskme message; that message stands for the
photo in the chat's state (results reply to it), so the keyboard works after a restart like
any other.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler

from bot import keyboards, texts
from bot.kit import Context
from bot.persistence import save_now
from bot.state import PhotoRequest

logger = logging.getLogger(__name__)


def register(app: Application) -> None:
    app.add_handler(CommandHandler("maskme", maskme))


async def maskme(update: Update, context: Context) -> None:
    message = update.effective_message
    user = update.effective_user
    t = context.t
    if user is None or context.chat_data is None:  # a channel post: nobody to look up
        return
    try:
        found = await context.bot.get_user_profile_photos(user.id, limit=1)
    except TelegramError as error:
        logger.info("could not read user %s's profile photos: %s", user.id, error)
        found = None
    if found is None or not found.photos:
        await message.reply_text(t(texts.MASKME_NO_PHOTO), do_quote=True)
        return
    largest = found.photos[0][-1]  # Telegram lists sizes smallest first
    mode = context.chat_data.settings.mode
    request = context.chat_data.remember(
        message.message_id, PhotoRequest(largest.file_id, False, mode)
    )
    await save_now(context, chat_id=message.chat.id)  # before anyone sees the keyboard
    markup = keyboards.mask_keyboard(
        context.services.masks, message.message_id, request.mode, t, as_file=request.as_file
    )
    await message.reply_photo(
        largest.file_id, caption=t(texts.CHOOSE), reply_markup=markup, do_quote=True
    )
