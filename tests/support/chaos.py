"""``./run chaos``: what production does to the bot, done on purpose, with the targets printed.

Real parts throughout: a redis-server of our own (no snapshots), ``facemask-worker`` processes
with the real model, the real bot (``python -m bot``) over the fake Telegram server, and
simulated users tapping masks. The scenarios, each bounded in time:

- Redis restarted mid-stream: every tap answered, workers back within 10 s, no traceback
- a worker killed (SIGKILL, its model process too) mid-job: no tap lost
- the bot killed (SIGKILL) and started again: every keyboard made before works, no tap lost
- the queue filled: taps beyond it are answered "busy", nothing lost
- the bot SIGKILLed mid-stream and under a backlog of 100 taps a second, in Redis and embedded
  mode: every accepted tap answered once (bot.journal)
- Redis and the bot killed together: every old keyboard still masks (the state is on disk)
- a video's worker process SIGKILLed while it writes the MP4: 0 bytes left at rest

The tests in ``tests/chaos`` run the same scenarios with assertions; this command prints the
numbers. A test tool, not an installed command: ``./run chaos`` or
``python -m tests.support.chaos`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from telegram import Message

from tests.support.bot_processes import PYTHON, BotProcess, Process, clean_env, free_port
from tests.support.fake_telegram import FakeTelegram, has_keyboard

ROOT = Path(__file__).resolve().parents[2]
#: a tap must be answered within this (the bot's own limit is JOB_TIMEOUT x 2 = 60 s)
ANSWER_WITHIN = 70.0
#: a backlog of hundreds of taps is worked through by a few workers: answered within this
BACKLOG_WITHIN = 180.0
PHOTO_SIDE = 256  # small photos keep the model's share of each scenario short


def small_photo(side: int = PHOTO_SIDE) -> bytes:
    """The astronaut from scikit-image, as a small JPEG."""
    from PIL import Image
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((side, side)).save(out, format="JPEG")
    return out.getvalue()


# ----------------------------------------------------------------------------- processes


class RedisServer:
    """A redis-server of our own on a fixed port, so it can be killed and started again."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.server, self.workdir, self.port = server, workdir, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.server, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """Gone at once, with everything in it (no snapshot to come back from)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)

    def client(self):  # noqa: ANN201 (redis.Redis, imported lazily)
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)


def worker_command() -> list[str]:
    script = shutil.which("facemask-worker", path=str(Path(sys.executable).parent))
    return [script] if script else [PYTHON, "-m", "serving.worker"]


class WorkerProcess(Process):
    """``facemask-worker`` in a session of its own, so it can be killed with its model."""

    def __init__(self, name: str, redis_url: str, workdir: Path, **settings: str) -> None:
        defaults = {"WORKERS": "1", "HEARTBEAT_FILE": str(workdir / f"{name}.alive")}
        env = clean_env(REDIS_URL=redis_url, PYTHONPATH=str(ROOT), **{**defaults, **settings})
        super().__init__(name, worker_command(), env, workdir)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, env=self.env, cwd=self.workdir, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    async def ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while "inference workers ready" not in self.log():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.1)

    def kill_all(self) -> None:
        """SIGKILL the worker and its model process at once, as a dying machine would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def model_processes(self) -> list[int]:
        return [pid for pid in self.children() if b"spawn_main" in _cmdline(pid)]

    def back_after(self, since: float) -> float | None:
        """Seconds from ``since`` (time.time()) to this worker's "Redis is back" log line."""
        for line in self.log().splitlines():
            if "Redis is back" in line:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if stamp >= since - 1:
                    return max(0.0, stamp - since)
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def tracebacks(*processes: Process) -> list[str]:
    """The names of the processes whose log holds a traceback."""
    return [p.name for p in processes if "Traceback" in p.log()]


