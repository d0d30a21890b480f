"""Typed errors with messages a person understands.

Every failure that a user can cause (a bad file, no face) is one of these, so
callers such as the bot can show ``str(error)`` as it is and never a traceback.
"""

from __future__ import annotations


class FaceMaskError(Exception):
    """Base class: ``str(err)`` is a sentence fit to show to the person who sent the photo."""

    #: a short, stable machine-readable name (used by the bot and the JSON CLI output)
    code: str = "error"

    def __init__(self, message: str | None = None) -> None:
        # one line: a docstring's line breaks and indentation must not reach a chat
        super().__init__(" ".join((message or self.__doc__ or self.code).split()))


class NotAnImageError(FaceMaskError):
    """That file is not an image I can read. Please send a JPEG, PNG, WebP or GIF photo."""

    code = "not_an_image"


class EmptyImageError(NotAnImageError):
    """That file is empty (0 bytes). Please send the photo again."""

    code = "empty"


class TruncatedImageError(NotAnImageError):
    """That image file is cut off or damaged. Please send the photo again."""

    code = "truncated"


class ImageTooLargeError(FaceMaskError):
    """That image is too large for me. Please send a photo under 40 megapixels."""

    code = "too_large"


class ImageTooSmallError(FaceMaskError):
    """That image is too small to find a face in. Please send a bigger photo."""

    code = "too_small"


class NoFaceFoundError(FaceMaskError):
    """I could not find a face in that photo. Try a clearer, front-facing photo,
    or switch Crop off to treat the whole photo as one face."""

    code = "no_face"


class UnknownMaskError(FaceMaskError):
    """There is no mask with that number. Masks are numbered 1 to 7."""

    code = "unknown_mask"


class UnknownModeError(FaceMaskError, ValueError):
    """There is no such way to find faces: choose "faces" (every face) or "whole" (the
    whole photo is one face)."""

    code = "unknown_mode"


class WeightsError(FaceMaskError):
    """The keypoint model's weights could not be loaded."""

    code = "weights"


# ------------------------------------------------------------------ moving pictures


class NotAVideoError(FaceMaskError):
    """That file is not a video I can read. Please send an MP4, MOV, WebM or GIF."""

    code = "not_a_video"


class TruncatedVideoError(NotAVideoError):
    """That video file is cut off or damaged. Please send the video again."""

    code = "video_truncated"


class NoVideoStreamError(NotAVideoError):
    """That file has sound but no picture. Please send a video with a picture in it."""

    code = "no_video_stream"


class EmptyVideoError(NotAVideoError):
    """That video has no frames in it. Please send another video."""

    code = "no_frames"


class VideoTooLongError(FaceMaskError):
    """That video is too long for me. Please send a clip of at most 60 seconds."""

    code = "too_long"

    def __init__(self, message: str | None = None, *, limit_s: float | None = None) -> None:
        if message is None and limit_s is not None:
            message = (
                f"That video is too long for me. Please send a clip of at most {limit_s:g} seconds."
            )
        super().__init__(message)


class VideoTooLargeError(FaceMaskError):
    """That video's picture is too large for me. Please send a video of at most 4K."""

    code = "video_too_large"


class NoFaceInVideoError(NoFaceFoundError):
    """No face in any frame of a video (the message tells how to get a mask anyway)."""

    code = "no_face_in_video"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "I could not find a face in any frame of that video. "
            "Switch Crop off to treat the whole frame as one face."
        )


class JobCancelledError(FaceMaskError):
    """Cancelled: I stopped masking that video as you asked."""

    code = "cancelled"
