"""Video jobs: the embedded pool's video lane (real processes, stand-in jobs with exact timing),
and a real clip through a real Redis to a real ``facemask-worker`` with the shipped model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from core.errors import NoVideoStreamError
from core.results import MaskedPhoto, MaskedVideo, Mode
from serving.jobs import (
    JobFailure,
    JobResult,
    MaskJob,
    VideoJob,
    WorkerTimeoutError,
)
from serving.pool import WorkerPool
from serving.redis_queue import RedisQueue
from tests.support import clips, video_stubs
from tests.support.chaos import RedisServer, WorkerProcess


def video(frames: int, seconds_each: float, duration_s: float = 0.0) -> VideoJob:
    """A stand-in video job (tests/support/video_stubs.py) of ``frames`` x ``seconds_each``."""
    return VideoJob(f"frames {frames} {seconds_each}".encode(), 1, kind="video_note",
                    duration_s=duration_s)  # fmt: skip


def pid_of(result: JobResult) -> int:
    assert isinstance(result, MaskedPhoto | MaskedVideo), result
    return int(result.image if isinstance(result, MaskedPhoto) else result.data)


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(
        1, queue_size=4, job_timeout=5.0, setup=video_stubs.setup_video, video_workers=1
    )
    await pool.start()
    yield pool
    await pool.close()


async def test_a_video_reports_progress_and_photos_do_not_wait_for_it(pool: WorkerPool) -> None:
    seen: list[float] = []
    running = asyncio.create_task(pool.run(video(30, 0.05), seen.append))  # 1.5 s of work
    while not seen:  # the video process has started and is working
        await asyncio.sleep(0.02)
        assert not running.done(), running.result()
    photo = await pool.run(MaskJob(b"ok", 1))
    assert not running.done()  # the photo came back while the video was still being masked
    result = await running
    assert isinstance(result, MaskedVideo) and result.kind == "video_note"
    assert pid_of(photo) != pid_of(result) and set(pool.pids) == {pid_of(photo), pid_of(result)}
    assert seen == sorted(seen) and 0 < seen[0] and seen[-1] <= 1 and len(seen) >= 3


async def test_cancel_stops_the_video_in_its_process(pool: WorkerPool) -> None:
    seen: list[float] = []
    running = asyncio.create_task(pool.run(video(400, 0.05), seen.append))  # 20 s of work
    while not seen:
        await asyncio.sleep(0.02)
    video_pid = pool.pids[-1]
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    started = time.monotonic()
    after = await pool.run(video(2, 0.01))  # waits until the process has let go of the first
    assert time.monotonic() - started < 2.0
    assert pid_of(after) == video_pid  # the same process, stopped between frames, not replaced


async def test_a_videos_time_limit_grows_with_its_length() -> None:
    job = video(1, 0.0, duration_s=30)
    assert job.timeout(30, 180) == 90 and video(1, 0, 60).timeout(30, 180) == 180
    assert video(1, 0, 5).timeout(30, 180) == 30  # never less than a photo's
    assert video(1, 0, 0).timeout(30, 180) == 180  # length unknown: the longest's
    pool = WorkerPool(1, job_timeout=0.5, setup=video_stubs.setup_video, video_workers=1,
                      video_job_timeout=6.0)  # fmt: skip
    await pool.start()
    try:
        # 2 s of work: fine for a 30 s video (3 s), too long for a 5 s one (0.5 s)
        assert isinstance(await pool.run(video(20, 0.1, duration_s=30)), MaskedVideo)
        first_pid = pool.pids[-1]
        failed = await pool.run(video(20, 0.1, duration_s=5))
        assert failed == JobFailure.of(WorkerTimeoutError())
        assert first_pid not in pool.pids  # the stuck process was replaced
        assert isinstance(await pool.run(video(2, 0.01)), MaskedVideo)
    finally:
        await pool.close()


async def test_without_a_video_lane_videos_share_the_photo_processes() -> None:
    pool = WorkerPool(1, setup=video_stubs.setup_video, video_workers=0)
    await pool.start()
    try:
        result = await pool.run(video(3, 0.01))
        assert isinstance(result, MaskedVideo) and pool.pids == [pid_of(result)]
    finally:
        await pool.close()


# ----------------------------------------------------------------------------- Redis


async def test_videos_through_redis_to_facemask_worker_with_progress_and_cancel(
    redis_and_worker: tuple[RedisServer, WorkerProcess],
) -> None:
    server, worker = redis_and_worker
    queue = RedisQueue(server.url, queue_size=8, job_timeout=30)
    await queue.start()
    try:
        # a video note with its sound: a round (square) video note back, frames and sound kept
        clip = clips.face_clip(2, audio=True)
        seen: list[float] = []
        job = VideoJob(clip, 3, Mode.FACES, "video_note", 2.0)
        note = await queue.mask_video(job, seen.append)
        out = clips.read_back(note.data)
        assert note.kind == "video_note" and out["size"] == (180, 180) == (note.width, note.height)
        assert out["frames"] == 30 == note.frames and out["audio"] == "aac" and note.has_audio
        assert note.faces_mean > 0.5

        # Cancel (an arq abort): the model process stops and takes the next video soon
        long_clip = clips.face_clip(20, fps=25, size=(320, 240))  # 500 frames: many seconds
        seen.clear()
        running = asyncio.create_task(
            queue.mask_video(VideoJob(long_clip, 1, Mode.FACES, "video", 20.0), seen.append)
        )
        deadline = time.monotonic() + 120
        while not seen:  # the worker reports progress through Redis
            assert time.monotonic() < deadline and not running.done()
            await asyncio.sleep(0.05)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        started = time.monotonic()
        short = await queue.mask_video(VideoJob(clips.face_clip(1), 2, Mode.FACES, "video", 1.0))
        assert short.frames == 15 and time.monotonic() - started < 15
        assert "cancelling VideoJob" in worker.log() and "aborted" in worker.log()

        # a file with sound and no picture: a sentence, not a crash
        with pytest.raises(NoVideoStreamError):
            await queue.mask_video(VideoJob(clips.audio_only(), 1, duration_s=1.0))
    finally:
        await queue.close()
    await asyncio.sleep(0.5)
    client = server.client()
    try:
        left = sorted(key.decode() for key in client.keys("*"))
    finally:
        client.close()
    # nothing of any video stays in Redis: jobs, results and progress are gone
    assert not [k for k in left if k.startswith(("arq:job:", "arq:result:", "facemask:"))], left
