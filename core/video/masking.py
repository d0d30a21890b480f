"""The mask on every face of every frame: the codec's frame function over the face tracker."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from core.errors import NoFaceInVideoError
from core.render import warp
from core.results import MaskedVideo, Mode
from core.video.codec import MAX_DURATION_S, VideoInput, frames, transcode
from core.video.masker import VideoMasker
from core.video.tracking import DETECT_EVERY, FaceTracker, masker_callables

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
) -> MaskedVideo:
    """:meth:`core.api.FaceMasker.apply_video`: the mask on every face of every frame."""
    started = time.perf_counter()
    picture = masker.picture(mask_id)  # an unknown mask fails before any work
    tracker = _tracker(masker, mode, smooth)
    faces_seen = 0

    def mask_frame(rgb: np.ndarray, t: float) -> np.ndarray:
        nonlocal faces_seen
        faces = tracker.update(rgb, t)
        faces_seen += len(faces)
        if not faces:
            return rgb
        return warp.apply_masks(rgb, picture, [f.points for f in faces])

    buf = io.BytesIO()
    done = transcode(
        source, mask_frame, buf, kind=kind, max_duration_s=max_duration_s,
        progress=progress, cancel=cancel,
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
    return FaceTracker(detect, follow, detect_every=every, smooth=smooth)
