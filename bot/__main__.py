"""``python -m bot`` / ``facemask-bot``: run the Telegram bot until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pydantic import ValidationError
from telegram.error import InvalidToken

from bot.settings import MissingTokenError, Settings

HEALTHY_WITHIN_SECONDS = 60


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then blanks out secrets wherever they appear (tracebacks included)."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self.secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        return text


def configure_logging(settings: Settings) -> None:
    secrets = [
        s.get_secret_value() for s in (settings.telegram_bot_token, settings.webhook_secret) if s
    ]
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    # httpx logs every request URL at INFO, and Bot API URLs hold the token
    logging.getLogger("httpx").setLevel(logging.WARNING)


def healthcheck(settings: Settings) -> int:
    """0 while the running bot's heartbeat file is fresh (for Docker's HEALTHCHECK)."""
    path = settings.heartbeat_file
    if path is None:
        print("facemask-bot: HEARTBEAT_FILE is not set", file=sys.stderr)
        return 1
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"facemask-bot: no heartbeat at {path}", file=sys.stderr)
        return 1
    return 0 if age < HEALTHY_WITHIN_SECONDS else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="facemask-bot", description="Run the facemask Telegram bot (settings: .env.example)."
    )
    parser.add_argument(
        "--healthcheck", action="store_true", help="exit 0 if the running bot is alive"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        print(f"facemask-bot: bad settings: {problems}", file=sys.stderr)
        return 2
    if args.healthcheck:
        return healthcheck(settings)
    try:
        settings.token()
    except MissingTokenError as error:
        print(f"facemask-bot: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)

    from bot.app import run  # after logging, so start-up messages are formatted and redacted

    try:
        run(settings)
    except InvalidToken:
        print(
            "facemask-bot: Telegram rejected TELEGRAM_BOT_TOKEN; copy it again from @BotFather.",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
