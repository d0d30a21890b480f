"""How the bot reaches Telegram: its proxy, waiting at start-up, outages, answers that end it.

Start-up waits while Telegram cannot be reached (the network of a fresh container, a proxy not
up yet), one log line per try; a network outage later is one line when it starts and one when
it ends, never a traceback per failed ``getUpdates``. What retrying cannot fix ends the process
with one line and its own exit status (:class:`Fatal` and its subclasses): a refused token,
another copy polling with the same token, a refused webhook URL.

The status of the link is written beside the heartbeat file (``HEARTBEAT_FILE`` + ``.status``)
for ``facemask-bot --healthcheck`` to explain itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from telegram import Bot, Update
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import ApplicationHandlerStop, BaseRateLimiter, ContextTypes, ExtBot
from telegram.request import HTTPXRequest

from bot.settings import Settings

logger = logging.getLogger(__name__)

#: seconds between start-up tries: doubling from the first, never more than the last
FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 30.0
#: what ``--healthcheck`` prints once Telegram has answered
RUNNING = "running"


class Fatal(Exception):
    """Telegram's answer, or its silence, that retrying cannot change: ends the process."""

    #: the process's exit status (``facemask-bot --help`` lists them)
    exit_status = 1


class TokenRefused(Fatal):
    exit_status = 3

    def __init__(self) -> None:
        super().__init__("the token was refused: check TELEGRAM_BOT_TOKEN with @BotFather")


class AnotherInstance(Fatal):
    exit_status = 4

    def __init__(self, description: str) -> None:
        super().__init__(
            f"another copy of this bot is using the same token (Telegram: {description}):"
            " only one polling bot may run per token; stop the other one, or run several"
            " copies in webhook mode (WEBHOOK_URL)"
        )


class WebhookRefused(Fatal):
    exit_status = 5

    def __init__(self, url: str, description: str) -> None:
        super().__init__(f"Telegram refused WEBHOOK_URL {url}: {description}")


class Unreachable(Fatal):
    exit_status = 6

    def __init__(self, waited: float, reason: str) -> None:
        super().__init__(
            f"Telegram could not be reached within STARTUP_MAX_WAIT ({waited:.0f} s): {reason}"
        )


#: exit status -> what it means, for ``facemask-bot --help`` (0-2 are the CLI's own)
EXIT_STATUSES = {
    0: "stopped by SIGINT or SIGTERM",
    1: "an unexpected error (its traceback is in the log)",
    2: "bad settings (the line names them) or a STATE_DIR that cannot be made",
    TokenRefused.exit_status: "Telegram refused TELEGRAM_BOT_TOKEN",
    AnotherInstance.exit_status: "another copy of the bot polls Telegram with the same token",
    WebhookRefused.exit_status: "Telegram refused WEBHOOK_URL",
    Unreachable.exit_status: "Telegram could not be reached within STARTUP_MAX_WAIT",
}


class _WebhookRefusal(Exception):
    """Not a ``TelegramError``, so that python-telegram-bot's start-up does not retry it."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class TelegramLink:
    """Whether Telegram answers, as the bot's requests find it; the status file says it too."""

    def __init__(self, status_file: Path | None) -> None:
        self.status_file = status_file
        self.down_since: float | None = None
        #: set when Telegram said something that ends the run (checked once it has stopped)
        self.fatal: Fatal | None = None

    def set_status(self, text: str) -> None:
        write_status(self.status_file, text)

    def failed(self, reason: str) -> None:
        if self.down_since is not None:
            return
        self.down_since = time.monotonic()
        logger.warning("Telegram cannot be reached: %s; retrying quietly until it answers", reason)
        self.set_status(f"waiting for Telegram since {_clock()}: {reason}")

    def reached(self, asked_at: float) -> None:
        """A request sent at ``asked_at`` (``time.monotonic()``) was answered."""
        if self.down_since is None or asked_at < self.down_since:
            return  # an answer to a question asked before the outage began proves nothing
        logger.info("Telegram answers again, after %.0f s", time.monotonic() - self.down_since)
        self.down_since = None
        self.set_status(RUNNING)


def write_status(path: Path | None, text: str) -> None:
    """Replace the status file's line (``--healthcheck`` never reads half of one)."""
    if path is None:
        return
    partial = path.with_name(path.name + ".new")
    try:
        partial.write_text(text + "\n")
        partial.replace(path)
    except OSError as error:
        logger.debug("could not write %s: %s", path, error)


