"""Starting the bot: settings, one-line errors, secrets kept out of logs, the import rules."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from bot_processes import PYTHON, clean_env

from bot.__main__ import RedactingFormatter
from bot.settings import Settings
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


async def test_token_telegram_rejects_is_one_line(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram:
        env = {**telegram.env(), "TELEGRAM_BOT_TOKEN": "42:not-the-right-one"}
        done = await asyncio.to_thread(run_bot, tmp_path, **env)
    assert done.returncode == 2
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr and "not-the-right-one" not in done.stderr


def test_settings_read_dotenv_and_keep_the_token_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "REDIS_URL", "WORKERS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=77:secret-value\nWORKERS=3\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.token() == "77:secret-value" and settings.workers == 3
    assert "secret-value" not in repr(settings) and "secret-value" not in str(settings)
    assert settings.redis_url is None  # embedded workers by default
    assert settings.max_file_size == 20 * 1024 * 1024


def test_log_lines_never_show_the_token() -> None:
    formatter = RedactingFormatter("%(message)s", ["77:secret-value"])
    try:
        raise RuntimeError("POST https://api.telegram.org/bot77:secret-value/getMe failed")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, "", 0, "url %s", ("bot77:secret-value",), None
        )
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "secret-value" not in text and "<secret>" in text and "Traceback" in text


def test_bot_never_imports_torch_and_core_never_imports_telegram() -> None:
    check = (
        "import sys, bot.app, bot.handlers, bot.queue, bot.__main__\n"
        "assert 'torch' not in sys.modules, 'bot imported torch'\n"
        "import serving.worker\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([PYTHON, "-c", check], check=True, cwd=ROOT, timeout=60)
    check = "import sys, serving.worker, core.api\nassert 'telegram' not in sys.modules\n"
    subprocess.run([PYTHON, "-c", check], check=True, cwd=ROOT, timeout=60)
