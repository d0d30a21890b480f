"""The "Full quality" toggle under a photo's keyboard: results as files, not recompressed photos.

Telegram recompresses what a bot sends as a photo (JPEG, at most 1280 px on its long side in
the apps); a file arrives as it was made. A photo sent as a file starts with the toggle on
(documents in, documents out); the toggle lives in the photo's
:class:`~bot.state.PhotoRequest` (``as_file``), stored before the keyboard shows it.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot import keyboards, kit
from bot.callbacks import Action, matches
from bot.kit import Context


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(quality_toggle, pattern=matches(Action.QUALITY)))


async def quality_toggle(update: Update, context: Context) -> None:
    tapped = await kit.opening(update, context, lambda chat: chat.photos)
    if tapped is None:
        return
    photo_id, request, t = tapped.target_id, tapped.request, context.t
    masks = context.services.masks

    def flip() -> None:
        request.as_file = not request.as_file

    latest = lambda: keyboards.mask_keyboard(  # noqa: E731
        masks, photo_id, request.mode, t, as_file=request.as_file
    )
    await kit.toggle(tapped.query, context, flip, latest)