@dataclass
class Stack:
    """Redis, workers and the bot in Redis mode, talking to one fake Telegram server; or, with
    ``redis`` None, the bot in embedded mode (its workers built in). Every process writes its
    temporary files under ``tmp`` (TMPDIR), where what is left at rest can be measured."""

    workdir: Path
    telegram: FakeTelegram
    redis: RedisServer | None
    workers: list[WorkerProcess] = field(default_factory=list)
    bot: BotProcess | None = None

    @property
    def tmp(self) -> Path:
        folder = self.workdir / "tmp"
        folder.mkdir(exist_ok=True)
        return folder

    async def add_worker(self, **settings: str) -> WorkerProcess:
        assert self.redis is not None
        worker = WorkerProcess(
            f"worker{len(self.workers) + 1}", self.redis.url, self.workdir,
            TMPDIR=str(self.tmp), **settings,
        )  # fmt: skip
        worker.start()
        self.workers.append(worker)
        await worker.ready()
        return worker

    async def start_bot(self, **settings: str) -> BotProcess:
        mode = {"REDIS_URL": self.redis.url} if self.redis else {"WORKERS": "2"}
        self.bot = BotProcess(
            self.telegram,
            self.workdir,
            **{**mode, **settings},
            TMPDIR=str(self.tmp),
            POLL_TIMEOUT="1",
            HEARTBEAT_FILE=str(self.workdir / "bot.alive"),
            THROTTLE_JOBS="10000",
            PYTHONPATH=str(ROOT),
        )
        await self.bot.start()
        return self.bot

    def processes(self) -> list[Process]:
        return [*self.workers, *([self.bot] if self.bot else [])]

    async def close(self) -> None:
        for process in self.processes():
            await process.stop(timeout=20)
        if self.redis is not None:
            await self.redis.kill()


@contextlib.asynccontextmanager
async def stack(
    workdir: Path, workers: int = 2, redis_mode: bool = True, **bot_settings: str
) -> AsyncIterator[Stack]:
    """Redis, ``workers`` facemask-workers and the bot; ``redis_mode`` False: the bot alone,
    with its workers built in."""
    async with FakeTelegram(bot_username="facemask_chaos_bot") as telegram:
        redis = RedisServer(workdir) if redis_mode else None
        if redis is not None:
            await redis.start()
        else:
            workers = 0
        env = Stack(workdir, telegram, redis)
        try:
            await asyncio.gather(*(env.add_worker() for _ in range(workers)))
            await env.start_bot(**bot_settings)
            yield env
        finally:
            await env.close()


# ----------------------------------------------------------------------------- users


@dataclass
class Taps:
    """What the users saw: one entry per tap."""

    photos: int = 0
    errors: list[str] = field(default_factory=list)
    unanswered: int = 0
    seconds: list[float] = field(default_factory=list)
    duplicates: int = 0

    @property
    def taps(self) -> int:
        return self.photos + len(self.errors) + self.unanswered


async def keyboard_for(telegram: FakeTelegram, name: str, picture: bytes) -> tuple:
    """A new user, their chat, their photo and the bot's keyboard under it."""
    user = telegram.user(name)
    chat = telegram.private_chat(user)
    photo = await telegram.send_photo(chat, user, picture)
    keyboard = await telegram.wait_reply(photo, has_keyboard, timeout=30)
    return user, chat, photo, keyboard


async def tap(
    telegram: FakeTelegram, user, photo: Message, keyboard: Message, mask: int, taps: Taps
) -> None:
    """Tap mask ``mask`` and wait for the answer under the photo (a photo or a sentence)."""
    before = len(telegram.replies_to(photo))
    started = time.monotonic()
    await telegram.press(user, keyboard, f"{mask} ")
    try:  # the answer: any new reply to the photo but its keyboard (a result may have buttons)
        reply = await telegram.wait_reply(
            photo,
            lambda m: m.message_id != keyboard.message_id,
            timeout=ANSWER_WITHIN,
            after=before,
        )
    except TimeoutError:
        taps.unanswered += 1
        return
    taps.seconds.append(time.monotonic() - started)
    if reply.photo:
        taps.photos += 1
    else:
        taps.errors.append(reply.text or "?")


async def tapping_user(
    telegram: FakeTelegram, name: str, picture: bytes, count: int, think: float, taps: Taps
) -> None:
    user, _, photo, keyboard = await keyboard_for(telegram, name, picture)
    for n in range(count):
        await tap(telegram, user, photo, keyboard, n % 7 + 1, taps)
        await asyncio.sleep(think)
    answers = [m for m in telegram.replies_to(photo) if m.message_id != keyboard.message_id]
    taps.duplicates += max(0, len(answers) - count)


