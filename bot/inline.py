"""Inline mode: ``@bot`` in any chat offers the user's masked photos, ready to send.

Telegram sends every keystroke after ``@bot `` as an inline query and shows what the bot
answers. The answer is built from memory alone, so it takes milliseconds: the user's recent
masked photos (their file ids, kept in :class:`~bot.state.UserState` as the bot sends them)
and, when ``INLINE_CACHE_CHAT_ID`` names a chat the bot may post in, the user's profile photo
in all seven masks. Those are made once per profile photo, after the query is answered: the
worker masks the photo, the bot posts the seven to that chat as an album and keeps the file
ids; the next query shows them. Results are cached photos, personal to the user
(``is_personal``). A button above them opens the private chat (deep link ``/start mask``) to
mask a new photo. Query text picks masks by number or by name in any shipped language
("3", "villain", "злодей", or the start of a name).
"""

from __future__ import annotations

import logging
import time

from telegram import (
    InlineQueryResultCachedPhoto,
    InlineQueryResultsButton,
    InputMediaPhoto,
    Update,
    User,
)
from telegram.constants import InlineQueryLimit
from telegram.error import TelegramError
from telegram.ext import Application, InlineQueryHandler

from bot import groups, i18n, kit, texts
from bot.i18n import Translator
from bot.kit import Context
from bot.persistence import save_now
from bot.state import AvatarMasks, UserState
from core.errors import FaceMaskError, NoFaceFoundError
from core.results import Mode
from masks import names as mask_names
from masks.catalog import MaskSpec

logger = logging.getLogger(__name__)

#: seconds Telegram may show the same answer again; short, since new photos join the list
CACHE_SECONDS = 10
#: the deep link the results' button opens: /start mask in the private chat
START_PARAMETER = "mask"
#: a profile photo is looked up again after this long (it may have changed)
AVATAR_CHECK_SECONDS = 3600.0
MAKING = "inline_avatars_in_progress"  # bot_data key: users whose masks are being made


def register(app: Application) -> None:
    app.add_handler(InlineQueryHandler(inline_query))


def wanted_masks(text: str, masks: list[MaskSpec]) -> set[int]:
    """The masks a query names: all for an empty one; by number, name, or a name's start."""
    text = text.strip()
    if not text:
        return {mask.id for mask in masks}
    exact = groups.find_mask(text, masks)
    if exact is not None:
        return {exact.id}
    start = mask_names.normal(text)
    found = set()
    for language in i18n.LANGUAGES:
        t = i18n.translator(language)
        for mask in masks:
            names = (mask_names.normal(t(mask.name)), mask_names.normal(t(mask.label)))
            if any(name.startswith(start) for name in names):
                found.add(mask.id)
    return found


def results_for(
    state: UserState, masks: list[MaskSpec], wanted: set[int], t: Translator
) -> list[InlineQueryResultCachedPhoto]:
    """The profile photo's masks first, then the recent photos, newest first."""
    by_id = {mask.id: mask for mask in masks}
    results: list[InlineQueryResultCachedPhoto] = []
    avatar = state.avatar
    if avatar is not None:
        for mask_id, file_id in sorted(avatar.file_ids.items()):
            if mask_id in wanted and mask_id in by_id:
                results.append(_result(f"a{mask_id}", file_id, by_id[mask_id], t))
    for n, shared in enumerate(state.shared):
        if shared.mask_id in wanted and shared.mask_id in by_id:
            results.append(_result(f"r{n}", shared.file_id, by_id[shared.mask_id], t))
    return results[: InlineQueryLimit.RESULTS]


def _result(
    result_id: str, file_id: str, mask: MaskSpec, t: Translator
) -> InlineQueryResultCachedPhoto:
    label = f"{mask.emoji} {t(mask.name)}"
    return InlineQueryResultCachedPhoto(result_id, file_id, title=label, caption=label)


async def inline_query(update: Update, context: Context) -> None:
    started = time.perf_counter()
    query = update.inline_query
    user = query.from_user
    t = i18n.translator(i18n.from_telegram(user.language_code))
    svc = context.services
    state = context.user_data
    results = results_for(state, svc.masks, wanted_masks(query.query, svc.masks), t)
    button = InlineQueryResultsButton(t(texts.INLINE_BUTTON), start_parameter=START_PARAMETER)
    await query.answer(results, cache_time=CACHE_SECONDS, is_personal=True, button=button)
    logger.info(
        "inline query of user %s: %d results in %.0f ms",
        user.id, len(results), (time.perf_counter() - started) * 1000,
    )  # fmt: skip
    if svc.settings.inline_cache_chat_id is not None and _avatar_due(state):
        making: set[int] = context.bot_data.setdefault(MAKING, set())
        if user.id not in making:
            making.add(user.id)
            context.application.create_task(_make_avatar(context, user, making), update=update)


def _avatar_due(state: UserState) -> bool:
    return state.avatar is None or time.time() - state.avatar.checked > AVATAR_CHECK_SECONDS


async def _make_avatar(context: Context, user: User, making: set[int]) -> None:
    """Mask the user's profile photo with all seven and keep the masked photos' file ids."""
    try:
        await _refresh_avatar(context, user)
    finally:
        making.discard(user.id)


async def _refresh_avatar(context: Context, user: User) -> None:
    svc = context.services
    state = context.user_data
    chat_id = svc.settings.inline_cache_chat_id
    assert chat_id is not None
    try:
        found = await context.bot.get_user_profile_photos(user.id, limit=1)
    except TelegramError as error:
        logger.info("inline: could not read user %s's profile photos: %s", user.id, error)
        return
    photo = found.photos[0][-1] if found.photos else None
    photo_id = photo.file_unique_id if photo else ""
    if state.avatar is not None and state.avatar.photo_id == photo_id:
        state.avatar.checked = time.time()  # the same photo: its masks still stand
        await save_now(context, user_id=user.id)
        return
    file_ids: dict[int, str] = {}
    # not counted by the per-user throttle: it runs at most once per profile photo and
    # AVATAR_CHECK_SECONDS, and would otherwise eat the taps of someone who just typed @bot
    if photo is not None:
        t = i18n.translator(i18n.from_telegram(user.language_code))
        try:
            image = await kit.download(context, photo.file_id, t)
            ids = tuple(mask.id for mask in svc.masks)
            try:
                masked = await svc.queue.mask_many(image, ids, Mode.FACES)
            except NoFaceFoundError:  # a close-up or a drawing: the whole photo is the face
                masked = await svc.queue.mask_many(image, ids, Mode.WHOLE)
        except FaceMaskError as error:
            logger.info("inline: user %s's profile photo: %s", user.id, error.code)
            masked = []
        if masked:
            media = [
                InputMediaPhoto(result.image, caption=f"{mask.emoji} {mask.name}")
                for mask, result in zip(svc.masks, masked, strict=True)
            ]
            try:
                posted = await context.bot.send_media_group(chat_id, media)
            except TelegramError as error:
                logger.warning("inline: could not post to INLINE_CACHE_CHAT_ID: %s", error)
                return
            file_ids = {
                mask.id: message.photo[-1].file_id
                for mask, message in zip(svc.masks, posted, strict=True)
                if message.photo
            }
    state.avatar = AvatarMasks(photo_id, file_ids, time.time())
    await save_now(context, user_id=user.id)
    logger.info("inline: user %s's profile photo in %d masks", user.id, len(file_ids))
