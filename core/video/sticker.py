"""A video's largest face, masked, as a Telegram video sticker: the head cut out on
transparency with a white outline, moving as it moves.

Telegram's rules for a video sticker: WebM with VP9, 512 px on the long side (the other at
most 512), at most 3 s, at most 30 frames a second, no sound, at most 256 KB. So:

1. the first :data:`MAX_SECONDS` of the video are decoded and its faces tracked
   (:mod:`core.video.tracking`, as for masking), frames thinned to :data:`MAX_FPS`;
2. the face with the largest area over those frames is the sticker's; its head outline in
   every frame is the photo sticker's (:func:`core.render.sticker.head_outline`), and the box
   around all of them, scaled to 512 px, is the sticker's frame: the head moves inside it
   instead of the frame following (and shaking with) the head;
3. on those frames again, the mask put on that face only (the video path's
   :class:`~core.video.masking.TrackPainter`), the head cut out (anti-aliased polygons, no
   blur: a blur per frame cost more than the rest of the cut-out), laid on a white outline;
4. VP9 with an alpha plane (yuva420p) at a bitrate made for the size limit, encoded again at
   a lower one if the file is still over :data:`MAX_BYTES`.

The frames of step 1 are kept for step 3 up to :data:`KEEP_BYTES` (a 640 px note's three
seconds); a larger video is decoded twice rather than held (a 1280 px video's would take
~250 MB).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from core.errors import NoFaceInVideoError
from core.render.sticker import head_outline
from core.render.warp import MaskPicture
from core.results import MaskedVideo, Mode
from core.video.codec import MAX_DURATION_S, VideoInput, frames
from core.video.masker import VideoMasker
from core.video.masking import TrackPainter
from core.video.tracking import (
    DETECT_EVERY,
    FaceTracker,
    TrackedFace,
    frame_motion,
    masker_callables,
)

log = logging.getLogger(__name__)

#: Telegram's rules for a video sticker
SIDE = 512
MAX_BYTES = 256 * 1024
MAX_SECONDS = 3.0
MAX_FPS = 30.0
#: the outline and its margin, in pixels of the 512 px sticker (as the photo sticker's)
OUTLINE_PX = 10
MARGIN_PX = OUTLINE_PX + 6
#: the first try's bitrate, as a share of what the size limit allows over the clip's length:
#: libvpx's realtime rate control overshoots on noisy phone video, and the alpha plane is a
#: second VP9 stream on top (see docs/features.md, "Moving stickers")
FIRST_SHARE = 0.45
#: each retry's bitrate: the last one times (limit / size) times this
RETRY_MARGIN = 0.85
MAX_TRIES = 4
#: libvpx-vp9 for a few seconds of 512 px on one or two cores: realtime at its fastest speed
#: encodes 90 frames in ~0.6 s ("good" took ~6 s); no look-ahead (alt-ref frames and alpha
#: do not mix well in libvpx, and look-ahead only delays the packets here)
VP9_OPTIONS = {
    "deadline": "realtime",
    "cpu-used": "8",
    "row-mt": "1",
    "lag-in-frames": "0",
    "auto-alt-ref": "0",
}
#: faces are found and followed in the frame scaled down to this long side (points scaled back):
#: detection and the frame's motion cost with the frame's area, and a 512 px sticker of a
#: head needs no more (a 640 px note's tracking ~0.75 -> ~0.45 s for 3 s; see the bench)
TRACK_SIDE = 400
#: the first pass keeps the frames for the second while they take at most this (a 640 px
#: note's 90 frames: 110 MB); larger videos are decoded twice (three seconds of a 640 px
#: note decode and convert to RGB in ~0.4 s of CPU on a loaded machine)
KEEP_BYTES = 128 * 2**20
#: the sticker's frame times: milliseconds (WebM's own time base)
TIME_BASE = Fraction(1, 1000)

ProgressFn = Callable[[float], None]


@dataclass(frozen=True)
class _Layout:
    """Where the sticker's frame lies in the video's frames and how it is scaled."""

    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in the video's frames
    scale: float  # video pixels -> sticker pixels
    shift: tuple[float, float]  # added after scaling the crop's pixels
    width: int  # the sticker's size: the long side SIDE, both even
    height: int


def make_video_sticker(
    masker: VideoMasker,
    source: VideoInput,
    mask_id: int | None,
    mode: Mode | str = Mode.FACES,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    max_duration_s: float = MAX_DURATION_S,
) -> MaskedVideo:
    """:meth:`core.api.FaceMasker.video_sticker`: the WebM sticker of the largest face (with
    mask ``mask_id``; None: the bare face), as a :class:`MaskedVideo` of kind "sticker"."""
    started = time.perf_counter()
    picture = masker.picture(mask_id) if mask_id is not None else None  # unknown: fails first
    times, tracked, kept = _track(masker, source, Mode(mode), max_duration_s, cancel, progress)
    track_id, seen = _largest(tracked)
    points = _held(tracked, track_id)
    layout = _layout([head_outline(p) for p in points])
    if kept is None:  # too large to keep: decoded again
        kept = (rgb for rgb, _ in _kept_frames(source, max_duration_s, cancel))
    vp9_frames = _cut_out(kept, times, points, track_id, layout, picture)
    _report(progress, 0.8)
    clip_s = _clip_seconds(times)
    data = encode_webm(vp9_frames, times, layout.width, layout.height, clip_s)
    ms = (time.perf_counter() - started) * 1000
    fps = len(times) / clip_s
    log.info(
        "video sticker of mask %s: %dx%d, %d frames, %.2f s, %d bytes, %.0f ms",
        mask_id, layout.width, layout.height, len(times), clip_s, len(data), ms,
    )  # fmt: skip
    _report(progress, 1.0)
    return MaskedVideo(
        data, layout.width, layout.height, round(fps, 3), len(times), round(clip_s, 3), False,
        round(seen / len(times), 3), ms, False, "sticker", True,
    )  # fmt: skip


# ----------------------------------------------------------------------------- pass one


def _kept_frames(
    source: VideoInput, max_duration_s: float, cancel: threading.Event | None
) -> Iterator[tuple[np.ndarray, float]]:
    """(RGB frame, t) of the first MAX_SECONDS, thinned so that no two are closer than
    1 / MAX_FPS (a 60 fps video keeps every other frame)."""
    first: float | None = None
    next_t = -np.inf
    for rgb, t in frames(source, max_duration_s=max_duration_s, cancel=cancel):
        first = t if first is None else first
        if t - first > MAX_SECONDS - 1 / MAX_FPS + 1e-3:  # the last frame must end by 3 s
            return
        if t >= next_t - 1e-3:
            next_t = t + 1 / MAX_FPS
            yield rgb, t


def _track(
    masker: VideoMasker,
    source: VideoInput,
    mode: Mode,
    max_duration_s: float,
    cancel: threading.Event | None,
    progress: ProgressFn | None,
) -> tuple[list[float], list[list[TrackedFace]], list[np.ndarray] | None]:
    """The kept frames' times, the faces tracked in each, and the frames themselves (None
    where they would take more than :data:`KEEP_BYTES`)."""
    detect, follow = masker_callables(masker, mode)
    # in Mode.WHOLE the frame is the one face: searched again only when it is lost
    every = DETECT_EVERY if mode is Mode.FACES else 1 << 30
    tracker = FaceTracker(detect, follow, motion=frame_motion, detect_every=every)
    times: list[float] = []
    tracked: list[list[TrackedFace]] = []
    kept: list[np.ndarray] | None = []
    held = 0
    for rgb, t in _kept_frames(source, max_duration_s, cancel):
        held += rgb.nbytes
        if kept is not None:
            kept = kept if held <= KEEP_BYTES else None
        if kept is not None:
            kept.append(rgb)
        scale = min(1.0, TRACK_SIDE / max(rgb.shape[:2]))
        if scale < 1.0:
            size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            faces = [
                TrackedFace(f.track_id, f.points / scale, f.raw / scale)
                for f in tracker.update(small, t)
            ]
        else:
            faces = tracker.update(rgb, t)
        tracked.append(faces)
        times.append(t)
        _report(progress, 0.45 * (t - times[0]) / MAX_SECONDS)
    if not any(tracked):
        raise NoFaceInVideoError()
    return times, tracked, kept


def _largest(tracked: list[list[TrackedFace]]) -> tuple[int, int]:
    """The track with the largest face area summed over the frames, and in how many it is."""
    area: dict[int, float] = {}
    seen: dict[int, int] = {}
    for faces in tracked:
        for face in faces:
            x0, y0 = face.points.min(axis=0)
            x1, y1 = face.points.max(axis=0)
            area[face.track_id] = area.get(face.track_id, 0.0) + float((x1 - x0) * (y1 - y0))
            seen[face.track_id] = seen.get(face.track_id, 0) + 1
    best = max(area, key=area.__getitem__)
    return best, seen[best]


def _held(tracked: list[list[TrackedFace]], track_id: int) -> list[np.ndarray]:
    """The track's points in every frame; a frame that lost it keeps the nearest reading (the
    last before it, or before the first, the first)."""
    points: list[np.ndarray | None] = [
        next((f.points for f in faces if f.track_id == track_id), None) for faces in tracked
    ]
    first = next(p for p in points if p is not None)
    last = first
    held = []
    for p in points:
        last = p if p is not None else last
        held.append(np.asarray(last, np.float64))
    return held


def _layout(outlines: list[np.ndarray]) -> _Layout:
    """The box around every frame's head outline, scaled so its long side (with the outline's
    margin) is SIDE."""
    corners = np.vstack(outlines)
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    long_side = max(x1 - x0, y1 - y0, 1.0)
    scale = (SIDE - 2 * MARGIN_PX) / long_side
    width = min(SIDE, int(round((x1 - x0) * scale)) + 2 * MARGIN_PX)
    height = min(SIDE, int(round((y1 - y0) * scale)) + 2 * MARGIN_PX)
    if width >= height:  # Telegram wants the long side at exactly 512
        width, height = SIDE, max(2, height // 2 * 2)  # VP9's 4:2:0 wants even sides
    else:
        width, height = max(2, width // 2 * 2), SIDE
    # the video pixels that land in the sticker (a pixel more each side, for interpolation)
    cx0, cy0 = int(np.floor(x0 - MARGIN_PX / scale)) - 1, int(np.floor(y0 - MARGIN_PX / scale)) - 1
    cx1 = int(np.ceil(cx0 + width / scale)) + 3
    cy1 = int(np.ceil(cy0 + height / scale)) + 3
    shift = (MARGIN_PX - (x0 - cx0) * scale, MARGIN_PX - (y0 - cy0) * scale)
    return _Layout((cx0, cy0, cx1, cy1), scale, shift, width, height)


# ----------------------------------------------------------------------------- pass two


def _cut_out(
    kept: Iterable[np.ndarray],
    times: list[float],
    points: list[np.ndarray],
    track_id: int,
    layout: _Layout,
    picture: MaskPicture | None,
) -> list[av.VideoFrame]:
    """Every kept frame of the sticker, ready for VP9."""
    painter = TrackPainter(picture) if picture is not None else None
    out: list[av.VideoFrame] = []
    for n, rgb in enumerate(kept):
        if n >= len(times):
            break
        crop, offset = _crop(rgb, layout.crop)
        face_points = (points[n] - offset).astype(np.float32)
        if painter is not None:
            crop = painter.paint(crop, [TrackedFace(track_id, face_points, face_points)])
        out.append(_sticker_frame(crop, face_points, layout, offset))
    if len(out) < len(times):  # the same bytes decode the same: a bug if they did not
        raise RuntimeError(f"{len(out)} frames the second time, {len(times)} the first")
    return out


def _crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``rgb`` inside ``box`` (clipped to the frame) and its top-left corner."""
    h, w = rgb.shape[:2]
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(w, box[2]), min(h, box[3])
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.array([x0, y0], np.float64)