# ----------------------------------------------------------------------------- scenarios


@dataclass
class Result:
    name: str
    taps: Taps
    tracebacks: list[str]
    notes: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        t = self.taps
        worst = f", slowest answer {max(t.seconds):.1f} s" if t.seconds else ""
        extra = "".join(f", {k} {v:g}" for k, v in self.notes.items())
        return (
            f"{self.name}: {t.taps} taps, {t.photos} photos, {len(t.errors)} error texts, "
            f"{t.unanswered} without an answer, {t.duplicates} duplicated{worst}{extra}, "
            f"tracebacks: {len(self.tracebacks)}"
        )


async def redis_restart(env: Stack, users: int = 4, taps_each: int = 6) -> Result:
    """Users tap while Redis is killed and started again (empty) on the same port."""
    picture, taps = small_photo(), Taps()
    streams = [
        asyncio.create_task(tapping_user(env.telegram, f"r{i}", picture, taps_each, 0.2, taps))
        for i in range(users)
    ]
    await asyncio.sleep(2.0)
    await env.redis.kill()
    await asyncio.sleep(1.0)
    await env.redis.start()
    back_at = time.time()
    await asyncio.gather(*streams)
    # the workers' own word for when they took jobs again (give them their beat to say it)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(w.back_after(back_at) is None for w in env.workers):
        await asyncio.sleep(0.5)
    backs = [w.back_after(back_at) for w in env.workers]
    notes = {
        "workers alive": sum(w.alive() for w in env.workers),
        "workers back within s": max((b for b in backs if b is not None), default=-1.0),
        "workers not back": sum(b is None for b in backs),
    }
    return Result("Redis restart mid-stream", taps, tracebacks(*env.processes()), notes)


async def worker_kill(env: Stack, taps_count: int = 4) -> Result:
    """A worker dies (SIGKILL, with its model) holding a job; another worker must answer it."""
    picture, taps = small_photo(), Taps()
    victim = env.workers[0]
    [model] = victim.model_processes()
    os.kill(model, signal.SIGSTOP)  # frozen: whatever it takes, it holds until it dies
    chats = [await keyboard_for(env.telegram, f"k{i}", picture) for i in range(taps_count)]
    tapping = [
        asyncio.create_task(tap(env.telegram, user, photo, keyboard, i % 7 + 1, taps))
        for i, (user, _, photo, keyboard) in enumerate(chats)
    ]
    client = env.redis.client()
    try:  # wait until a job is stuck in the frozen worker: claimed for over a second
        deadline, stuck_since = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            claimed = client.keys("arq:in-progress:*")
            stuck_since = (stuck_since or time.monotonic()) if claimed else None
            if stuck_since and time.monotonic() - stuck_since > 1.5:
                break
            await asyncio.sleep(0.1)
    finally:
        client.close()
    victim.kill_all()
    killed_at = time.monotonic()
    await asyncio.gather(*tapping)
    env.workers.remove(victim)  # dead on purpose: its log is not checked
    notes = {
        "answered within s of the kill": round(time.monotonic() - killed_at, 1),
        "a job was stuck in the frozen worker": stuck_since is not None,
    }
    return Result("Worker kill mid-job", taps, tracebacks(*env.processes()), notes)


