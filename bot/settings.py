"""Everything the bot can be told, from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Telegram lets bots download files up to this size (getFile's limit)
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024


class MissingTokenError(RuntimeError):
    """Raised instead of a validation traceback: the one line a person needs."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"

    # inference: embedded worker processes, or Redis when REDIS_URL is set
    redis_url: str | None = None
    workers: int = Field(2, ge=1)
    queue_size: int = Field(32, ge=1)
    job_timeout: float = Field(30.0, gt=0)

    # limits
    max_file_size: int = Field(TELEGRAM_DOWNLOAD_LIMIT, gt=0, le=TELEGRAM_DOWNLOAD_LIMIT)
    throttle_jobs: int = Field(10, ge=1)  # masked photos per user ...
    throttle_seconds: float = Field(60.0, gt=0)  # ... within this window
    rate_limit: bool = True  # respect Telegram's outbound flood limits

    # webhook mode (polling when WEBHOOK_URL is unset): Telegram posts updates to WEBHOOK_URL,
    # the bot listens on WEBHOOK_LISTEN:WEBHOOK_PORT at that URL's path
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None

    # state that survives a restart (which photo each keyboard belongs to, crop on/off)
    persistence_file: Path = Path("facemask-bot.pickle")
    # touched every few seconds while the event loop runs; the Docker health check reads it
    heartbeat_file: Path | None = None
    poll_timeout: float = Field(10.0, ge=0)  # getUpdates long-poll seconds
    log_level: str = "INFO"

    def token(self) -> str:
        """The bot token, or :class:`MissingTokenError` saying how to get one."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise MissingTokenError(
                "TELEGRAM_BOT_TOKEN is not set: talk to @BotFather on Telegram "
                "(https://t.me/BotFather), send /newbot, and put the token it gives you "
                "in .env or the environment."
            )
        return self.telegram_bot_token.get_secret_value()
