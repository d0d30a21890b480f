"""Moving pictures in and out: a video, GIF or video note streamed through a frame function.

    source --demux/decode--> RGB frame --frame_fn(, paint)--> RGB frame --libx264--> MP4
           --audio packets-----------------------------------------------> copied or AAC

Where the process has more than one core, decoding and (painting and) encoding run on threads
of their own beside ``frame_fn`` (:func:`_overlapped`); a few frames are in flight at a time
(``QUEUE_FRAMES`` in each queue, plus the encoder's short look-ahead), so memory does not
grow with the clip's length. The output is H.264 (yuv420p) in MP4, the kind every Telegram
client plays: the input's frame timestamps are kept as they are, so frame rate, frame count
and duration match it. Three output kinds:

* ``video``: the input's size (even; long side at most ``MAX_SIDE``), its audio kept;
* ``video_note``: Telegram's round video, a centred square of at most ``NOTE_MAX_SIDE``
  px, audio kept;
* ``animation``: like ``video``, without audio (a GIF comes back as this).

Audio that MP4 holds as it is (AAC, MP3) is copied packet by packet; anything else (Opus,
Vorbis, PCM) is re-encoded as AAC. Failures a user can cause are :mod:`core.errors`'s typed
errors; a file cut off after some frames gives the frames that decode (``complete`` False).
"""

from __future__ import annotations

import io
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import av
import cv2
import numpy as np

from core.errors import (
    EmptyVideoError,
    JobCancelledError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    VideoTooLargeError,
    VideoTooLongError,
)

log = logging.getLogger(__name__)

MAX_DURATION_S = 60.0  # the limit VideoTooLongError's message promises
MAX_SIDE = 1280  # longer videos are scaled down to this (the bot says so)
NOTE_MAX_SIDE = 640  # Telegram's video notes are squares of at most 640 px
MAX_PIXELS = 4096 * 2304  # 4K and a little more; VideoTooLargeError's message says "4K"
KINDS = ("video", "video_note", "animation")
# libx264: "veryfast" costs little more time a frame than "ultrafast", for files many times
# smaller at the same quality (docs/experiments/core-notes.md, "Video encoding").
PRESET = "veryfast"
CRF = 23
# ... with its motion search cut to the diamond, one subpixel pass and no macroblock
# partitions: much less of the encoder's time for about the same file size and quality on
# noisy phone video (measured in docs/experiments/video-speed.md, rounds 1 and 4)
X264_PARAMS = "me=dia:subme=1:partitions=none"
# ... and on a CPU with AVX-512, x264's code for it held back: on an AMD EPYC with AVX-512
# the same frames encoded with one thread gave a different file each time (sizes 51,260 to
# 51,309 bytes, the pictures different too), with AVX2 the same file every time.
AVX512_X264_PARAMS = ":asm=avx2"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


@cache
def x264_params() -> str:
    """``X264_PARAMS``, with ``AVX512_X264_PARAMS`` where the CPU has AVX-512 (never
    naming AVX2 to a CPU without it: x264 would run instructions it lacks)."""
    has_avx512 = "avx512f" in cpu_flags()
    return X264_PARAMS + (AVX512_X264_PARAMS if has_avx512 else "")


PROGRESS_EVERY_S = 0.5
MAX_DAMAGED_PACKETS = 30  # more than this many undecodable packets: the rest is noise
COPIED_AUDIO = {"aac", "mp3"}  # MP4 holds these as they are

# Containers a video arrives in. FFmpeg also opens a JPEG or PNG as a one-frame "video":
# those are photos and go the photo way.
_CONTAINERS = ("mov", "mp4", "matroska", "webm", "gif", "avi")
# ISO base media files that are pictures, not videos (HEIF/HEIC/AVIF stills).
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}

VideoInput = bytes | bytearray | memoryview | str | Path
# an RGB frame and its time in seconds -> the RGB frame to encode (same size), or with a
# PaintFn, what the PaintFn needs to draw it
FrameFn = Callable[[np.ndarray, float], Any]
# an RGB frame and what the FrameFn made of it -> the RGB frame to encode (same size)
PaintFn = Callable[[np.ndarray, Any], np.ndarray]


