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
        super().__init__(message or self.__doc__ or self.code)


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


class WeightsError(FaceMaskError):
    """The keypoint model's weights could not be loaded."""

    code = "weights"
