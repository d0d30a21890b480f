"""``./run load``: simulated users drive the real bot through the fake Telegram server.

Starts a fake Bot API server and the real bot (``python -m bot``, embedded workers, or Redis
mode: ``--redis`` starts a redis-server and ``--workers`` ``facemask-worker`` processes of its
own, ``--redis-url`` uses yours), then lets ``--users`` people each send ``--photos`` photos:
send a photo, wait for the keyboard, tap a random mask, wait for the masked photo. Prints how
many were answered (and answered twice) and the round trip from the tap to the masked photo
(p50, p95, max).

A test tool, not an installed command: run it from the repository root as ``./run load`` or
``python -m tests.support.loadtest``. Needs the ``dev`` extra (aiohttp, scikit-image).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from masks import catalog
from tests.support.fake_telegram import FakeTelegram

SIDES = (512, 800, 1024)  # photos of a few sizes, like people send


@dataclass
class Tally:
    tap_to_photo: list[float] = field(default_factory=list)
    photo_to_keyboard: list[float] = field(default_factory=list)
    answered: int = 0
    errors: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    photos: list = field(default_factory=list)  # every photo a user sent (one tap each)


def photos() -> list[bytes]:
    """The astronaut from scikit-image, JPEG-encoded at a few sizes."""
    from PIL import Image
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    encoded = []
    for side in SIDES:
        out = io.BytesIO()
        astronaut.resize((side, side)).save(out, format="JPEG", quality=90)
        encoded.append(out.getvalue())
    return encoded


async def start_bot(
    telegram: FakeTelegram, workdir: Path, settings: dict[str, str]
) -> subprocess.Popen[bytes]:
    inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env = {**inherited, **telegram.env(), **settings}
    log = (workdir / "bot.log").open("ab")
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 300
    while not telegram.calls("getUpdates"):
        if bot.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"./run load: the bot did not start; see {workdir / 'bot.log'}")
        await asyncio.sleep(0.1)
    return bot


async def simulate_user(
    telegram: FakeTelegram,
    name: str,
    pictures: list[bytes],
    count: int,
    think: float,
    tally: Tally | None,
    timeout: float,
) -> None:
    user = telegram.user(name)
    chat = telegram.private_chat(user)
    rng = random.Random(name)
    for n in range(count):
        await asyncio.sleep(think * rng.uniform(0.5, 1.5) if n else rng.uniform(0, think))
        started = time.monotonic()
        photo = await telegram.send_photo(chat, user, rng.choice(pictures))
        if tally is not None:
            tally.photos.append(photo)
        try:
            keyboard = await telegram.wait_reply(
                photo, lambda m: m.reply_markup is not None, timeout
            )
            keyboard_at = time.monotonic()
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            mask = rng.choice(catalog.masks())
            await telegram.press(user, keyboard, f"{mask.id} ")
            tapped = time.monotonic()
            # the answer: any reply to the photo but its keyboard (a result may have buttons)
            reply = await telegram.wait_reply(
                photo, lambda m, k=keyboard.message_id: m.message_id != k, timeout
            )
        except TimeoutError as error:
            print(f"{name}, photo {n + 1}: {error}", file=sys.stderr)
            if tally is not None:
                tally.lost += 1
            continue
        if tally is None:
            continue
        tally.photo_to_keyboard.append(keyboard_at - started)
        tally.tap_to_photo.append(time.monotonic() - tapped)
        if reply.photo:
            tally.answered += 1
        else:
            tally.errors.append(reply.text or "?")


@contextlib.asynccontextmanager
async def redis_workers(args: argparse.Namespace, folder: Path) -> AsyncIterator[str | None]:
    """With ``--redis``: our own redis-server and ``--workers`` facemask-workers; its URL."""
    if not args.redis:
        yield None
        return
    from tests.support.chaos import RedisServer, WorkerProcess

    server = RedisServer(folder)
    await server.start()
    workers = [WorkerProcess(f"worker{n + 1}", server.url, folder) for n in range(args.workers)]
    try:
        for worker in workers:
            worker.start()
        await asyncio.gather(*(worker.ready() for worker in workers))
        yield server.url
    finally:
        for worker in workers:
            await worker.stop()
        await server.kill()
        broken = [w.name for w in workers if "Traceback" in w.log()]
        if broken:
            print(f"tracebacks in the logs of {', '.join(broken)} (in {folder})", file=sys.stderr)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def duplicates(telegram: FakeTelegram, tally: Tally) -> int:
    """Answers beyond the first under a photo (each photo is tapped once)."""
    extra = 0
    for photo in tally.photos:
        answers = telegram.replies_to(photo)[1:]  # the first reply is the keyboard
        extra += max(0, len(answers) - 1)
    return extra


def report(tally: Tally, args: argparse.Namespace, seconds: float) -> str:
    total = args.users * args.photos
    taps = tally.tap_to_photo
    mode = ""
    if args.redis or args.redis_url:
        mode = f" ({'facemask-worker processes ' if args.redis else ''}via Redis)"
    lines = [
        f"{args.users} users x {args.photos} photos, {args.workers} workers{mode}, "
        f"think time {args.think:g} s, "
        f"{os.cpu_count()} CPUs, load average {args.load_before:.1f} before the run",
        f"answered with a masked photo: {tally.answered}/{total}; errors: {len(tally.errors)};"
        f" lost: {tally.lost}; duplicated: {tally.duplicated}",
    ]
    if taps:
        lines.append(
            f"tap -> masked photo: p50 {statistics.median(taps):.2f} s, "
            f"p95 {percentile(taps, 95):.2f} s, max {max(taps):.2f} s"
        )
        keyboard = tally.photo_to_keyboard
        lines.append(
            f"photo -> keyboard:   p50 {statistics.median(keyboard):.2f} s, "
            f"p95 {percentile(keyboard, 95):.2f} s"
        )
    lines.append(f"{total} photos in {seconds:.1f} s ({total / seconds:.1f} photos/s)")
    for error in sorted(set(tally.errors)):
        lines.append(f"error: {tally.errors.count(error)} x {error}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    pictures = photos()
    settings = {
        "WORKERS": str(args.workers),
        "THROTTLE_JOBS": str(args.photos * 2),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "QUEUE_SIZE": str(max(32, args.users * 2)),
    }
    if args.redis_url:
        settings["REDIS_URL"] = args.redis_url
    with tempfile.TemporaryDirectory(prefix="facemask-load-") as workdir:
        folder = args.log_dir or Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
        async with FakeTelegram() as telegram, redis_workers(args, folder) as redis_url:
            if redis_url:
                settings["REDIS_URL"] = redis_url
            bot = await start_bot(telegram, folder, settings)
            try:
                # warm-up, not counted: every worker's first photo
                await asyncio.gather(
                    *(
                        simulate_user(telegram, f"warm{i}", pictures, 1, 0, None, 120)
                        for i in range(args.workers)
                    )
                )
                tally = Tally()
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        simulate_user(
                            telegram, f"user{i}", pictures, args.photos, args.think, tally, 120
                        )
                        for i in range(args.users)
                    )
                )
                seconds = time.monotonic() - started
                tally.duplicated = duplicates(telegram, tally)
            finally:
                bot.terminate()
                await asyncio.to_thread(bot.wait, 60)
    print(report(tally, args, seconds))
    answered_all = tally.answered == args.users * args.photos and not tally.duplicated
    met_target = bool(tally.tap_to_photo) and percentile(tally.tap_to_photo, 95) <= args.target
    if args.target and not met_target:
        print(f"p95 is over the {args.target:g} s target")
    return 0 if answered_all and (met_target or not args.target) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run load", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--photos", type=int, default=5, help="photos per user")
    parser.add_argument("--workers", type=int, default=2, help="the bot's WORKERS")
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean seconds a user pauses before each tap"
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help="Redis mode: start a redis-server and --workers facemask-worker processes "
        "(one model process each)",
    )
    parser.add_argument("--redis-url", help="Redis mode on your Redis and your facemask-workers")
    parser.add_argument("--log-dir", type=Path, help="keep the bot's log (bot.log) here")
    parser.add_argument(
        "--target", type=float, default=0.0, help="fail unless p95 tap -> photo is within this"
    )
    args = parser.parse_args(argv)
    args.load_before = os.getloadavg()[0]  # results mean little on a busy machine: say so
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the bot on the way out
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
