"""The transcode's two ways of running a clip (issue 27): in one thread, and with decoding and
encoding on threads of their own beside the frame function. Both must give the same file, in
the same order, with the same errors, and leave no thread behind whatever happens."""

from __future__ import annotations

import io
import threading
import time

import av
import numpy as np
import pytest

from core.errors import JobCancelledError, TruncatedVideoError, VideoTooLongError
from core.video import codec
from tests.support.clips import encode, face_frames

FRAMES = 30
BOTH = pytest.mark.parametrize("overlap", [False, True], ids=["serial", "overlapped"])


@pytest.fixture(scope="module")
def clip() -> bytes:
    return encode(face_frames(FRAMES), audio=True)


def stamp(rgb: np.ndarray, t: float) -> np.ndarray:
    """The frame with a band whose brightness tells its time (so order shows in the output)."""
    out = rgb.copy()
    out[:16] = min(255, round(t * 100))
    return out


def stamps(data: bytes) -> list[int]:
    with av.open(io.BytesIO(data)) as c:
        return [int(f.to_ndarray(format="rgb24")[:16].mean().round()) for f in c.decode(video=0)]


def audio_packets(data: bytes) -> list[bytes]:
    with av.open(io.BytesIO(data)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("video-decode", "video-encode")]


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    yield
    assert pipeline_threads() == []


def test_both_ways_write_the_same_file_in_order_with_the_sound_copied(clip, monkeypatch):
    from core import threads

    monkeypatch.setattr(threads, "count", lambda: 1)  # both ways: libx264 on one thread
    files, seen = {}, {}
    for overlap in (False, True):
        out = io.BytesIO()
        calls: list[tuple[float, threading.Thread]] = []

        def frame_fn(rgb, t, calls=calls):
            calls.append((t, threading.current_thread()))
            return stamp(rgb, t)

        done = codec.transcode(clip, frame_fn, out, overlap=overlap)
        assert done.frames == FRAMES and done.has_audio and done.complete
        files[overlap], seen[overlap] = out.getvalue(), calls
    assert (
        [t for t, _ in seen[True]]
        == [t for t, _ in seen[False]]
        == sorted(t for t, _ in seen[True])
    )
    # the frame function runs in the caller's thread (the tracker and its models live there)
    assert {th for _, th in seen[True]} == {threading.current_thread()}
    assert stamps(files[True]) == stamps(files[False])
    assert np.all(np.diff(stamps(files[True])) > 0)
    assert audio_packets(files[True]) == audio_packets(files[False]) == audio_packets(clip)
    assert files[True] == files[False]


def test_memory_stays_bounded_the_reader_waits_for_a_slow_frame_function(clip, monkeypatch):
    decoded = 0
    real_upright = codec._upright

    def counting(frame):
        nonlocal decoded
        decoded += 1
        return real_upright(frame)

    monkeypatch.setattr(codec, "_upright", counting)
    ahead: list[int] = []

    def slow(rgb, t):
        time.sleep(0.01)
        ahead.append(decoded - len(ahead))
        return rgb

    codec.transcode(clip, slow, io.BytesIO(), overlap=True)
    # the queue's frames, the one being put and the one being handed to the frame function
    assert max(ahead) <= codec.QUEUE_FRAMES + 2
    assert max(ahead) >= 2  # the reader did run ahead (a test that cannot fail is a defect)


@BOTH
def test_an_error_in_the_frame_function_is_raised_as_it_is(clip, overlap):
    def fails(rgb, t):
        if t > 0.5:
            raise ValueError("boom")
        return rgb

    with pytest.raises(ValueError, match="boom"):
        codec.transcode(clip, fails, io.BytesIO(), overlap=overlap)


