"""The one logging set-up of the bot, ``facemask-worker`` and their worker processes.

One format everywhere, and secrets (the bot's token, the webhook secret, the proxy's URL and
password, Redis's password) replaced by ``<secret>`` wherever they appear, tracebacks included,
and in whatever form: as given, percent-encoded in a URL (python-telegram-bot quotes the
download URL's path, so the token's colon arrives as ``%3A``; either case of hex digits),
decoded out of one (``p%40ss`` is ``p@ss``), or any mix of these. A bot token's secret half
(after its colon) is redacted on its own too, and a proxy's credentials also as the base64 of
its ``Proxy-Authorization`` header.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "<secret>"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then blanks out secrets wherever they appear (tracebacks included)."""

    def __init__(self, fmt: str = FORMAT, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact ``secrets`` from now on too."""
        for secret in _forms(secrets):
            if secret not in self.secrets:
                self.secrets.append(secret)
        # longest first: a secret that contains another is blanked out whole
        patterns = [_any_encoding(s) for s in sorted(self.secrets, key=len, reverse=True)]
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return self._pattern.sub(REDACTED, text) if self._pattern else text


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


#: a Telegram bot token: the bot's id, a colon, then the part that is the secret
_BOT_TOKEN = re.compile(r"^\d+:(?P<key>[\w-]{20,})$")


def _forms(secrets: Iterable[str]) -> list[str]:
    """The secrets as given and as read out of a URL (``p%40ss`` is ``p@ss``), a bot token's
    secret half, and a URL's credentials as a proxy's Basic authorization carries them."""
    found: list[str] = []
    for secret in secrets:
        forms = [secret, unquote(secret)]
        if token := _BOT_TOKEN.match(secret):
            forms.append(token["key"])
        if "://" in secret:
            with contextlib.suppress(ValueError):  # a malformed URL has no parts
                parts = urlsplit(secret)
                if parts.password:
                    pair = f"{unquote(parts.username or '')}:{unquote(parts.password)}"
                    forms.append(base64.b64encode(pair.encode()).decode())
        found += [form for form in dict.fromkeys(forms) if form and form not in found]
    return found


def _any_encoding(secret: str) -> str:
    """A pattern matching ``secret`` with each character as itself or percent-encoded (upper
    or lower case hex; a space also as ``+``), as URLs and URL-quoting libraries write it."""
    parts = []
    for char in secret:
        encoded = "".join(
            f"%[{h[0]}{h[0].lower()}][{h[1]}{h[1].lower()}]"
            for h in (f"{byte:02X}" for byte in char.encode())
        )
        plus = r"|\+" if char == " " else ""
        parts.append(f"(?:{re.escape(char)}|{encoded}{plus})")
    return "".join(parts)


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
            handler.formatter.add([secret])
