"""The inference side's settings, from the environment and ``.env`` (see ``.env.example``).

``facemask-worker`` reads :class:`WorkerSettings`; the bot's settings class extends it, so both
read ``REDIS_URL``, ``WORKERS`` and the rest the same way, with the same defaults.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # unset: the bot starts its own worker processes; set: jobs go through this Redis to
    # facemask-worker processes on any machine
    redis_url: str | None = None
    workers: int = Field(2, ge=1)  # model processes, one per core
    queue_size: int = Field(32, ge=1)  # photos waiting before new ones are refused as busy
    job_timeout: float = Field(30.0, gt=0)  # seconds one photo may take; then its process goes
    # processes that mask only videos, next to WORKERS, so photos never wait behind a video
    # (0: videos share the WORKERS processes)
    video_workers: int = Field(1, ge=0)
    # seconds a 60 s video may take (a shorter one gets its share, at least JOB_TIMEOUT)
    video_job_timeout: float = Field(180.0, gt=0)
    log_level: str = "INFO"
    # touched every few seconds while all is well (for the bot: its event loop runs and its
    # queue reaches the workers; for facemask-worker: it reaches Redis); the containers'
    # health checks (`--healthcheck`) read its age
    heartbeat_file: Path | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    def secrets(self) -> list[str]:
        """Values the logs must never show: here, Redis's password."""
        password = urlsplit(self.redis_url).password if self.redis_url else None
        return [password] if password else []


def describe_problems(error: ValidationError) -> str:
    """A settings error as one line naming the variables, e.g. ``WORKERS: ...``."""
    return "; ".join(
        f"{'.'.join(map(str, problem['loc'])).upper()}: {problem['msg']}"
        for problem in error.errors()
    )