async def bot_kill(env: Stack, chats: int = 4) -> Result:
    """Keyboards are made (one toggled), the bot is SIGKILLed at once and started again."""
    assert env.bot is not None and env.bot.proc is not None
    telegram, picture, taps = env.telegram, small_photo(), Taps()
    made = [await keyboard_for(telegram, f"b{i}", picture) for i in range(chats)]
    first_user, first_chat, _, first_keyboard = made[0]

    def crop_label() -> str:
        return _crop_label(telegram.message(first_chat.id, first_keyboard.message_id))

    await telegram.press(first_user, first_keyboard, "✂️ Crop")
    await telegram.wait_for(lambda: "off" in crop_label())
    env.bot.proc.kill()  # SIGKILL right after the last keyboard: no shutdown, no last save
    await asyncio.to_thread(env.bot.proc.wait, 10)
    # a tap while the bot is dead waits at Telegram and is answered after the restart
    user, _, photo, keyboard = made[1]
    pending = asyncio.create_task(tap(telegram, user, photo, keyboard, 2, taps))
    await asyncio.sleep(0.5)
    await env.bot.start()
    await pending
    for i, (user, _, photo, keyboard) in enumerate(made):
        await tap(telegram, user, photo, keyboard, i % 7 + 1, taps)
    # the toggled keyboard still knows crop is off: toggling it turns crop on again
    await telegram.press(first_user, first_keyboard, "🖼 Crop")
    try:
        await telegram.wait_for(lambda: "on" in crop_label(), timeout=30)
        remembered = 1.0
    except TimeoutError:
        remembered = 0.0
    notes = {"toggle remembered": remembered}
    return Result("Bot SIGKILL and restart", taps, tracebacks(*env.processes()), notes)


def _crop_label(message: Message) -> str:
    markup = message.reply_markup
    buttons = [b for row in (markup.inline_keyboard if markup else ()) for b in row]
    return next(b.text for b in buttons if (b.callback_data or "").startswith("crop:"))


async def full_queue(env: Stack, taps_count: int = 6) -> Result:
    """With the workers frozen, taps beyond QUEUE_SIZE are answered busy; the rest are masked."""
    picture, taps = small_photo(), Taps()
    frozen = [pid for worker in env.workers for pid in worker.model_processes()]
    chats = [await keyboard_for(env.telegram, f"q{i}", picture) for i in range(taps_count)]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        tapping = [
            asyncio.create_task(tap(env.telegram, user, photo, keyboard, 1, taps))
            for user, _, photo, keyboard in chats
        ]
        # busy answers come at once; the others wait for a worker
        await env.telegram.wait_for(lambda: taps.errors, timeout=30, what="a busy answer")
        await asyncio.sleep(1.0)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    await asyncio.gather(*tapping)
    return Result("Full queue", taps, tracebacks(*env.processes()))


# ----------------------------------------------------------------------------- durability


async def restart_killed_bot(env: Stack) -> None:
    """SIGKILL the bot (its embedded workers die with their pipes) and start it again."""
    assert env.bot is not None and env.bot.proc is not None
    env.bot.proc.kill()
    await asyncio.to_thread(env.bot.proc.wait, 10)
    await env.bot.start()


async def bot_kill_mid_stream(env: Stack, users: int = 4, taps_each: int = 6) -> Result:
    """Users tap without pause; the bot is SIGKILLed while taps are in flight, and restarted."""
    picture, taps = small_photo(), Taps()
    streams = [
        asyncio.create_task(tapping_user(env.telegram, f"m{i}", picture, taps_each, 0.1, taps))
        for i in range(users)
    ]
    # kill once a few taps are answered and more are in the workers
    await env.telegram.wait_for(lambda: taps.photos >= users, timeout=60, what="first photos")
    await restart_killed_bot(env)
    await asyncio.gather(*streams)
    mode = "Redis" if env.redis else "embedded"
    return Result(f"Bot SIGKILL mid-stream ({mode})", taps, tracebacks(*env.processes()))


