"""``python -m bot`` / ``facemask-bot``: run the Telegram bot until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import sys
import time

from pydantic import ValidationError

from bot.connection import EXIT_STATUSES, RUNNING, Fatal, write_status
from bot.settings import MissingTokenError, Settings
from serving.logs import configure_logging
from serving.settings import describe_problems

HEALTHY_WITHIN_SECONDS = 60


def healthcheck(settings: Settings) -> int:
    """0 while the running bot's heartbeat file is fresh (for Docker's HEALTHCHECK).

    Says what the bot is doing when that is not just running, e.g. waiting for Telegram.
    """
    path = settings.heartbeat_file
    if path is None:
        print("facemask-bot: HEARTBEAT_FILE is not set", file=sys.stderr)
        return 1
    status = _read_status(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"facemask-bot: {status or f'no heartbeat at {path}'}", file=sys.stderr)
        return 1
    healthy = age < HEALTHY_WITHIN_SECONDS
    if status and status != RUNNING:
        print(f"facemask-bot: {status}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def _read_status(settings: Settings) -> str:
    try:
        return settings.status_file.read_text().strip() if settings.status_file else ""
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="facemask-bot",
        description="Run the facemask Telegram bot (settings: .env.example).",
        epilog="exit status:\n"
        + "\n".join(f"  {status}  {meaning}" for status, meaning in EXIT_STATUSES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 if the running bot is alive; else 1 and why (e.g. waiting for Telegram)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"facemask-bot: bad settings: {describe_problems(error)}", file=sys.stderr)
        return 2
    if args.healthcheck:
        return healthcheck(settings)
    try:
        settings.token()
    except MissingTokenError as error:
        print(f"facemask-bot: {error}", file=sys.stderr)
        return 2
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"facemask-bot: cannot use STATE_DIR {settings.state_dir}: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets())

    from bot.app import run  # after logging, so start-up messages are formatted and redacted

    try:
        run(settings)
    except Fatal as error:  # what retrying cannot fix: one line, its own exit status
        print(f"facemask-bot: {error}", file=sys.stderr)
        write_status(settings.status_file, f"stopped: {error}")
        return error.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
