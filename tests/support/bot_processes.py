"""The bot, the inference worker and Redis as real processes that tests start and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bot.settings import Settings
from tests.support.fake_telegram import FakeTelegram

PYTHON = sys.executable
START_TIMEOUT = 180.0  # a cold start imports torch and loads the model in each worker


#: every variable the bot or facemask-worker reads (pydantic-settings matches any case)
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def free_port() -> int:
    """A TCP port free on this machine now (for a webhook or a redis-server of our own)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**settings: str) -> dict[str, str]:
    """The environment for a child process: ours without any bot settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **settings})  # settings win
    return env


class Process:
    """A child process with its output in a log file that tests can read."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.args, self.env, self.workdir = name, args, env, workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        return self.proc.returncode

    async def wait_exit(self, timeout: float) -> int:
        """The exit status of a process that ends by itself (TimeoutError if it does not)."""
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} is still running:\n{self.log()[-3000:]}") from None

    def children(self) -> list[int]:
        """Process ids of this process's children (its inference workers)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def model_processes(self) -> list[int]:
        """The children that run jobs (not multiprocessing's resource tracker)."""
        return [pid for pid in self.children() if b"spawn_main" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class BotProcess(Process):
    """The real bot (``python -m bot``) pointed at a fake Telegram server."""

    def __init__(self, telegram: FakeTelegram, workdir: Path, **settings: str) -> None:
        env = clean_env(**telegram.env(), **settings)
        super().__init__("bot", [PYTHON, "-m", "bot"], env, workdir)
        self.telegram = telegram

    def start_process(self) -> None:
        """Start without waiting (webhook mode never polls)."""
        super().start()

    async def start(self) -> None:  # type: ignore[override]
        """Start and wait until the bot polls for updates (its workers are loaded by then)."""
        polls = len(self.telegram.calls("getUpdates"))
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.telegram.calls("getUpdates")) <= polls:
            if not self.alive():
                raise RuntimeError(f"the bot exited while starting:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not start:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.1)

    async def restart(self) -> None:
        assert await self.stop() == 0, self.log()[-3000:]
        await self.start()

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """``python -m bot --healthcheck`` with this bot's settings, as Docker would run it."""
        return subprocess.run(
            [PYTHON, "-m", "bot", "--healthcheck"],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def assert_clean_log(self) -> None:
        """What a person reading the log must never see: tracebacks, the token."""
        log = self.log()
        assert "Traceback" not in log, log[-5000:]
        assert self.telegram.token not in log
        assert self.telegram.token.split(":")[1] not in log