@BOTH
def test_an_encoder_error_is_raised_as_it_is(clip, overlap, monkeypatch):
    real = codec.encode_frame
    calls = 0

    def fails_at_the_fifth(out, stream, rgb, pts, tb):
        nonlocal calls
        calls += 1
        if calls == 5:
            raise av.FFmpegError(22, "the encoder refused a frame")
        real(out, stream, rgb, pts, tb)

    monkeypatch.setattr(codec, "encode_frame", fails_at_the_fifth)
    masked: list[float] = []
    with pytest.raises(av.FFmpegError, match="refused"):
        codec.transcode(clip, lambda rgb, t: masked.append(t) or rgb, io.BytesIO(), overlap=overlap)
    # the caller stops masking soon after: at once in one thread, within the queues' frames
    assert len(masked) <= 5 + (2 * codec.QUEUE_FRAMES + 2 if overlap else 0)


@BOTH
def test_cancel_stops_within_a_frame(clip, overlap):
    cancel = threading.Event()
    masked: list[float] = []

    def frame_fn(rgb, t):
        masked.append(t)
        if len(masked) == 3:
            cancel.set()
        return rgb

    with pytest.raises(JobCancelledError):
        codec.transcode(clip, frame_fn, io.BytesIO(), cancel=cancel, overlap=overlap)
    assert len(masked) == 3


@BOTH
def test_a_cut_off_file_gives_the_frames_before_the_cut(tmp_path, overlap):
    fast = encode(face_frames(FRAMES))  # index first, as Telegram sends
    cut = fast[: len(fast) * 7 // 10]
    out = io.BytesIO()
    done = codec.transcode(cut, stamp, out, overlap=overlap)
    assert 0 < done.frames == len(stamps(out.getvalue())) < FRAMES and not done.complete
    plain = encode(face_frames(FRAMES), faststart=False)  # index last: nothing to read
    with pytest.raises(TruncatedVideoError):
        codec.transcode(plain[: len(plain) * 6 // 10], stamp, io.BytesIO(), overlap=overlap)


@BOTH
def test_too_long_by_its_frames_is_refused_after_masking_the_frames_before(
    clip, overlap, monkeypatch
):
    from dataclasses import replace

    real_info = codec._info  # a header that does not say how long it is
    monkeypatch.setattr(codec, "_info", lambda c: replace(real_info(c), duration_s=0.0))
    masked: list[float] = []
    with pytest.raises(VideoTooLongError):
        codec.transcode(
            clip, lambda rgb, t: masked.append(t) or rgb, io.BytesIO(),
            max_duration_s=0.5, overlap=overlap,
        )  # fmt: skip
    assert masked == [i / 15 for i in range(len(masked))] and 0.5 <= masked[-1] <= 0.6


def test_one_core_runs_in_one_thread(clip, monkeypatch):
    """A worker with one core gains nothing from more threads (docs/experiments/video-speed.md)."""
    from core import threads

    monkeypatch.setattr(threads, "count", lambda: 1)
    seen: set[str] = set()

    def frame_fn(rgb, t):
        seen.update(t.name for t in pipeline_threads())
        return rgb

    codec.transcode(clip, frame_fn, io.BytesIO())
    assert seen == set()
    monkeypatch.setattr(threads, "count", lambda: 2)
    codec.transcode(clip, frame_fn, io.BytesIO())
    assert seen == {"video-decode", "video-encode"}


def test_x264_keeps_to_avx2_only_where_the_cpu_has_avx512(monkeypatch):
    """x264's AVX-512 code wrote a different file from the same frames each time (an AMD
    EPYC); a CPU without AVX2 must never be told to use it."""
    cpus = (({"avx2", "avx512f"}, True), ({"sse4_2", "avx2"}, False), (set(), False))
    for flags, held_back in cpus:
        monkeypatch.setattr(codec, "cpu_flags", lambda flags=flags: frozenset(flags))
        codec.x264_params.cache_clear()
        assert codec.x264_params().endswith(":asm=avx2") == held_back
        assert codec.x264_params().startswith(codec.X264_PARAMS)
    codec.x264_params.cache_clear()
    assert codec.encoder_options()["x264-params"] == codec.x264_params()