# --------------------------------------------------------------------------- sniffing


def looks_like_video(data: bytes) -> bool:
    """Whether a file's first bytes (>= 16; the whole file for a GIF) are a video's.

    MP4/MOV/3GP by their boxes, Matroska/WebM by EBML, AVI by RIFF; a GIF is a video when it
    has more than one frame (a still GIF is a photo).
    """
    head = bytes(data[:16])
    if head[4:8] in _BOXES:
        return not (head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_frames(bytes(data)) > 1
    return False


def _gif_frames(data: bytes) -> int:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(getattr(img, "n_frames", 1))
    except Exception:  # a damaged GIF: the photo path reports it
        return 1


def is_video_file(source: VideoInput) -> bool:
    """:func:`looks_like_video` for bytes or a path (reads a GIF whole, else 16 bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return looks_like_video(bytes(source))
    path = Path(source)
    try:
        with path.open("rb") as f:
            head = f.read(16)
            if head[:3] == b"GIF":
                head += f.read()
    except OSError:
        return False
    return looks_like_video(head)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Geometry:
    """How an input frame (after its rotation) becomes an output frame."""

    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 of the input frame kept
    width: int  # output size, both even
    height: int

    @property
    def scaled_down(self) -> bool:
        return self.width < self.crop[2] - self.crop[0]


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def output_geometry(width: int, height: int, kind: str) -> Geometry:
    """The crop and output size for an input of ``width`` x ``height`` and an output kind.

    H.264 in yuv420p needs even sides: an odd side loses its last pixel row or column.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown video kind {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == "video_note":
        side = _even(min(width, height))
        x0, y0 = (width - side) // 2, (height - side) // 2
        out = _even(min(side, NOTE_MAX_SIDE))
        return Geometry((x0, y0, x0 + side, y0 + side), out, out)
    scale = min(1.0, MAX_SIDE / max(width, height))
    if scale < 1.0:
        return Geometry((0, 0, width, height), _even(width * scale), _even(height * scale))
    w, h = _even(width), _even(height)
    return Geometry((0, 0, w, h), w, h)


def fit_frame(rgb: np.ndarray, geometry: Geometry) -> np.ndarray:
    """An input frame cropped and scaled to the output's size."""
    x0, y0, x1, y1 = geometry.crop
    if rgb.shape[1] < x1 or rgb.shape[0] < y1:  # the stream changed size: stretch to fit
        rgb = cv2.resize(rgb, (geometry.width, geometry.height), interpolation=cv2.INTER_AREA)
        return rgb
    part = rgb[y0:y1, x0:x1]
    if part.shape[1] == geometry.width and part.shape[0] == geometry.height:
        return np.ascontiguousarray(part)
    return cv2.resize(part, (geometry.width, geometry.height), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class VideoInfo:
    """What an input's header says (before a frame is decoded)."""

    width: int  # as coded (a phone's display rotation shows only on the decoded frames)
    height: int
    fps: float  # 0.0 where the header does not say
    frames: int  # the header's count or duration x fps; 0 where unknown
    duration_s: float  # 0.0 where unknown
    has_audio: bool
    audio_codec: str | None
    container: str


def _open(source: VideoInput) -> av.container.InputContainer:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise NotAVideoError("That file is empty (0 bytes). Please send the video again.")
        file: BinaryIO | str = io.BytesIO(data)
        head = data[:16]
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except (OSError, ValueError) as err:  # ValueError: a NUL in the name
            raise NotAVideoError(f"I could not read the file {path.name!r}.") from err
        if not head:
            raise NotAVideoError("That file is empty (0 bytes). Please send the video again.")
        file = str(path)
    else:  # None, a number, an array: no video, said as the typed error every caller handles
        raise NotAVideoError()
    try:
        container = av.open(file, mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        if looks_like_video(head) or head[:3] == b"GIF":
            raise TruncatedVideoError() from err
        raise NotAVideoError() from err
    if not any(name in container.format.name for name in _CONTAINERS):
        container.close()
        raise NotAVideoError()
    return container


def _info(container: av.container.InputContainer) -> VideoInfo:
    if not container.streams.video:
        if container.streams.audio:
            raise NoVideoStreamError()
        raise NotAVideoError()
    v = container.streams.video[0]
    if v.codec_context.width * v.codec_context.height > MAX_PIXELS:
        raise VideoTooLargeError()
    audio = container.streams.audio[0] if container.streams.audio else None
    rate = v.average_rate or v.guessed_rate or v.base_rate
    fps = float(rate) if rate else 0.0
    duration = 0.0
    if v.duration is not None and v.time_base is not None:
        duration = float(v.duration * v.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    frames = v.frames or (round(duration * fps) if duration and fps else 0)
    return VideoInfo(
        v.codec_context.width, v.codec_context.height, fps, int(frames), duration,
        audio is not None, audio.codec_context.name if audio else None, container.format.name,
    )  # fmt: skip


def probe(source: VideoInput) -> VideoInfo:
    """The header's facts about a video, or the typed error that masking it would raise."""
    with _open(source) as container:
        return _info(container)


def _check_duration(info: VideoInfo, max_duration_s: float) -> None:
    if info.duration_s > max_duration_s + 0.1:  # a header's rounding is no reason to refuse
        raise VideoTooLongError(limit_s=max_duration_s)


def _check_packet_times(container: av.container.InputContainer, max_duration_s: float) -> None:
    """Refuse a video too long by its packets' timestamps, read without decoding a frame (a
    GIF's header may not say its length: decoding, and masking, its first minute of frames
    before refusing it cost many seconds). Timestamps as :class:`_Demuxed` gives them."""
    video = container.streams.video[0]
    tb = video.time_base or Fraction(1, 1000)
    step = _pts_step(video, tb)
    last: int | None = None
    try:
        for packet in container.demux(video):
            if not packet.size:
                continue
            pts = packet.pts
            if pts is None or (last is not None and pts <= last):
                pts = 0 if last is None else last + step
            last = pts
            if float(pts * tb) > max_duration_s + 0.1:
                raise VideoTooLongError(limit_s=max_duration_s)
    except av.FFmpegError:
        return  # a damaged file: decoding it says so, with the frames that do decode


@contextmanager
def _checked(
    source: VideoInput, max_duration_s: float
) -> Iterator[tuple[av.container.InputContainer, VideoInfo]]:
    """The open input and its header's facts, a video too long refused before any decoding."""
    with _open(source) as container:
        info = _info(container)
        _check_duration(info, max_duration_s)
        if info.duration_s or "gif" not in info.container:
            yield container, info
            return
        _check_packet_times(container, max_duration_s)
    with _open(source) as container:  # from the start again, for the frames
        yield container, _info(container)


def _pts_step(video: av.video.stream.VideoStream, tb: Fraction) -> int:
    """One frame's time in ``tb`` ticks: what a frame without its own timestamp is given."""
    rate = video.average_rate or video.guessed_rate
    if not rate:
        return 1
    return max(1, round(1 / (rate * tb)))


def _upright(frame: av.VideoFrame) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4
    # the display matrix turns counter-clockwise by `rotation`; np.rot90 does the same per k
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class _Demuxed:
    """Video frames (and, for copying, audio packets) in file order, errors made typed."""

    def __init__(
        self,
        container: av.container.InputContainer,
        info: VideoInfo,
        max_duration_s: float,
        cancel: threading.Event | None,
        audio: bool,
    ) -> None:
        self.container = container
        self.info = info
        self.max_duration_s = max_duration_s
        self.cancel = cancel
        self.video = container.streams.video[0]
        # no frame threads: they hold frames back, and a damaged packet's error then surfaces
        # while they are handed out, taking the good frames before it along (a cut-off file
        # gave none of its whole frames); one core decodes a frame quickly enough
        self.video.thread_type = "SLICE"
        self.audio = container.streams.audio[0] if audio and container.streams.audio else None
        self.complete = True
        self.frames = 0
        self.damaged = 0  # video packets the decoder refused
        self._last_pts: int | None = None
        # time 0 is the file's start (an MPEG-TS or an edited MOV may start at 1.4 s)
        start = container.start_time or 0  # None where the file does not say
        self.origin_s = max(0.0, start / av.time_base)

    def __iter__(self) -> Iterator[tuple[str, object, float]]:
        """("video", (frame, pts), t) and ("audio", packet, t) items."""
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        tb = self.video.time_base or Fraction(1, 1000)
        step = _pts_step(self.video, tb)
        origin = round(self.origin_s / tb)
        try:
            for packet in self.container.demux(*streams):
                if self.cancel is not None and self.cancel.is_set():
                    raise JobCancelledError()
                if packet.stream is self.audio:
                    if packet.dts is not None and packet.size:
                        shift = round(self.origin_s / packet.time_base)
                        packet.pts = None if packet.pts is None else packet.pts - shift
                        packet.dts -= shift
                        yield "audio", packet, 0.0
                    continue
                try:
                    decoded = packet.decode()
                except av.FFmpegError as err:
                    # a damaged or cut-off packet: skip it; the decoder keeps the frames it
                    # holds (B-frames wait for later ones) and gives them at the end
                    self.damaged += 1
                    self.complete = False
                    log.warning("skipping a damaged video packet: %s", err)
                    if self.damaged > MAX_DAMAGED_PACKETS:
                        break
                    continue
                for frame in decoded:
                    pts = None if frame.pts is None else frame.pts - origin
                    if pts is None or (self._last_pts is not None and pts <= self._last_pts):
                        # no or repeated timestamps: the next tick after the last frame
                        pts = 0 if self._last_pts is None else self._last_pts + step
                    self._last_pts = pts
                    t = float(pts * tb)
                    if t > self.max_duration_s + 0.1:  # a header that did not say
                        raise VideoTooLongError(limit_s=self.max_duration_s)
                    self.frames += 1
                    yield "video", (frame, pts), t
        except av.FFmpegError as err:
            if self.frames == 0:
                raise TruncatedVideoError() from err
            # cut off after some frames: those are the video (see module docstring)
            log.warning("video cut off after %d frames: %s", self.frames, err)
            self.complete = False
        if self.frames == 0:
            raise TruncatedVideoError() if self.damaged else EmptyVideoError()
        promised = self.video.frames  # MP4 headers count the frames; others only estimate
        if promised and self.frames < promised:
            log.warning("video has %d of the %d frames its header lists", self.frames, promised)
            self.complete = False


def frames(
    source: VideoInput,
    *,
    max_duration_s: float = MAX_DURATION_S,
    cancel: threading.Event | None = None,
) -> Iterator[tuple[np.ndarray, float]]:
    """Every frame of a video as upright RGB at its own size, with its time in seconds."""
    with _checked(source, max_duration_s) as (container, info):
        for _, (frame, _), t in _Demuxed(container, info, max_duration_s, cancel, audio=False):
            yield _upright(frame), t


# --------------------------------------------------------------------------- transcode


@dataclass(frozen=True)
class Transcoded:
    """What :func:`transcode` wrote."""

    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    has_audio: bool
    scaled_down: bool
    complete: bool  # False: the input was cut off, the output holds the frames before that
    kind: str


class _Progress:
    """Calls ``progress`` with a rising fraction, at most every ``every`` seconds."""

    def __init__(self, progress: Callable[[float], None] | None, total: int, every: float):
        self.progress = progress
        self.total = total
        self.every = every
        self.last_call = -np.inf
        self.last_value = 0.0

    def frame(self, done: int) -> None:
        if self.progress is None or self.total <= 0:
            return
        now = time.monotonic()
        if now - self.last_call < self.every:
            return
        value = min(0.99, done / self.total)  # 1.0 only once the file is written
        if value > self.last_value:
            self.last_call, self.last_value = now, value
            self.progress(value)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(1.0)


def transcode(
    source: VideoInput,
    frame_fn: FrameFn,
    output: BinaryIO | str | Path,
    *,
    kind: str = "video",
    max_duration_s: float = MAX_DURATION_S,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    paint: PaintFn | None = None,
    overlap: bool | None = None,
) -> Transcoded:
    """Decode ``source``, pass every frame through ``frame_fn`` (and ``paint``), encode the
    result.

    ``frame_fn`` sees each frame upright, cropped and scaled to the output's size, with its
    time in seconds, in the calling thread and in order. ``paint``, where given, gets each
    frame with what ``frame_fn`` returned for it, in order, on the encoding side, and returns
    the frame to encode: work that needs no state from later frames can run there beside the
    next ``frame_fn``. ``progress`` gets 0..1 at most every ``PROGRESS_EVERY_S`` seconds and
    1.0 at the end (in the calling thread); ``cancel`` set stops within a frame with
    :class:`JobCancelledError`. ``overlap``: decode, and paint and encode, on threads of their
    own beside ``frame_fn`` (None: where this process has more than one core,
    ``core.threads``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown video kind {kind!r}: choose one of {', '.join(KINDS)}")
    if not isinstance(output, (str, Path)):
        # faststart moves the index to the front by reading the file back by its name, which
        # an in-memory file has not: write to a temporary file, then copy
        with tempfile.TemporaryDirectory(prefix="facemask-") as tmp:
            path = Path(tmp) / "out.mp4"
            done = transcode(
                source, frame_fn, path, kind=kind, max_duration_s=max_duration_s,
                progress=progress, cancel=cancel, paint=paint, overlap=overlap,
            )  # fmt: skip
            with path.open("rb") as f:
                shutil.copyfileobj(f, output)
            return done
    if overlap is None:
        from core import threads

        overlap = threads.count() > 1
    with _checked(source, max_duration_s) as (container, info):
        keep_audio = info.has_audio and kind != "animation"
        copy_audio = keep_audio and info.audio_codec in COPIED_AUDIO
        demuxed = _Demuxed(container, info, max_duration_s, cancel, audio=keep_audio)
        reader = _Reader(demuxed, kind, copy_audio)
        stream_rate = demuxed.video.average_rate or demuxed.video.guessed_rate
        ticker = _Progress(progress, info.frames, PROGRESS_EVERY_S)
        out = av.open(str(output), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            writer = _Writer(out, demuxed, stream_rate or Fraction(30), copy_audio, paint, overlap)
            run = _overlapped if overlap else _serial
            run(reader, frame_fn, writer, ticker, cancel)
        except BaseException:
            _close_quietly(out)
            raise
        out.close()
    geometry = reader.geometry
    assert geometry is not None  # _Demuxed raises EmptyVideoError without a frame
    n, first_t, last_t = demuxed.frames, reader.first_t, reader.last_t
    if stream_rate:
        fps = float(stream_rate)
        duration = (last_t - first_t) + 1 / fps
    else:  # the header does not say: from the timestamps
        fps = (n - 1) / (last_t - first_t) if n > 1 and last_t > first_t else 0.0
        duration = (last_t - first_t) + (1 / fps if fps else 0.0)
    ticker.done()
    return Transcoded(
        geometry.width, geometry.height, fps, n, duration, writer.a_out is not None,
        geometry.scaled_down, demuxed.complete, kind,
    )  # fmt: skip


class _Reader:
    """The input side: ("video", (RGB frame fitted to the output, pts), t) and ("audio",
    packet to copy, or audio frames to encode, 0.0) in file order."""

    def __init__(self, demuxed: _Demuxed, kind: str, copy_audio: bool) -> None:
        self.demuxed = demuxed
        self.kind = kind
        self.copy_audio = copy_audio
        self.geometry: Geometry | None = None  # known at the first frame (a phone's rotation)
        self.first_t = self.last_t = 0.0

    def __iter__(self) -> Iterator[tuple[str, object, float]]:
        for item, payload, t in self.demuxed:
            if item == "audio":
                yield "audio", payload if self.copy_audio else _decode_audio(payload), t
                continue
            frame, pts = payload
            rgb = _upright(frame)
            if self.geometry is None:
                self.geometry = output_geometry(rgb.shape[1], rgb.shape[0], self.kind)
                self.first_t = t
            self.last_t = t
            yield "video", (fit_frame(rgb, self.geometry), pts), t


class _Writer:
    """The output side: masked frames into libx264 and the audio beside them, into the MP4.

    The output's size is known at the first frame, and the file's header is written at the
    first packet: audio that comes first waits for it."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        demuxed: _Demuxed,
        rate: Fraction,
        copy_audio: bool,
        paint: PaintFn | None,
        overlap: bool,
    ) -> None:
        self.out = out
        self.paint = paint
        self.tb = demuxed.video.time_base or Fraction(1, 1000)
        self.v_out = out.add_stream("libx264", rate=rate)  # rate: the encoder's settings only
        self.v_out.pix_fmt = "yuv420p"
        self.v_out.codec_context.time_base = self.tb  # the input's timestamps go through
        self.v_out.options = encoder_options(overlap)
        self.copy_audio = copy_audio
        self.a_out = None
        a_in = demuxed.audio
        if a_in is not None:
            if copy_audio:
                self.a_out = out.add_stream_from_template(a_in)
            else:
                self.a_out = out.add_stream("aac", rate=a_in.codec_context.sample_rate or 48000)
                self.a_out.layout = "mono" if a_in.codec_context.channels == 1 else "stereo"
        self.waiting: list[object] | None = []  # None once the first frame is in

    def audio(self, payload: object) -> None:
        if self.waiting is not None:
            self.waiting.append(payload)
            return
        if self.copy_audio:
            payload.stream = self.a_out
            self.out.mux(payload)
            return
        for frame in payload:
            self.out.mux(self.a_out.encode(frame))

    def video(self, rgb: np.ndarray, made: Any, pts: int) -> None:
        """A frame and what the frame function made of it."""
        rgb = self.paint(rgb, made) if self.paint is not None else made
        if self.waiting is not None:
            self.v_out.width, self.v_out.height = rgb.shape[1], rgb.shape[0]
            waiting, self.waiting = self.waiting, None
            for payload in waiting:
                self.audio(payload)
        encode_frame(self.out, self.v_out, rgb, pts, self.tb)

    def finish(self) -> None:
        """The encoders' last packets (a file without a frame has nothing to finish)."""
        if self.waiting is not None:
            return
        encode_frame(self.out, self.v_out, None, None, self.tb)
        if self.a_out is not None and not self.copy_audio:
            self.out.mux(self.a_out.encode(None))


def _serial(
    reader: _Reader,
    frame_fn: FrameFn,
    writer: _Writer,
    ticker: _Progress,
    cancel: threading.Event | None,
) -> None:
    """Read, mask and write each frame in turn, in this thread: one core's way."""
    done = 0
    for item, payload, t in reader:
        if item == "audio":
            writer.audio(payload)
            continue
        rgb, pts = payload
        writer.video(rgb, frame_fn(rgb, t), pts)
        done += 1
        ticker.frame(done)
    writer.finish()


# Frames waiting between the reading thread and frame_fn, and between frame_fn and the
# writing thread: enough to ride out one slow frame (a search), few enough that memory does
# not grow (a 1280x720 frame is 2.8 MB)
QUEUE_FRAMES = 4
_END = ("end", None, 0.0)
_POLL_S = 0.05  # how often a waiting thread looks whether the job was stopped


class _Stopped(Exception):
    """The other side of a queue stopped (its error, or the caller's, says why)."""


def _waiting(step: Callable, stop: threading.Event, busy: type[Exception]):
    """``step(timeout=...)`` again until it goes through, or raise :class:`_Stopped` once
    ``stop`` is set (looked at every ``_POLL_S``)."""
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            return step(timeout=_POLL_S)
        except busy:
            continue


def _put(q: queue.Queue, item: tuple, stop: threading.Event) -> None:
    _waiting(lambda timeout: q.put(item, timeout=timeout), stop, queue.Full)


def _get(q: queue.Queue, stop: threading.Event) -> tuple:
    return _waiting(q.get, stop, queue.Empty)


def _overlapped(
    reader: _Reader,
    frame_fn: FrameFn,
    writer: _Writer,
    ticker: _Progress,
    cancel: threading.Event | None,
) -> None:
    """:func:`_serial` with decoding, and painting and encoding, each on a thread of its own,
    so that they run on the second core while this thread works (libavcodec, libswscale and ONNX
    Runtime let go of the GIL while they work). The same order, progress and cancel; an
    error on either thread is raised here, and both threads are ended and joined before
    this returns or raises, whatever happened."""
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    masked: queue.Queue = queue.Queue(QUEUE_FRAMES)

    def read() -> None:
        items = iter(reader)
        try:
            for item in items:
                _put(decoded, item, stop)
            _put(decoded, _END, stop)
        except _Stopped:
            pass
        except BaseException as err:  # handed to the calling thread, in its place in line
            try:
                _put(decoded, ("error", err, 0.0), stop)
            except _Stopped:
                pass
        finally:
            items.close()  # here, while the caller keeps the input open for this thread

    def write() -> None:
        try:
            while (item := _get(masked, stop)) is not _END:
                if item[0] == "audio":
                    writer.audio(item[1])
                else:
                    writer.video(*item[1])
            writer.finish()
        except _Stopped:
            pass
        except BaseException as err:
            errors.append(err)
            stop.set()

    reading = threading.Thread(target=read, name="video-decode", daemon=True)
    writing = threading.Thread(target=write, name="video-encode", daemon=True)
    reading.start()
    writing.start()
    try:
        done = 0
        while True:
            item, payload, t = _get(decoded, stop)
            if item == "end":
                break
            if item == "error":
                raise payload
            if item == "video":
                if cancel is not None and cancel.is_set():
                    raise JobCancelledError()
                rgb, pts = payload
                payload = (rgb, frame_fn(rgb, t), pts)
                done += 1
                ticker.frame(done)
            _put(masked, (item, payload, t), stop)
        _put(masked, _END, stop)
        writing.join()
    except _Stopped:
        pass  # the writing thread failed: its error is raised below
    finally:
        stop.set()
        reading.join()
        writing.join()
    if errors:
        raise errors[0]


def encoder_options(overlap: bool = False) -> dict[str, str]:
    """libx264's settings: ``PRESET``, ``CRF`` and ``x264_params()``, on this process's
    threads (``core.threads``): one thread where a worker has one core. ``overlap``: the
    encoder has a thread of its own beside the caller's, which keeps a core busy: it gets
    the others (on two cores its own thread only: x264's frame threads cost CPU there and
    did not shorten the wall time, docs/experiments/video-speed.md)."""
    from core import threads

    cores = threads.count()
    return {
        "preset": PRESET,
        "crf": str(CRF),
        "x264-params": x264_params(),
        "threads": str(max(1, cores - 1) if overlap else cores),
    }


def encode_frame(
    out: av.container.OutputContainer,
    stream: av.video.stream.VideoStream,
    rgb: np.ndarray | None,
    pts: int | None,
    tb: Fraction,
) -> None:
    """One RGB frame into the encoder (None: flush it), its packets into the file."""
    if rgb is None:
        out.mux(stream.encode(None))
        return
    frame = yuv420_frame(rgb)
    frame.pts, frame.time_base = pts, tb
    out.mux(stream.encode(frame))


def yuv420_frame(rgb: np.ndarray) -> av.VideoFrame:
    """An RGB frame as the encoder takes it (yuv420p). OpenCV's I420 is BT.601 in limited
    range as FFmpeg's own conversion (chroma averaged over 2 x 2 pixels, which FFmpeg filters
    a little differently at edges) and much cheaper than FFmpeg's inside the encoder
    (docs/experiments/video-speed.md, round 4); odd sides (I420 needs even ones) are left to
    FFmpeg."""
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        return av.VideoFrame.from_ndarray(rgb, format="rgb24")
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


def _close_quietly(out: av.container.OutputContainer) -> None:
    try:
        out.close()
    except av.FFmpegError:  # nothing written yet: no header to finish
        pass


def _decode_audio(packet: av.Packet) -> list[av.AudioFrame]:
    """An audio packet's frames, for the AAC encoder (a damaged packet: none)."""
    try:
        decoded = packet.decode()
    except av.FFmpegError as err:  # one damaged audio packet: a click, not a lost video
        log.warning("skipping an audio packet: %s", err)
        return []
    for frame in decoded:
        frame.pts = None  # the encoder's resampler numbers the samples itself
    return decoded
