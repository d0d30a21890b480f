"""The mask on every face of every frame: the codec's frame function over the face tracker."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from core.errors import NoFaceInVideoError
from core.render import cover, warp
from core.render.style import Style
from core.results import MaskedVideo, Mode
from core.video.codec import MAX_DURATION_S, VideoInput, frames, transcode
from core.video.masker import VideoMasker
from core.video.tracking import (
    DETECT_EVERY,
    FaceTracker,
    TrackedFace,
    frame_motion,
    masker_callables,
)

log = logging.getLogger(__name__)


def mask_video(
    masker: VideoMasker,
    source: VideoInput,
    mask_id: int,
    mode: Mode | str = Mode.FACES,
    *,
    kind: str = "video",
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    max_duration_s: float = MAX_DURATION_S,
    smooth: bool = True,
    style: Style | str | None = None,
) -> MaskedVideo:
    """:meth:`core.api.FaceMasker.apply_video`: the mask on every face of every frame, in
    ``style`` (the photo path's restyled picture: the same warp and light)."""
    started = time.perf_counter()
    # an unknown mask or style fails before any work
    picture = masker.picture(mask_id, style)
    tracker = _tracker(masker, mode, smooth)
    painter = TrackPainter(picture)
    faces_seen = 0

    def find_faces(rgb: np.ndarray, t: float) -> list[TrackedFace]:
        nonlocal faces_seen
        faces = tracker.update(rgb, t)
        faces_seen += len(faces)
        return faces

    buf = io.BytesIO()
    # the tracker needs the frames before; the painter only this one's faces (and the light
    # it keeps), so it draws on the encoding side, beside the next frame's tracking
    done = transcode(
        source, find_faces, buf, kind=kind, max_duration_s=max_duration_s,
        progress=progress, cancel=cancel, paint=painter.paint,
    )  # fmt: skip
    if faces_seen == 0:
        raise NoFaceInVideoError()
    ms = (time.perf_counter() - started) * 1000
    log.info(
        "mask %d on %s: %d frames, %.2f faces a frame, %d searches, %.0f ms",
        mask_id, kind, done.frames, faces_seen / done.frames, tracker.searches, ms,
    )  # fmt: skip
    return MaskedVideo(
        buf.getvalue(), done.width, done.height, round(done.fps, 3), done.frames,
        round(done.duration_s, 3), done.has_audio, round(faces_seen / done.frames, 3), ms,
        done.scaled_down, kind, done.complete,
    )  # fmt: skip


def video_landmarks(
    masker: VideoMasker,
    source: VideoInput,
    mode: Mode | str = Mode.FACES,
    *,
    max_duration_s: float = MAX_DURATION_S,
    cancel: threading.Event | None = None,
    smooth: bool = True,
) -> list[list[tuple[int, np.ndarray]]]:
    """:meth:`core.api.FaceMasker.landmarks_video`: per frame, every face's (track id,
    (68, 2) points) in the input's own pixels (upright)."""
    tracker = _tracker(masker, mode, smooth)
    out = [
        [(f.track_id, f.points) for f in tracker.update(rgb, t)]
        for rgb, t in frames(source, max_duration_s=max_duration_s, cancel=cancel)
    ]
    if not any(out):
        raise NoFaceInVideoError()
    return out


def _tracker(masker: VideoMasker, mode: Mode | str, smooth: bool) -> FaceTracker:
    mode = Mode(mode)
    detect, follow = masker_callables(masker, mode)
    # the whole frame is the one face: searched again only when it is lost
    every = DETECT_EVERY if mode is Mode.FACES else 1 << 30
    return FaceTracker(detect, follow, motion=frame_motion, detect_every=every, smooth=smooth)


# The scene's light (``warp.scene_light``) is read every this many frames and eased in by
# LIGHT_WEIGHT: light changes slowly, and a reading per frame only adds the noise's flicker.
LIGHT_EVERY = 15
LIGHT_WEIGHT = 0.3
# Whether a face already wears a mask (``cover.wears_mask``) is asked when its track starts
# and again every this many frames; a bare face (the usual case) then costs nothing more.
COVER_EVERY = 30
# A face wider than this is drawn and lit at this width, then resampled to its own: the
# drawing's cost then stops growing with the face (docs/experiments/video-speed.md).
MAX_FACE_PX = 200.0


class TrackPainter:
    """The photo path's drawing (``warp.apply_masks``), frame after frame: what changes
    slowly (the scene's light, whether a face wears a mask) is kept per video and per track
    instead of worked out again for every frame."""

    def __init__(self, picture: warp.MaskPicture) -> None:
        self.picture = picture
        self.frame = 0
        self.light: tuple[float, np.ndarray] | None = None
        self.wears: dict[int, tuple[bool, int]] = {}  # track id -> (wears a mask, frame asked)

    def paint(self, rgb: np.ndarray, faces: list[TrackedFace]) -> np.ndarray:
        frame, self.frame = self.frame, self.frame + 1
        if not faces:
            return rgb
        if self.light is None or frame % LIGHT_EVERY == 0:
            exposure, tint = warp.scene_light(rgb)
            if self.light is not None:
                w = LIGHT_WEIGHT
                exposure = self.light[0] + w * (exposure - self.light[0])
                tint = self.light[1] + w * (tint - self.light[1])
            self.light = (exposure, tint)
        out = rgb.copy()
        for face in faces:
            overlay = warp.warp_mask(
                self.picture, face.points, rgb.shape[:2], MAX_FACE_PX, video=True
            )
            if overlay is None:
                continue
            wears, asked = self.wears.get(face.track_id, (False, -COVER_EVERY))
            if frame - asked >= COVER_EVERY:
                wears = cover.wears_mask(rgb, face.points)
                self.wears[face.track_id] = (wears, frame)
            worn = cover.outline_worn_mask(rgb, face.points) if wears else None
            if worn is not None:
                cover.hide(out, worn)
            lit_by = worn.lit(rgb) if worn is not None else None
            warp.composite(
                out, overlay, warp.face_width(face.points), *self.light, lit_by, video=True
            )
        return out
