"""The one place the bot is assembled: settings in, a ready python-telegram-bot Application out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlparse

from telegram import Bot, BotCommand, Update
from telegram.error import NetworkError
from telegram.ext import AIORateLimiter, Application, PersistenceInput

from bot import handlers, texts
from bot.handlers import Services
from bot.queue import create_queue
from bot.settings import Settings
from bot.state import CONTEXT_TYPES, StatePersistence
from masks import catalog

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
HEARTBEAT_SECONDS = 10


def build_application(settings: Settings) -> Application:
    """The bot, with its persistence, rate limiter, worker queue and handlers."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    persistence = StatePersistence(
        settings.state_file,
        # bot_data holds live objects (the queue), not state
        store_data=PersistenceInput(bot_data=False, callback_data=False),
        update_interval=10,
    )
    builder = (
        Application.builder()
        .token(settings.token())
        .context_types(CONTEXT_TYPES)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .persistence(persistence)
        .concurrent_updates(True)  # one slow photo must not hold up everyone else
        .get_updates_read_timeout(settings.poll_timeout + 10)
        .media_write_timeout(60)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if settings.rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    app = builder.build()
    app.bot_data[handlers.SERVICES] = Services(
        settings=settings, queue=create_queue(settings), masks=catalog.masks()
    )
    handlers.register(app)
    return app


def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM: long polling, or a webhook when WEBHOOK_URL is set.

    Raises ``telegram.error.InvalidToken`` before starting anything if Telegram rejects the
    token (python-telegram-bot would log a traceback for it first).
    """
    asyncio.run(_check_token(settings))
    app = build_application(settings)
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        app.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlparse(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url,
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
        )
    else:
        app.run_polling(allowed_updates=ALLOWED_UPDATES, timeout=int(settings.poll_timeout))


async def _check_token(settings: Settings) -> None:
    bot = Bot(
        settings.token(),
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
    )
    try:
        await bot.initialize()  # getMe
    except NetworkError as error:  # not the token's fault: polling retries on its own
        logger.warning("could not reach Telegram yet: %s", error)
    finally:
        await bot.shutdown()


async def _post_init(app: Application) -> None:
    svc: Services = app.bot_data[handlers.SERVICES]
    await svc.queue.start()
    await app.bot.set_my_commands(
        [BotCommand(name, about) for name, about in texts.COMMANDS.items()]
    )
    if svc.settings.heartbeat_file is not None:
        svc.background.append(asyncio.create_task(_heartbeat(svc.settings)))
    logger.info("@%s is ready", app.bot.username)


async def _post_shutdown(app: Application) -> None:
    svc: Services = app.bot_data[handlers.SERVICES]
    for task in svc.background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await svc.queue.close()


async def _heartbeat(settings: Settings) -> None:
    """Touch a file while the event loop is responsive; the container health check reads it."""
    assert settings.heartbeat_file is not None
    while True:
        settings.heartbeat_file.touch()
        await asyncio.sleep(HEARTBEAT_SECONDS)
