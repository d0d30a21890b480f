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


TOKEN = "555444333:AAHsecretPartOfTheToken_xyz-0123456789"


def redacted(secrets: list[str], message: str) -> str:
    record = logging.LogRecord("x", logging.DEBUG, "", 0, message, None, None)
    return RedactingFormatter(secrets=secrets).format(record)


@pytest.mark.parametrize(
    "line",
    [
        f"GET https://api.telegram.org/file/bot{TOKEN}/photos/file_1.jpg",
        # python-telegram-bot quotes the download URL's path: the colon arrives as %3A
        "GET https://api.telegram.org/file/bot555444333%3AAAHsecretPartOfTheToken_xyz-0123456789/x",
        "GET https://api.telegram.org/file/bot555444333%3aAAHsecretPartOfTheToken_xyz-0123456789/x",
        # every character quoted, as quote(..., safe="") and some clients write it
        "".join(f"%{b:02x}" for b in TOKEN.encode()),
        # the secret half on its own (an error naming only it)
        "invalid key AAHsecretPartOfTheToken_xyz-0123456789 refused",
    ],
)
def test_the_token_is_redacted_in_every_encoding(line: str) -> None:
    text = redacted([TOKEN], line)
    assert "AAHsecretPartOfTheToken" not in text and "<secret>" in text, text
    assert "%41%41%48" not in text.lower() and "%3a" not in text.lower(), text


def test_passwords_are_redacted_quoted_unquoted_and_mixed() -> None:
    # as redis-py and urlsplit read REDIS_URL: the password percent-encoded as in the URL
    secrets = WorkerSettings(redis_url="redis://:p%40ss%2Fw0rd-9@cache:6379/0").secrets()
    lines = ("auth p@ss/w0rd-9", "redis://:p%40ss%2Fw0rd-9@x", "p%40ss/w0rd-9", "p@ss%2fw0rd-9")
    for line in lines:
        text = redacted(secrets, line)
        assert "w0rd" not in text and "<secret>" in text, text


def test_proxy_credentials_are_redacted_in_urls_and_their_authorization_header() -> None:
    import base64

    proxy = "socks5://bot:pr%3Axy-pass@127.0.0.1:1080"
    header = base64.b64encode(b"bot:pr:xy-pass").decode()
    for line in (
        f"proxy {proxy} refused",
        "proxy socks5://bot:pr:xy-pass@127.0.0.1:1080 refused",
        "socks5%3A%2F%2Fbot%3Apr%253Axy-pass%40127.0.0.1%3A1080",
        f"Proxy-Authorization: Basic {header}",
    ):
        text = redacted([proxy, "pr%3Axy-pass"], line)
        assert "xy-pass" not in text and header not in text and "<secret>" in text, text
