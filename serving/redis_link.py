"""What the bot's Redis clients and ``facemask-worker`` share about talking to Redis.

- :data:`REDIS_TROUBLE`: what Redis being away looks like to a client;
- :class:`Outage`: one log line when Redis goes away, one when it answers again;
- :func:`wait_for_redis`: a start that waits for Redis with backoff, one line per attempt;
- :func:`arq_settings` and :func:`create_arq_pool`: arq's connection from ``REDIS_URL``
  (``redis://:PASSWORD@host:port/0``), speaking :mod:`serving.wire`, never pickle;
- :func:`describe`: an error in one line, a refused password said as such; no URL, so no
  password, ever reaches a log line from here (serving.logs redacts it anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from serving import wire

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: what Redis being away looks like to a client: a refused or reset connection, a timeout (a
#: refused password is a ConnectionError to redis-py too: :func:`describe` says which it was)
REDIS_TROUBLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
#: a start waits this long before its second try, doubling up to the last
START_BACKOFF_FIRST, START_BACKOFF_MAX = 0.5, 30.0


def is_outage(error: BaseException) -> bool:
    """True if ``error`` is Redis being away, or was caused by it (redis-py reports a connection
    lost during WATCH as a WatchError raised while handling the ConnectionError)."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, REDIS_TROUBLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def password_refused(error: BaseException) -> bool:
    """True if Redis turned the client away for its password (wrong, missing or unneeded)."""
    return isinstance(error, AuthenticationError) or "NOAUTH" in str(error)


def describe(error: BaseException) -> str:
    """``error`` in one line for a log; a refused password is said plainly."""
    if password_refused(error):
        return f"Redis refused the password in REDIS_URL ({error})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def without_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


class Outage:
    """Logs an outage once: when Redis goes away (:meth:`lost`) and when it answers again
    (:meth:`back`), however many commands fail in between. ``while_away`` and ``once_back``
    say what the caller does meanwhile, e.g. "keeping chat state in memory"."""

    def __init__(self, log: logging.Logger, while_away: str, once_back: str) -> None:
        self.log = log
        self.while_away = while_away
        self.once_back = once_back
        self.since: float | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def lost(self, error: BaseException | None) -> None:
        if self.since is None:
            self.since = time.monotonic()
            why = describe(error) if error is not None else "stalled"
            self.log.warning("lost Redis (%s); %s", why, self.while_away)

    def back(self, at: float | None = None) -> None:
        """Redis answers again (``at``: when it first did, by time.monotonic(); default now)."""
        if self.since is not None:
            seconds = max(0.0, (time.monotonic() if at is None else at) - self.since)
            self.log.warning("Redis is back after %.1f s; %s", seconds, self.once_back)
            self.since = None


async def wait_for_redis(
    attempt: Callable[[], Awaitable[T]], what: str, log: logging.Logger = logger
) -> T:
    """``attempt()``'s value once Redis answers it; while it does not, one log line per failed
    attempt (the reason, and when the next one is), waiting longer each time up to
    :data:`START_BACKOFF_MAX`. ``what`` names the waiter, e.g. "the bot's job queue"."""
    delay = START_BACKOFF_FIRST
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except REDIS_TROUBLE as error:
            next_try = datetime.now() + timedelta(seconds=delay)
            log.warning(
                "%s waits for Redis (try %d: %s); next try at %s",
                what, tries, describe(error), next_try.strftime("%H:%M:%S"),
            )  # fmt: skip
        await asyncio.sleep(delay)
        delay = min(START_BACKOFF_MAX, delay * 2)


def arq_settings(redis_url: str, conn_timeout: float = 2.0) -> Any:
    """arq's RedisSettings for ``redis_url`` (its password included), without arq's own
    retries: our callers retry with backoff and say so in one line."""
    from arq.connections import RedisSettings

    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_retries = 0
    settings.conn_timeout = int(conn_timeout) or 1
    return settings


async def create_arq_pool(redis_url: str) -> Any:
    """arq's client (an ``ArqRedis``) for ``redis_url``, writing and reading the wire format."""
    from arq import create_pool

    return await create_pool(
        arq_settings(redis_url),
        job_serializer=wire.serialize,
        job_deserializer=wire.deserialize,
    )