async def backlog_kill(
    env: Stack, rate: float = 100.0, seconds: float = 3.0, users: int = 20
) -> Result:
    """Taps arrive at ``rate`` a second, faster than the workers mask; the bot is SIGKILLed
    halfway with a backlog fetched and not yet answered. Each tap must get one answer: its
    photo, or "busy, try again"."""
    picture, taps = small_photo(), Taps()
    chats = await asyncio.gather(
        *(keyboard_for(env.telegram, f"l{i}", picture) for i in range(users))
    )
    sent = [0] * users
    count = round(rate * seconds)
    started = time.monotonic()
    for n in range(count):
        user, _, _, keyboard = chats[n % users]
        await env.telegram.press(user, keyboard, f"{n % 7 + 1} ")
        sent[n % users] += 1
        if n == count // 2:
            env.bot.proc.kill()  # type: ignore[union-attr]
            killed = asyncio.create_task(asyncio.to_thread(env.bot.proc.wait, 10))  # type: ignore[union-attr]
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
    await killed
    await env.bot.start()  # type: ignore[union-attr]

    def answers(i: int) -> list[Message]:
        _, _, photo, keyboard = chats[i]
        return [m for m in env.telegram.replies_to(photo) if m.message_id != keyboard.message_id]

    with contextlib.suppress(TimeoutError):  # a backlog takes its time: as long as it needs
        await env.telegram.wait_for(
            lambda: all(len(answers(i)) >= sent[i] for i in range(users)), timeout=BACKLOG_WITHIN
        )
    await asyncio.sleep(2.0)  # a duplicate would come now
    for i in range(users):
        got = answers(i)
        taps.photos += sum(1 for m in got if m.photo)
        taps.errors += [m.text or "?" for m in got if not m.photo]
        taps.unanswered += max(0, sent[i] - len(got))
        taps.duplicates += max(0, len(got) - sent[i])
        taps.photos -= max(0, len(got) - sent[i])  # count each tap once
    notes = {"taps a second": round(count / seconds)}
    mode = "Redis" if env.redis else "embedded"
    return Result(f"Bot SIGKILL under a backlog ({mode})", taps, tracebacks(*env.processes()),
                  notes)  # fmt: skip


async def redis_and_bot_killed(env: Stack, chats: int = 4) -> Result:
    """Keyboards are made; Redis (no snapshots: it comes back empty) and the bot are SIGKILLed
    together and started again: every old keyboard must still mask."""
    assert env.redis is not None and env.bot is not None and env.bot.proc is not None
    picture, taps = small_photo(), Taps()
    made = [await keyboard_for(env.telegram, f"z{i}", picture) for i in range(chats)]
    env.bot.proc.kill()
    await env.redis.kill()
    await asyncio.to_thread(env.bot.proc.wait, 10)
    await env.redis.start()
    await env.bot.start()
    for i, (user, _, photo, keyboard) in enumerate(made):
        await tap(env.telegram, user, photo, keyboard, i % 7 + 1, taps)
    notes = {"old keyboards": chats, "old keyboards that masked": taps.photos}
    return Result("Redis and bot killed together", taps, tracebacks(*env.processes()), notes)


