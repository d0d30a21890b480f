"""Starting the bot: settings, one-line errors, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.support.bot_processes import PYTHON, clean_env
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
