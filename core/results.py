"""What a masking call takes and gives back, in plain types (numpy only, no torch, no cv2).

:class:`MaskedPhoto` is the one result type: :meth:`core.api.FaceMasker.apply` returns it, and
the serving layer sends it across processes and Redis as it is, so the bot reads the same
object the core made.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from core.errors import UnknownModeError


class Mode(StrEnum):
    """How a photo's faces are found."""

    #: find every face in the photo and mask each one (the seed's ``crop=True``)
    FACES = "faces"
    #: the whole photo is one face, for close-ups the detector cannot frame (``crop=False``)
    WHOLE = "whole"

    @classmethod
    def from_crop(cls, crop: bool) -> Mode:
        """The seed's boolean ``crop`` argument as a mode."""
        return cls.FACES if crop else cls.WHOLE

    @classmethod
    def _missing_(cls, value: object) -> Mode:
        # Mode("bogus") from a caller: the project's typed error, not the enum's ValueError
        raise UnknownModeError(
            f"There is no mode {value!r}: choose "
            + " or ".join(repr(m.value) for m in cls)
            + "."
        )


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in input pixels
    points: np.ndarray  # (68, 2) float32, input pixels


@dataclass(frozen=True)
class MaskedPhoto:
    """A masked photo: the encoded picture and what a caption or a log line needs."""

    image: bytes  # encoded, same format family as the input
    format: str  # "JPEG" | "PNG" | "WEBP"
    width: int
    height: int
    faces: tuple[Face, ...]
    ms: float  # wall time of the masking call

    @property
    def face_count(self) -> int:
        return len(self.faces)

    def __repr__(self) -> str:  # job queues log their results: never the picture's bytes
        return (
            f"MaskedPhoto({self.format} {self.width}x{self.height}, {len(self.image)} bytes, "
            f"{len(self.faces)} faces, {self.ms:.0f} ms)"
        )


@dataclass(frozen=True)
class MaskedVideo:
    """A masked video (H.264 in MP4) and what a caption or a log line needs.

    Plain types only, like :class:`MaskedPhoto`: it crosses process boundaries as it is.
    """

    data: bytes  # the MP4 file
    width: int
    height: int
    fps: float  # average frame rate of the output (the input's)
    frames: int
    duration_s: float
    has_audio: bool
    faces_mean: float  # faces masked per frame, on average
    ms: float  # wall time of the masking call
    scaled_down: bool = False  # the input was larger than the output (long side > 1280 px)
    kind: str = "video"  # "video" | "video_note" | "animation"
    complete: bool = True  # False: the file was cut off; these are the frames before the cut

    def __repr__(self) -> str:  # job queues log their results: never the video's bytes
        sound = "with audio" if self.has_audio else "no audio"
        return (
            f"MaskedVideo({self.kind} {self.width}x{self.height}, {self.frames} frames at "
            f"{self.fps:.2f} fps, {self.duration_s:.2f} s, {sound}, {len(self.data)} bytes, "
            f"{self.faces_mean:.2f} faces a frame, {self.ms:.0f} ms)"
        )
