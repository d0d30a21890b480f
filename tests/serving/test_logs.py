"""One logging set-up: the same format and the same redaction in every process."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from serving.jobs import MaskJob
from serving.logs import RedactingFormatter, configure_logging
from serving.pool import WorkerPool
from serving.settings import WorkerSettings
from tests.support import worker_stubs


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_tracebacks_are_redacted_too() -> None:
    formatter = RedactingFormatter(secrets=["77:secret-value"])
    try:
        raise RuntimeError("POST https://api.telegram.org/bot77:secret-value/getMe failed")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, "", 0, "url %s", ("bot77:secret-value",), None
        )
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "secret-value" not in text and "<secret>" in text and "Traceback" in text


def test_redis_password_is_a_secret() -> None:
    assert WorkerSettings(redis_url="redis://:sesame-123@cache:6379/0").secrets() == ["sesame-123"]
    assert WorkerSettings(redis_url="redis://cache:6379/0").secrets() == []


async def test_worker_processes_redact_what_their_parent_redacts(
    root_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", ["sesame-123"])
    pool = WorkerPool(1, setup=worker_stubs.setup_leaky)
    await pool.start()
    try:
        await pool.run(MaskJob(b"ok", 1))
    finally:
        await pool.close()
    err = capfd.readouterr().err
    # the child logged its failure with a traceback, in the one format, without the password
    assert "ERROR serving.pool: worker" in err and "could not load the model" in err
    assert "Traceback" in err and "redis://:<secret>@cache" in err
    assert "sesame-123" not in err
