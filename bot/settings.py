"""Everything the bot can be told, from the environment and ``.env`` (see ``.env.example``).

The inference settings (``REDIS_URL``, ``WORKERS``, ``QUEUE_SIZE``, ``JOB_TIMEOUT``,
``LOG_LEVEL``) come from :class:`serving.settings.WorkerSettings`, which ``facemask-worker``
reads too; this class adds what only the bot needs.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from serving.settings import WorkerSettings

#: Telegram lets bots download files up to this size (getFile's limit)
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
#: the persistence file's name inside ``STATE_DIR``
STATE_FILE_NAME = "facemask-bot.pickle"
#: what TELEGRAM_PROXY may be (httpx's; socks5h resolves names at the proxy)
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


class MissingTokenError(RuntimeError):
    """Raised instead of a validation traceback: the one line a person needs."""


class Settings(WorkerSettings):
    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    # a proxy for every request to Telegram (the Bot API and file downloads): http://host:3128,
    # socks5://user:password@host:1080; unset, httpx honours HTTPS_PROXY. Never logged.
    telegram_proxy: SecretStr | None = None
    # seconds to keep trying at start while Telegram cannot be reached; unset: try forever
    startup_max_wait: float | None = Field(None, ge=0)

    # limits
    max_file_size: int = Field(TELEGRAM_DOWNLOAD_LIMIT, gt=0, le=TELEGRAM_DOWNLOAD_LIMIT)
    throttle_jobs: int = Field(10, ge=1)  # masked photos per user ...
    throttle_seconds: float = Field(60.0, gt=0)  # ... within this window
    rate_limit: bool = True  # respect Telegram's outbound flood limits
    # messages into one group per window: Telegram allows about 20 a minute; more wait in line
    group_messages: int = Field(20, ge=1)
    group_window: float = Field(60.0, gt=0)
    # a video's progress message ("Masking... 40%") is edited at most this often
    progress_seconds: float = Field(2.0, gt=0)

    # webhook mode (polling when WEBHOOK_URL is unset): Telegram posts updates to WEBHOOK_URL,
    # the bot listens on WEBHOOK_LISTEN:WEBHOOK_PORT at that URL's path
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None

    # state that survives a restart (which photo each keyboard belongs to, the mode), kept
    # out of the working directory so that it is never committed with the code
    state_dir: Path = Path("state")
    # chats and users nobody has heard from for this many days are forgotten (their keyboards
    # then answer "send it again")
    forget_after_days: float = Field(90.0, gt=0)
    # touched every few seconds while the event loop runs; the Docker health check reads it
    heartbeat_file: Path | None = None
    poll_timeout: float = Field(10.0, ge=0)  # getUpdates long-poll seconds
    # inline mode: a private channel (or group) the bot posts to, to get file ids for each
    # user's profile photo in every mask (bot.inline); unset: inline shows recent photos only
    inline_cache_chat_id: int | None = None

    @field_validator("inline_cache_chat_id", "telegram_proxy", "startup_max_wait", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # "INLINE_CACHE_CHAT_ID=" as .env.example has it

    @field_validator("telegram_proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # the message never repeats the value: it may hold a password
        try:
            parts = urlsplit(value.get_secret_value())
            parts.port  # noqa: B018 (a port that is not a number raises here)
        except ValueError:
            raise ValueError("not a URL like http://host:3128 or socks5://host:1080") from None
        if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
            raise ValueError(
                f"a URL like http://host:3128 or socks5://host:1080 ({', '.join(PROXY_SCHEMES)})"
            )
        return value

    @property
    def state_file(self) -> Path:
        """Where python-telegram-bot's persistence keeps chat and user state."""
        return self.state_dir / STATE_FILE_NAME

    @property
    def status_file(self) -> Path | None:
        """Beside the heartbeat: what the bot is doing (e.g. waiting for Telegram), one line."""
        if self.heartbeat_file is None:
            return None
        return self.heartbeat_file.with_name(self.heartbeat_file.name + ".status")

    def token(self) -> str:
        """The bot token, or :class:`MissingTokenError` saying how to get one."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise MissingTokenError(
                "TELEGRAM_BOT_TOKEN is not set: talk to @BotFather on Telegram "
                "(https://t.me/BotFather), send /newbot, and put the token it gives you "
                "in .env or the environment."
            )
        return self.telegram_bot_token.get_secret_value()

    def secrets(self) -> list[str]:
        """Values the logs must never show: the token, the webhook secret, the proxy's URL and
        password, Redis's password."""
        given = (self.telegram_bot_token, self.webhook_secret, self.telegram_proxy)
        own = [s.get_secret_value() for s in given if s]
        if self.telegram_proxy is not None:
            password = urlsplit(self.telegram_proxy.get_secret_value()).password
            own += [password] if password else []
        return [*own, *super().secrets()]