class WatchedRequest(HTTPXRequest):
    """python-telegram-bot's HTTP client, telling a :class:`TelegramLink` what it finds."""

    def __init__(self, link: TelegramLink | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._link = link

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        asked_at = time.monotonic()
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except NetworkError as error:  # no answer at all (TimedOut is one too)
            if self._link is not None:
                self._link.failed(_reason(error))
            raise
        if self._link is not None:
            if code >= 500:  # Telegram's front answered for a back end that did not
                self._link.failed(f"HTTP {code}")
            else:
                self._link.reached(asked_at)
        return code, payload


def telegram_requests(
    settings: Settings, link: TelegramLink | None = None
) -> tuple[WatchedRequest, WatchedRequest]:
    """The HTTP clients for Bot API calls (file downloads too) and for ``getUpdates``.

    Both go through ``TELEGRAM_PROXY`` when it is set; otherwise httpx honours ``HTTPS_PROXY``,
    ``ALL_PROXY`` and ``NO_PROXY`` (``HTTP_PROXY`` for a plain-HTTP ``TELEGRAM_BASE_URL``).
    """
    proxy = settings.telegram_proxy.get_secret_value() if settings.telegram_proxy else None
    calls = WatchedRequest(link, proxy=proxy, media_write_timeout=60)
    # the long poll waits POLL_TIMEOUT seconds for an answer: the read timeout must outlast it
    updates = WatchedRequest(
        link, proxy=proxy, connection_pool_size=1, read_timeout=settings.poll_timeout + 10
    )
    return calls, updates


class FacemaskBot(ExtBot[Any]):
    """The application's bot: a webhook URL Telegram refuses stops the start instead of being
    retried forever (python-telegram-bot retries every ``TelegramError`` while starting)."""

    async def set_webhook(self, *args: Any, **kwargs: Any) -> bool:  # type: ignore[override]
        try:
            return await super().set_webhook(*args, **kwargs)
        except BadRequest as error:
            raise _WebhookRefusal(error.message) from None


def make_bot(
    settings: Settings, link: TelegramLink, rate_limiter: BaseRateLimiter[Any] | None
) -> FacemaskBot:
    request, get_updates_request = telegram_requests(settings, link)
    return FacemaskBot(
        settings.token(),
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=request,
        get_updates_request=get_updates_request,
        rate_limiter=rate_limiter,
    )


async def wait_for_telegram(settings: Settings, link: TelegramLink) -> None:
    """Ask Telegram who the bot is (getMe) until it answers: one log line per failed try.

    Raises :class:`TokenRefused` when Telegram refuses the token and :class:`Unreachable` once
    ``STARTUP_MAX_WAIT`` has passed (unset: never).
    """
    request, get_updates_request = telegram_requests(settings)
    bot = Bot(
        settings.token(),
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=request,
        get_updates_request=get_updates_request,
    )
    started = time.monotonic()
    delay = FIRST_RETRY_SECONDS
    link.set_status("connecting to Telegram")
    try:
        for attempt in itertools.count(1):
            try:
                await bot.initialize()  # getMe
                link.set_status("starting: Telegram answered")
                return
            except InvalidToken:
                raise TokenRefused() from None
            except RetryAfter as error:
                # _retry_after: a timedelta; the public retry_after warns of a type change
                reason, pause = str(error), error._retry_after.total_seconds()
            except NetworkError as error:
                reason, pause = _reason(error), delay
                delay = min(delay * 2, LONGEST_RETRY_SECONDS)
            max_wait = settings.startup_max_wait
            if max_wait is not None:
                left = max_wait - (time.monotonic() - started)
                if left <= 0:
                    raise Unreachable(max_wait, reason)
                pause = min(pause, left)  # the last try comes when STARTUP_MAX_WAIT is up
            next_try = _clock(pause)
            logger.warning(
                "Telegram cannot be reached yet (try %d): %s; next try in %.0f s, at %s",
                attempt, reason, pause, next_try,
            )  # fmt: skip
            link.set_status(f"waiting for Telegram: {reason}; next try at {next_try}")
            await asyncio.sleep(pause)
    finally:
        await bot.shutdown()


def network_error_handler(
    link: TelegramLink,
) -> Callable[[object, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    """The error handler registered before the bot's own: polling errors in one line or none.

    python-telegram-bot hands every failed ``getUpdates`` to the error handlers, with its
    traceback; a network error is already in the log once (:class:`TelegramLink`), and a
    ``409 Conflict`` (another copy polling) ends the run.
    """

    async def handle(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        if isinstance(error, Conflict):
            if link.fatal is None:
                link.fatal = AnotherInstance(error.message)
                context.application.stop_running()
            raise ApplicationHandlerStop
        if isinstance(error, NetworkError) and link.down_since is not None:
            if isinstance(update, Update):
                logger.info("update %s not answered: Telegram cannot be reached", update.update_id)
            raise ApplicationHandlerStop
        if update is None and isinstance(error, TelegramError):  # e.g. a 429 on getUpdates
            logger.warning("polling for updates failed: %s", error)
            raise ApplicationHandlerStop

    return handle


def webhook_refusal(error: BaseException, url: str) -> WebhookRefused | None:
    """The :class:`WebhookRefused` behind an error from ``run_webhook``, if that is what it is."""
    while error is not None:
        if isinstance(error, _WebhookRefusal):
            return WebhookRefused(url, error.description)
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


class _LibraryErrorsInOneLine(logging.Filter):
    """python-telegram-bot logs its errors with their tracebacks. Those the bot reports itself
    (network errors, 409, a refused token) are dropped; any other is one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, TelegramError):
            return True
        if isinstance(error, NetworkError | Conflict | InvalidToken):
            return False
        record.msg = f"{record.getMessage()}: {error}"
        record.args = None
        record.exc_info = record.exc_text = None
        return True


#: the loggers python-telegram-bot logs retries and polling errors to
LIBRARY_LOGGERS = ("telegram.ext", "telegram.ext.Updater", "telegram.ext.Application")


def quiet_library_logs() -> None:
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(f, _LibraryErrorsInOneLine) for f in library.filters):
            library.addFilter(_LibraryErrorsInOneLine())


def _reason(error: TelegramError) -> str:
    """The error in one line (httpx's messages may span several)."""
    text = " ".join(str(error).split()).rstrip(".")
    return text or type(error).__name__


def _clock(after: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() + after).strftime("%H:%M:%S")