def bytes_at_rest(folder: Path) -> int:
    """What files under ``folder`` hold (the worker folders' empty lock files hold nothing)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _niceness(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    except (OSError, IndexError, ValueError):
        return 0


async def video_kill(env: Stack) -> Result:
    """A video's worker process is SIGKILLed while it writes the masked MP4; the job is retried
    on a new process, and nothing of the video is left on disk."""
    from tests.support import clips

    taps = Taps()
    owner = env.workers[0] if env.workers else env.bot
    assert owner is not None
    user = env.telegram.user("v")
    chat = env.telegram.private_chat(user)
    # long enough that the MP4 is still being written when it is looked for (video runs at
    # about real time on one core: a 12 s note takes seconds to mask)
    clip = clips.face_clip(12, fps=30, size=(400, 400))
    note = await env.telegram.send_video_note(chat, user, clip, duration=12, length=400)
    keyboard = await env.telegram.wait_reply(note, has_keyboard, timeout=30)
    await env.telegram.press(user, keyboard, "3 ")

    def writing() -> list[Path]:
        # the encoder's MP4 exists from its first frame (FFmpeg's muxer may hold the frames
        # in memory until the end: the file then reads 48 bytes until the last moment)
        found = []
        for f in env.tmp.rglob("*.mp4"):
            with contextlib.suppress(FileNotFoundError):  # the encoder may finish meanwhile
                if f.stat().st_size > 0:
                    found.append(f)
        return found

    # looked for every 50 ms (the fake Bot API's wait_for only looks when the bot calls it,
    # and a video's worker calls nothing while it encodes)
    deadline = time.monotonic() + 90
    while not writing():
        if time.monotonic() > deadline:
            seen = sorted(f"{f.relative_to(env.tmp)}" for f in env.tmp.rglob("*") if f.is_file())
            raise TimeoutError(f"waited 90 s for a video being written; files: {seen[-15:]}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # well into the video (a 12 s note takes seconds to mask)
    [video_process] = [pid for pid in owner.model_processes() if _niceness(pid) > 0]
    left_at_kill = bytes_at_rest(env.tmp)
    os.kill(video_process, signal.SIGKILL)
    started = time.monotonic()
    try:
        await env.telegram.wait_reply(note, lambda m: bool(m.video_note), timeout=ANSWER_WITHIN)
        taps.seconds.append(time.monotonic() - started)
        taps.photos += 1  # the masked video note: retried on a new process
    except TimeoutError:
        taps.unanswered += 1
    notes = {"bytes in TMPDIR at the kill": left_at_kill, "bytes at rest": bytes_at_rest(env.tmp)}
    return Result("Video process SIGKILL mid-video", taps, tracebacks(*env.processes()), notes)


# ----------------------------------------------------------------------------- command


TARGETS = {
    "Redis restart mid-stream": "0 taps without an answer, workers back within 10 s, no traceback",
    "Worker kill mid-job": "0 lost",
    "Bot SIGKILL and restart": "0 lost, every old keyboard works",
    "Full queue": "taps beyond the queue answered busy, nothing lost",
    "Bot SIGKILL mid-stream (embedded)": "0 accepted taps lost, 0 answered twice",
    "Bot SIGKILL mid-stream (Redis)": "0 accepted taps lost, 0 answered twice",
    "Bot SIGKILL under a backlog (embedded)": "at 100 taps/s: 0 lost, 0 answered twice",
    "Bot SIGKILL under a backlog (Redis)": "at 100 taps/s: 0 lost, 0 answered twice",
    "Redis and bot killed together": "every old keyboard works after the restart",
    "Video process SIGKILL mid-video": "0 bytes of pictures or videos at rest, the video answered",
}


def met(result: Result) -> bool:
    t = result.taps
    ok = t.unanswered == 0 and not result.tracebacks and t.duplicates == 0
    if result.name.startswith("Bot SIGKILL under a backlog"):
        return ok  # "busy, try again" is an answer
    if result.name == "Redis and bot killed together":
        return ok and t.photos == result.notes["old keyboards"]
    if result.name == "Video process SIGKILL mid-video":
        return ok and t.photos == 1 and result.notes["bytes at rest"] == 0
    if result.name == "Redis restart mid-stream":
        back = result.notes["workers back within s"]
        return ok and result.notes["workers not back"] == 0 and 0 <= back <= 10
    if result.name == "Bot SIGKILL and restart":
        return ok and not t.errors and result.notes["toggle remembered"] == 1.0
    if result.name == "Full queue":
        return ok and bool(t.errors) and t.photos + len(t.errors) == t.taps
    return ok and not t.errors


async def run(args: argparse.Namespace) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="facemask-chaos-") as workdir:
        base = Path(args.log_dir or workdir)
        for name, scenarios, redis_mode, settings in [
            ("redis", [redis_restart], True, {}),
            ("worker", [worker_kill], True, {}),
            ("bot", [bot_kill, bot_kill_mid_stream, backlog_kill], True, {}),
            ("together", [redis_and_bot_killed, video_kill], True, {}),
            ("queue", [full_queue], True, {"QUEUE_SIZE": "2"}),
            ("embedded", [bot_kill_mid_stream, backlog_kill, video_kill], False, {}),
        ]:
            if args.only and name not in args.only:
                continue
            folder = base / name
            folder.mkdir(parents=True, exist_ok=True)
            workers = args.workers
            async with stack(folder, workers=workers, redis_mode=redis_mode, **settings) as env:
                for scenario in scenarios:
                    result = await scenario(env)
                    results.append(result)
                    print(f"{result.line()}", flush=True)
    print()
    for result in results:
        verdict = "met" if met(result) else "NOT MET"
        print(f"target {result.name}: {TARGETS[result.name]} -> {verdict}")
    return 0 if all(met(r) for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="facemask-worker processes")
    parser.add_argument("--log-dir", type=Path, help="keep every process's log here")
    parser.add_argument(
        "--only", nargs="+", metavar="STACK",
        choices=["redis", "worker", "bot", "together", "queue", "embedded"],
        help="run these stacks' scenarios only",
    )  # fmt: skip
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
