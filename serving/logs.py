"""The one logging set-up of the bot, ``facemask-worker`` and their worker processes.

One format everywhere, and secrets (the bot's token, the webhook secret, Redis's password)
replaced by ``<secret>`` wherever they appear, tracebacks included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import unquote

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "<secret>"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then blanks out secrets wherever they appear (tracebacks included)."""

    def __init__(self, fmt: str = FORMAT, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = _with_unquoted(secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class RefusalsWithoutTraceback(logging.Filter):
    """A request the webhook server refused on purpose (4xx, e.g. a missing secret) is logged
    as one line: python-telegram-bot logs it at DEBUG with the exception's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = getattr(error, "status_code", None)
        if type(error).__name__ == "HTTPError" and isinstance(status, int) and status < 500:
            record.msg = f"{record.getMessage()}: {error}"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def _with_unquoted(secrets: Iterable[str]) -> list[str]:
    """The secrets, each also as the client reads it out of a URL (``p%40ss`` is ``p@ss``)."""
    found: list[str] = []
    for secret in secrets:
        for form in (secret, unquote(secret)):
            if form and form not in found:
                found.append(form)
    return found


def configure_logging(level: str | int, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level`` in :data:`FORMAT`, with ``secrets`` redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT, secrets))
    handler.addFilter(RefusalsWithoutTraceback())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # httpx logs every request URL at INFO (redacted, but one line per request is noise); at
    # DEBUG everything is shown, redacted like the rest
    number = logging.getLevelName(level) if isinstance(level, str) else level
    debug = isinstance(number, int) and number <= logging.DEBUG
    logging.getLogger("httpx").setLevel(logging.NOTSET if debug else logging.WARNING)


def current_secrets() -> list[str]:
    """The secrets the root logger redacts now, for a child process to redact the same."""
    return [
        secret
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, RedactingFormatter)
        for secret in handler.formatter.secrets
    ]


def add_secret(secret: str) -> None:
    """Redact ``secret`` from now on too (one made up at run time, e.g. a webhook secret)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, RedactingFormatter) and secret:
            handler.formatter.secrets.extend(_with_unquoted([secret]))
