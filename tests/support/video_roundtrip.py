"""Moving pictures measured through the real bot: ``python -m tests.support.video_roundtrip``.

Starts the fake Bot API and the real bot (``python -m bot``, embedded workers, as ``./run load``
does), warms the photo and video processes up, then:

1. sends a 10 s, 30 fps, 640x640 video note of the moving astronaut (tests/support/clips.py),
   taps a mask and times the tap -> masked video note round trip, counting the progress edits;
2. with ``--photos N``: ``--users`` people each send N photos (``./run load``'s users), first
   alone, then while 10 s video notes are masked one after another beside them, and prints the
   photos' tap -> masked photo p50/p95 for both.

The load average is printed with every number: on a shared machine they mean little without it.
A measurement, not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support import clips
from tests.support.fake_telegram import FakeTelegram
from tests.support.loadtest import Tally, percentile, photos, simulate_user, start_bot


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def note_round_trip(telegram: FakeTelegram, name: str, clip: bytes, seconds: int) -> dict:
    """Send a video note, tap mask 1: seconds from the tap to the masked note, progress edits."""
    user = telegram.user(name)
    chat = telegram.private_chat(user)
    note = await telegram.send_video_note(chat, user, clip, duration=seconds, length=640)
    keyboard = await telegram.wait_reply(note, lambda m: m.reply_markup is not None, 60)
    tapped = time.monotonic()
    await telegram.press(user, keyboard, "1 ")
    progress = await telegram.wait_reply(note, lambda m: (m.text or "").startswith("Masking"), 60)
    answer = await telegram.wait_reply(note, lambda m: bool(m.video_note), 300)
    elapsed = time.monotonic() - tapped
    edits = [
        c for c in telegram.calls("editMessageText")
        if int(c.params["message_id"]) == progress.message_id
        and int(c.params["chat_id"]) == chat.id
    ]  # fmt: skip
    frames = clips.read_back(telegram.state.files[answer.video_note.file_id].data)["frames"]
    return {"seconds": elapsed, "edits": len(edits), "frames": frames}


async def photo_round(telegram: FakeTelegram, tag: str, args: argparse.Namespace) -> Tally:
    tally = Tally()
    pictures = photos()
    await asyncio.gather(
        *(
            simulate_user(telegram, f"{tag}{i}", pictures, args.photos, 0.0, tally, 120)
            for i in range(args.users)
        )
    )
    return tally


def describe(tally: Tally, what: str, load_text: str) -> str:
    taps = tally.tap_to_photo
    if not taps:
        return f"{what}: no photo answered"
    return (
        f"{what}: {tally.answered} photos, tap -> masked photo p50 {statistics.median(taps):.2f} s,"
        f" p95 {percentile(taps, 95):.2f} s, max {max(taps):.2f} s ({load_text})"
    )


async def run(args: argparse.Namespace) -> int:
    clip = clips.face_clip(10, fps=30, size=(640, 640))
    warm_clip = clips.face_clip(1, fps=30, size=(640, 640))
    settings = {
        "WORKERS": str(args.workers),
        "THROTTLE_JOBS": "1000",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }
    with tempfile.TemporaryDirectory(prefix="facemask-video-") as workdir:
        async with FakeTelegram() as telegram:
            bot = await start_bot(telegram, Path(workdir), settings)
            try:
                pictures = photos()
                await asyncio.gather(
                    *(simulate_user(telegram, f"warm{i}", pictures, 1, 0, None, 120)
                      for i in range(args.workers)),
                    note_round_trip(telegram, "warm-video", warm_clip, 1),
                )  # fmt: skip
                print(f"{os.cpu_count()} CPUs, {args.workers} photo workers + 1 video worker")
                for n in range(args.repeat):
                    before = load()
                    trip = await note_round_trip(telegram, f"note{n}", clip, 10)
                    print(
                        "10 s 640x640 30 fps video note: tap -> masked note "
                        f"{trip['seconds']:.1f} s, progress edited {trip['edits']} times, "
                        f"{trip['frames']}/300 frames ({before} before, {load()} after)"
                    )
                if args.photos:
                    alone = await photo_round(telegram, "alone", args)
                    print(describe(alone, "photos alone", load()))
                    stop = asyncio.Event()
                    notes: list[dict] = []

                    async def videos_beside() -> None:
                        n = 0
                        while not stop.is_set():
                            n += 1
                            notes.append(await note_round_trip(telegram, f"side{n}", clip, 10))

                    beside = asyncio.create_task(videos_beside())
                    await asyncio.sleep(1.0)  # the first video is being masked
                    with_video = await photo_round(telegram, "beside", args)
                    text = describe(with_video, "photos beside 10 s video notes", load())
                    stop.set()
                    await beside
                    print(f"{text}; {len(notes)} video notes masked meanwhile")
            finally:
                bot.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(bot.wait, 60)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.video_roundtrip",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="the bot's WORKERS (photos)")
    parser.add_argument("--repeat", type=int, default=1, help="10 s video notes to time")
    parser.add_argument("--photos", type=int, default=0, help="photos per user, alone and beside")
    parser.add_argument("--users", type=int, default=5)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
