"""The one place the bot is assembled: settings in, a ready python-telegram-bot Application out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from urllib.parse import urlparse

from telegram import Update
from telegram.error import InvalidToken
from telegram.ext import Application

from bot import (
    albums,
    full_quality,
    groups,
    handlers,
    i18n,
    inline,
    profile,
    profile_photo,
    settings_menu,
    stickers,
    styles,
    video,
)
from bot.connection import (
    RUNNING,
    TelegramLink,
    TokenRefused,
    make_bot,
    network_error_handler,
    quiet_library_logs,
    wait_for_telegram,
    webhook_refusal,
    write_status,
)
from bot.journal import JOURNAL_NAME, Journal, JournaledApplication, JournaledQueue, replay
from bot.kit import CONTEXT_TYPES, SERVICES, Services
from bot.persistence import TypedPersistence, create_persistence
from bot.queue import create_queue
from bot.ratelimit import MessagesFirstRateLimiter
from bot.settings import Settings
from masks import catalog
from serving.logs import add_secret

logger = logging.getLogger(__name__)

# my_chat_member: the bot was added to a group (the welcome); inline_query: bot.inline
ALLOWED_UPDATES = [
    Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER, Update.INLINE_QUERY,
]  # fmt: skip
HEARTBEAT_SECONDS = 10
PRUNE_SECONDS = 6 * 3600  # forgetting old chats is not urgent


def build_application(settings: Settings, link: TelegramLink | None = None) -> Application:
    """The bot, with its persistence, rate limiter, worker queue and handlers.

    ``link`` hears how the bot's requests to Telegram fare (bot.connection); a new one if None.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    i18n.load_all()  # a broken message catalog stops the start, not a chat later
    link = link or TelegramLink(settings.status_file)
    # written when it changes (bot.persistence.save_now), not on a timer
    persistence = create_persistence(settings)
    # every update is on disk before Telegram is told it arrived, until it is answered
    journal = Journal(settings.state_dir / JOURNAL_NAME)
    limiter = None
    if settings.rate_limit:
        # photos first: in groups, edits and chat actions wait for the budget to have room
        limiter = MessagesFirstRateLimiter(
            max_retries=3,
            group_max_rate=settings.group_messages,
            group_time_period=settings.group_window,
        )
    app = (
        Application.builder()
        .application_class(JournaledApplication, {"journal": journal})
        .update_queue(JournaledQueue(journal))
        # token, Bot API URLs, proxy, timeouts and rate limiter: bot.connection.make_bot
        .bot(make_bot(settings, link, limiter))
        .context_types(CONTEXT_TYPES)
        .persistence(persistence)
        .concurrent_updates(True)  # one slow photo must not hold up everyone else
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    app.bot_data[SERVICES] = Services(
        settings=settings, queue=create_queue(settings), masks=catalog.masks()
    )
    # first of the error handlers: network errors and 409s while polling, in one line or none
    app.add_error_handler(network_error_handler(link))
    # the more specific handlers first: the first that matches an update takes it
    settings_menu.register(app)
    styles.register(app)  # before groups' and handlers': a picture sent as a pattern, /mask mix
    for feature in (albums, full_quality, stickers, profile_photo, inline, video):
        feature.register(app)  # before groups': an album in a group is one album, not photos
    groups.register(app)
    handlers.register(app)
    return app


def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM: long polling, or a webhook when WEBHOOK_URL is set.

    Waits while Telegram cannot be reached (bot.connection.wait_for_telegram). Raises a
    ``bot.connection.Fatal`` for what retrying cannot fix (a refused token, another copy
    polling, a refused webhook URL, STARTUP_MAX_WAIT passed), before or after starting.
    """
    quiet_library_logs()
    link = TelegramLink(settings.status_file)
    if settings.heartbeat_file is not None:
        # a heartbeat left by an earlier run must not vouch for this one while it waits
        with contextlib.suppress(OSError):
            settings.heartbeat_file.unlink(missing_ok=True)
    try:
        asyncio.run(wait_for_telegram(settings, link))
        app = build_application(settings, link)
        # Telegram has answered; should it stop answering before the bot is up, retry forever
        # (a refused webhook URL still ends it: bot.connection.FacemaskBot)
        if settings.webhook_url:
            try:
                app.run_webhook(
                    listen=settings.webhook_listen,
                    port=settings.webhook_port,
                    url_path=urlparse(settings.webhook_url).path.lstrip("/"),
                    webhook_url=settings.webhook_url,
                    secret_token=webhook_secret(settings),
                    allowed_updates=ALLOWED_UPDATES,
                    bootstrap_retries=-1,
                )
            except Exception as error:
                refusal = webhook_refusal(error, settings.webhook_url)
                if refusal is None:
                    raise
                raise refusal from None
        else:
            app.run_polling(
                allowed_updates=ALLOWED_UPDATES,
                timeout=int(settings.poll_timeout),
                bootstrap_retries=-1,
            )
    except InvalidToken:  # revoked with /revoke while starting
        raise TokenRefused() from None
    if link.fatal is not None:
        raise link.fatal


def webhook_secret(settings: Settings) -> str:
    """WEBHOOK_SECRET, or a random one for this run: Telegram must prove every request."""
    if settings.webhook_secret and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    secret = secrets.token_urlsafe(32)  # Telegram allows A-Z, a-z, 0-9, _ and -
    add_secret(secret)  # never in a log line, not even at DEBUG
    logger.info("WEBHOOK_SECRET is not set: using a random secret for this run")
    return secret


async def _post_init(app: Application) -> None:
    svc: Services = app.bot_data[SERVICES]
    await svc.queue.start()
    svc.sees_all_groups = groups.read_privacy_mode(app.bot)
    await profile.publish(app.bot)
    svc.background.append(asyncio.create_task(_heartbeat(app)))
    write_status(svc.settings.status_file, RUNNING)
    if isinstance(app.persistence, TypedPersistence):
        svc.background.append(asyncio.create_task(_prune(app, app.persistence)))
    await replay(app)  # what the last run took on and did not answer, before anything new
    logger.info("@%s is ready", app.bot.username)


async def _post_shutdown(app: Application) -> None:
    svc: Services = app.bot_data[SERVICES]
    for task in svc.background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await svc.queue.close()
    if isinstance(app, JournaledApplication):
        await app.journal.close()


async def _heartbeat(app: Application) -> None:
    """Touch a file while the bot can work; the container health check reads its age.

    It stops while the queue cannot reach the workers (in Redis mode: Redis does not answer),
    so ``facemask-bot --healthcheck`` fails after a minute of that. Each beat also lets the
    state store catch up with writes Redis missed.
    """
    svc: Services = app.bot_data[SERVICES]
    path = svc.settings.heartbeat_file
    while True:
        if await svc.queue.healthy():
            if isinstance(app.persistence, TypedPersistence):
                await app.persistence.repair(app.chat_data, app.user_data)
            if path is not None:
                path.touch()
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _prune(app: Application, persistence: TypedPersistence) -> None:
    """Forget chats and users not seen for FORGET_AFTER_DAYS, in the store and in memory."""
    while True:
        forgotten = await persistence.prune()
        for chat_id in forgotten["chat"]:
            if chat_id in app.chat_data:
                app.drop_chat_data(chat_id)
        for user_id in forgotten["user"]:
            if user_id in app.user_data:
                app.drop_user_data(user_id)
        await asyncio.sleep(PRUNE_SECONDS)
