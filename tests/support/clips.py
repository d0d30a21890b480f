"""Real clips for tests and measurements, encoded with PyAV: the astronaut's face (scikit-image)
drifting across the frame with fresh sensor noise each frame, as MP4 (H.264, optionally with an
AAC tone as long as the picture), GIF, or sound alone. tests/core/test_video.py uses them too.
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def face_frames(
    n: int, size: tuple[int, int] = (240, 180), drift: float = 1.0, noise: float = 3.0
) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (width, height): the astronaut's head and shoulders (eyes
    ~26 px apart at 240x180), moving ``drift`` px a frame to the right."""
    from skimage import data

    head = cv2.resize(data.astronaut()[0:300, 25:425], size, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        m = np.float32([[1, 0, drift * i - drift * n / 2], [0, 1, 0]])
        frame = cv2.warpAffine(head, m, size, borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8))
    return out


def encode(
    frames: list[np.ndarray],
    fps: int = 15,
    fmt: str = "mp4",
    codec: str = "libx264",
    audio: bool = False,
    faststart: bool = True,
) -> bytes:
    """The frames as a clip (a phone's MP4 has its index first: ``faststart``); ``audio`` adds
    a 440 Hz AAC tone as long as the picture."""
    if faststart and fmt == "mp4":  # moving the index reads the file back by its name
        with tempfile.TemporaryDirectory(prefix="facemask-clip-") as folder:
            path = Path(folder) / "clip.mp4"
            _write(str(path), frames, fps, fmt, codec, audio, {"movflags": "+faststart"})
            return path.read_bytes()
    out = io.BytesIO()
    _write(out, frames, fps, fmt, codec, audio, {})
    return out.getvalue()


def _write(
    target: io.BytesIO | str,
    frames: list[np.ndarray],
    fps: int,
    fmt: str,
    codec: str,
    audio: bool,
    options: dict[str, str],
) -> None:
    with av.open(target, "w", format=fmt, options=options) as c:
        v = c.add_stream(codec, rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if codec == "libx264":
            v.options = {"preset": "ultrafast"}
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
        for rgb in frames:
            c.mux(v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(v.encode(None))
        if a is not None:
            add_tone(c, a, len(frames) / fps)


def add_tone(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    """A 440 Hz tone of ``seconds`` into the audio ``stream``, flushed."""
    rate, total = 48000, round(48000 * seconds)
    for start in range(0, total, 960):
        k = min(960, total - start)
        t = np.arange(start, start + k) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def face_clip(
    seconds: float, fps: int = 15, size: tuple[int, int] = (240, 180), audio: bool = False
) -> bytes:
    """An MP4 of the moving astronaut."""
    return encode(face_frames(round(seconds * fps), size), fps=fps, audio=audio)


def face_gif(frames: int = 12, fps: int = 10, size: tuple[int, int] = (160, 120)) -> bytes:
    return encode(face_frames(frames, size), fps=fps, fmt="gif", codec="gif")


def audio_only(seconds: float = 1.0) -> bytes:
    """An MP4 holding a tone and no picture."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        add_tone(c, c.add_stream("aac", rate=48000), seconds)
    return out.getvalue()


def read_back(data: bytes) -> dict:
    """What a player sees in a file: size, frame count, rate, whether it has sound."""
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return {
            "size": (v.width, v.height),
            "frames": frames,
            "fps": float(v.average_rate),
            "codec": v.codec_context.name,
            "audio": c.streams.audio[0].codec_context.name if c.streams.audio else None,
        }
