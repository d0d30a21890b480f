"""Starting the bot: settings, one-line errors, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.connection import (
    AnotherInstance,
    TelegramLink,
    TokenRefused,
    Unreachable,
    WebhookRefused,
    telegram_requests,
    wait_for_telegram,
)
from bot.settings import Settings
from serving.settings import describe_problems
from tests.support.bot_processes import PYTHON, clean_env, free_port
from tests.support.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]


def run_bot(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "bot"],
        env=clean_env(**settings),
        cwd=tmp_path,  # no .env here
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_token_is_one_line_saying_how_to_get_one(tmp_path: Path) -> None:
    done = run_bot(tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "TELEGRAM_BOT_TOKEN" in line and "@BotFather" in line


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    done = run_bot(tmp_path, TELEGRAM_BOT_TOKEN="1:x", WORKERS="none")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "WORKERS" in line


async def test_token_telegram_refuses_is_one_line(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram:  # it answers 401 to any other token, as Telegram does
        env = {**telegram.env(), "TELEGRAM_BOT_TOKEN": "42:not-the-right-one"}
        done = await asyncio.to_thread(run_bot, tmp_path, **env)
    assert done.returncode == TokenRefused.exit_status == 3
    assert done.stderr.strip().splitlines()[-1] == (
        "facemask-bot: the token was refused: check TELEGRAM_BOT_TOKEN with @BotFather"
    )
    assert "Traceback" not in done.stderr and "not-the-right-one" not in done.stderr


def test_telegram_unreachable_for_startup_max_wait_is_one_line_per_try(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused
    started = time.monotonic()
    done = run_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN="1:x",
        TELEGRAM_BASE_URL=f"{closed}/bot",
        TELEGRAM_BASE_FILE_URL=f"{closed}/file/bot",
        STARTUP_MAX_WAIT="4",
        HEARTBEAT_FILE=str(tmp_path / "alive"),
    )
    assert 4 <= time.monotonic() - started < 30
    assert done.returncode == Unreachable.exit_status == 6
    lines = done.stderr.strip().splitlines()
    # tries at 0, 1 and 3 s, the last when STARTUP_MAX_WAIT is up at 4 s
    assert len(lines) == 4, done.stderr
    for number, line in enumerate(lines[:3], 1):
        assert f"Telegram cannot be reached yet (try {number}): httpx.ConnectError" in line
        assert re.search(r"next try in \d s, at \d\d:\d\d:\d\d$", line), line
    assert lines[-1].startswith("facemask-bot: Telegram could not be reached within STARTUP_MAX")
    assert (tmp_path / "alive.status").read_text().startswith("stopped: Telegram could not")


def test_help_lists_the_exit_statuses() -> None:
    done = subprocess.run(
        [PYTHON, "-m", "bot", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for status in (TokenRefused, AnotherInstance, WebhookRefused, Unreachable):
        assert f"  {status.exit_status}  " in done.stdout
    assert "another copy of the bot polls" in done.stdout


def test_telegram_proxy_is_checked_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_PROXY", raising=False)
    monkeypatch.delenv("STARTUP_MAX_WAIT", raising=False)
    settings = Settings(
        telegram_proxy="socks5://me:hunter22@proxy.example:1080", startup_max_wait=""
    )
    assert settings.startup_max_wait is None  # "STARTUP_MAX_WAIT=" as .env.example has it
    assert "hunter22" not in repr(settings)
    assert {"hunter22", "socks5://me:hunter22@proxy.example:1080"} <= set(settings.secrets())
    calls, updates = telegram_requests(settings)  # httpx[socks] is installed: SOCKS5 works
    assert calls is not updates
    assert Settings(telegram_proxy="").telegram_proxy is None
    with pytest.raises(ValidationError) as refused:
        Settings(telegram_proxy="ftp://me:hunter22@proxy.example")
    assert "TELEGRAM_PROXY" in describe_problems(refused.value)
    assert "hunter22" not in describe_problems(refused.value)


def test_settings_read_dotenv_and_keep_the_token_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "REDIS_URL", "WORKERS", "STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=77:secret-value\nWORKERS=3\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.token() == "77:secret-value" and settings.workers == 3
    assert "secret-value" not in repr(settings) and "secret-value" not in str(settings)
    assert settings.redis_url is None  # embedded workers by default
    assert settings.max_file_size == 20 * 1024 * 1024
    # state lives in its own folder, never next to the code
    assert settings.state_file == Path("state") / "facemask-bot.pickle"
    assert "77:secret-value" in settings.secrets()  # what the logs redact


def test_state_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    done = run_bot(tmp_path, TELEGRAM_BOT_TOKEN="1:x", STATE_DIR=str(tmp_path / "taken" / "state"))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "STATE_DIR" in line


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    listed = {line.split("=")[0]: n for n, line in enumerate(lines) if "=" in line[:40]}
    for name in Settings.model_fields:
        variable = name.upper()
        assert variable in listed, f"{variable} is missing from .env.example"
        above = listed[variable] - 1  # settings of one kind may share the comment above them
        while lines[above].split("=")[0] in listed:
            above -= 1
        assert lines[above].startswith("#"), f"{variable} has no comment in .env.example"


async def test_flood_wait_at_start_is_waited_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeTelegram() as telegram:
        telegram.fail_next["getme"] = (429, "Too Many Requests: retry after 1", 1)  # type: ignore[assignment]
        settings = Settings(
            telegram_bot_token=telegram.token,
            telegram_base_url=telegram.base_url,
            telegram_base_file_url=telegram.base_file_url,
            heartbeat_file=tmp_path / "alive",
        )
        with caplog.at_level(logging.INFO, logger="bot.connection"):
            await wait_for_telegram(settings, TelegramLink(settings.status_file))
    assert len(telegram.calls("getMe")) == 2
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.connection"]
    assert "(try 1)" in line and "retry in 1 seconds" in line.lower() and "next try in 1 s" in line
    assert (tmp_path / "alive.status").read_text() == "starting: Telegram answered\n"