def _sticker_frame(
    crop: np.ndarray, points: np.ndarray, layout: _Layout, offset: np.ndarray
) -> av.VideoFrame:
    """One frame of the sticker: the head cut out of ``crop`` on a white outline."""
    cx0, cy0 = layout.crop[:2]
    # crop pixel -> sticker pixel: the crop's corner is `offset`, the layout's is (cx0, cy0)
    sx = layout.shift[0] + (offset[0] - cx0) * layout.scale
    sy = layout.shift[1] + (offset[1] - cy0) * layout.scale
    affine = np.array([[layout.scale, 0, sx], [0, layout.scale, sy]], np.float32)
    size = (layout.width, layout.height)
    source = crop
    if layout.scale < 0.5:  # a downscale reads many pixels per sticker pixel: smooth first
        source = cv2.GaussianBlur(crop, (0, 0), 0.5 / layout.scale * 0.6)
    canvas = cv2.warpAffine(source, affine, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    # the head, clipped to the frame (no invented pixels where it leaves the video)
    polygon = head_outline(points).astype(np.float32)
    frame_box = np.array(
        [[0, 0], [crop.shape[1], 0], [crop.shape[1], crop.shape[0]], [0, crop.shape[0]]],
        np.float32,
    )
    area, clipped = cv2.intersectConvexConvex(polygon, frame_box)
    if area <= 1 or clipped is None:  # the head left the video: a transparent frame
        return _yuva(np.full_like(canvas, 255), np.zeros(canvas.shape[:2], np.uint8))
    polygon = clipped.reshape(-1, 2).astype(np.float64) * layout.scale + (sx, sy)
    fixed = [np.round(polygon * 16).astype(np.int32)]
    face = np.zeros((layout.height, layout.width), np.uint8)
    cv2.fillPoly(face, fixed, 255, cv2.LINE_AA, shift=4)
    # the outline: the head grown by OUTLINE_PX all round (a thick line along its edge)
    alpha = face.copy()
    cv2.polylines(alpha, fixed, True, 255, 2 * OUTLINE_PX, cv2.LINE_AA, shift=4)
    white = np.full_like(canvas, 255)
    weight = face.astype(np.float32) / 255
    colour = cv2.blendLinear(canvas, white, weight, 1 - weight)
    return _yuva(colour, alpha)


# ----------------------------------------------------------------------------- encoding


def encode_webm(
    vp9_frames: list[av.VideoFrame], times: list[float], width: int, height: int, clip_s: float
) -> bytes:
    """yuva420p frames as VP9 with alpha in WebM, within MAX_BYTES: encoded again at a lower
    bitrate while over it."""
    bitrate = MAX_BYTES * 8 / max(clip_s, 0.1) * FIRST_SHARE
    data = b""
    for attempt in range(1, MAX_TRIES + 1):
        data = _encode(vp9_frames, times, width, height, int(bitrate))
        if len(data) <= MAX_BYTES:
            return data
        log.info(
            "video sticker of %d bytes at %.0f kbit/s (try %d): encoding again",
            len(data), bitrate / 1000, attempt,
        )  # fmt: skip
        bitrate *= MAX_BYTES / len(data) * RETRY_MARGIN
    raise RuntimeError(f"a video sticker of {len(data)} bytes after {MAX_TRIES} tries")


def _yuva(rgb: np.ndarray, alpha: np.ndarray) -> av.VideoFrame:
    """RGB and its alpha as a yuva420p frame: OpenCV's I420 is BT.601 in limited range, as
    FFmpeg's own conversion (within 2 levels) and libvpx's default, and costs a tenth of
    stacking RGBA and converting that."""
    height, width = alpha.shape
    flat = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)  # Y, then U, then V
    luma, chroma = height * width, (height // 2) * (width // 2)
    planes = (
        flat[:luma].reshape(height, width),
        flat[luma : luma + chroma].reshape(height // 2, width // 2),
        flat[luma + chroma :].reshape(height // 2, width // 2),
        alpha,
    )
    frame = av.VideoFrame(width, height, "yuva420p")
    for plane, pixels in zip(frame.planes, planes, strict=True):
        rows, cols = pixels.shape
        if plane.line_size != cols:  # the frame's rows are padded for alignment
            padded = np.zeros((rows, plane.line_size), np.uint8)
            padded[:, :cols] = pixels
            pixels = padded
        plane.update(np.ascontiguousarray(pixels))
    return frame


def _encode(
    vp9_frames: list[av.VideoFrame], times: list[float], width: int, height: int, bitrate: int
) -> bytes:
    from core import threads

    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=round(MAX_FPS))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuva420p"
        stream.bit_rate = bitrate
        stream.codec_context.time_base = TIME_BASE
        stream.options = {**VP9_OPTIONS, "threads": str(threads.count())}
        first = times[0]
        last_pts = -1
        for frame, t in zip(vp9_frames, times, strict=True):
            pts = max(last_pts + 1, round((t - first) / TIME_BASE))
            frame.pts, frame.time_base, last_pts = pts, TIME_BASE, pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def _clip_seconds(times: list[float]) -> float:
    """The sticker's length: its frames' span and one more mean step (at most MAX_SECONDS)."""
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1 / MAX_FPS
    return min(MAX_SECONDS, times[-1] - times[0] + step)


def _report(progress: ProgressFn | None, fraction: float) -> None:
    if progress is not None:
        progress(min(1.0, max(0.0, fraction)))
