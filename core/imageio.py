"""Photos in and out: any image a person may send, to RGB pixels and back to its format.

:func:`decode` turns bytes, a path or an array into an upright 8-bit RGB array (plus the
alpha channel when there is one), or raises one of :mod:`core.errors`'s typed errors. The
size is read from the file's header first, so a decompression bomb is refused before a
single pixel is decoded. :func:`encode` writes the result back in the input's format
family: JPEG in, JPEG out; PNG (and GIF, BMP, TIFF) out as PNG, alpha kept; WebP as WebP.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import (
    EmptyImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
)

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000  # the limit ImageTooLargeError's message promises
MIN_SIDE = 32  # smaller than this there is no face to find
JPEG_QUALITY = 92

# Pillow's own guard, for any code path that opens images without going through decode().
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_FAMILY = {"JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WEBP"}  # everything else: PNG
# The formats people send as photos. Pillow has plugins for dozens more (PSD, EPS, ICNS, FITS,
# ...), each one more parser that untrusted bytes could reach; they are never opened.
# (MPO, a phone's multi-picture JPEG, is opened by the JPEG plugin)
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
Image.init()  # registers every plugin, so that Image.open(formats=...) knows their names
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, zlib.error)

ImageInput = bytes | bytearray | memoryview | str | Path | np.ndarray


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray  # (H, W, 3) uint8, upright (EXIF orientation applied)
    alpha: np.ndarray | None  # (H, W) uint8, or None when the image is opaque
    format: str  # the format to encode the result in: "JPEG" | "PNG" | "WEBP"
    source_format: str  # what the input was: "JPEG", "PNG", "GIF", "array", ...
    icc_profile: bytes | None = None  # the input's RGB colour profile, kept on output

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]


def read_bytes(source: bytes | bytearray | memoryview | str | Path) -> bytes:
    """The bytes of a photo given as bytes or a path; anything else is a typed error."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if not isinstance(source, (str, Path)):
        raise NotAnImageError(
            f"I need a photo as bytes, a file path or an image array, not {type(source).__name__}."
        )
    try:
        path = Path(source)
        return path.read_bytes()
    # ValueError: a NUL byte in the path; OSError: missing, a directory, no permission, a
    # name too long, a device that cannot be read...
    except (OSError, ValueError) as err:
        name = Path(str(source).replace("\0", "")).name[:80] or str(source)[:80]
        raise NotAnImageError(f"I could not read the file {name!r}.") from err


def decode(image: ImageInput) -> Decoded:
    """Any supported input to upright 8-bit RGB (+ alpha), or a typed error."""
    if isinstance(image, np.ndarray):
        return _from_array(image)
    data = read_bytes(image)
    if not data:
        raise EmptyImageError()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError as err:
            if _looks_like_an_image(data):
                raise TruncatedImageError() from err
            raise NotAnImageError() from err
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageTooLargeError() from err
        except _DECODE_ERRORS as err:
            # Recognised by its signature, but the header itself is cut off or broken.
            raise TruncatedImageError() from err
        return _from_pillow(img)


_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\0",  # TIFF
    b"MM\0*",
)


def _looks_like_an_image(data: bytes) -> bool:
    """An image format's signature: a file Pillow cannot identify after it is cut off."""
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError()
    if min(width, height) < MIN_SIDE:
        raise ImageTooSmallError()


def _from_pillow(img: Image.Image) -> Decoded:
    source_format = (img.format or "PNG").upper()
    _check_size(*img.size)  # from the header: nothing is decoded yet
    try:
        img.seek(0)  # animated GIF / WebP / APNG: the first frame
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError() from err
    except _DECODE_ERRORS as err:
        raise TruncatedImageError() from err
    try:
        ImageOps.exif_transpose(img, in_place=True)  # without a copy of an upright photo
    except Exception:  # a broken EXIF block should not cost the photo
        log.warning("ignoring unreadable EXIF orientation", exc_info=True)
    icc = img.info.get("icc_profile") if img.mode in ("RGB", "RGBA", "P", "L", "LA") else None
    rgb, alpha = _to_rgb(img)
    family = _FAMILY.get(source_format, "PNG")
    return Decoded(rgb, alpha, family, source_format, icc or None)


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = img.mode
    if mode.startswith("I") or mode == "F":  # 16/32-bit greyscale
        grey = _to_uint8(np.asarray(img))
        return np.repeat(grey[..., None], 3, axis=2), None
    has_alpha = mode in _ALPHA_MODES or "transparency" in img.info
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = np.ascontiguousarray(rgba[..., 3])
        if alpha.min() == 255:
            alpha = None  # declared but unused: treat as opaque
        return np.ascontiguousarray(rgba[..., :3]), alpha
    if mode != "RGB":
        img = img.convert("RGB")
    return np.array(img), None  # one writable copy


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale 16-bit, 32-bit or float pixels to 0-255."""
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind == "f":
        top = 1.0 if np.nanmax(values, initial=0) <= 1.0 else 255.0
        values = np.clip(np.nan_to_num(values, posinf=top, neginf=0.0), 0.0, top)
        return (values * (255.0 / top) + 0.5).astype(np.uint8)
    # clipped first: int64 pixels near their limit would overflow when scaled
    values = np.clip(values.astype(np.int64), 0, 65535)
    top = 65535 if values.max(initial=0) > 255 else 255
    return np.clip(values * 255 // top, 0, 255).astype(np.uint8)


def _from_array(array: np.ndarray) -> Decoded:
    """Arrays are RGB(A) or greyscale, uint8/uint16/float; the result is encoded as PNG."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.size == 0:
        shape = "x".join(map(str, array.shape)) or "a scalar"
        raise NotAnImageError(f"An image array must be HxW, HxWx3 or HxWx4, not {shape}.")
    if array.dtype.kind not in "uif":  # bool, complex, object, strings...
        raise NotAnImageError(
            f"An image array must hold integers or floats, not {array.dtype.name}."
        )
    _check_size(array.shape[1], array.shape[0])
    if array.dtype.kind == "f" and not np.isfinite(array).any():
        raise NotAnImageError("That image array holds no numbers (all NaN or infinite).")
    array = _to_uint8(array)
    alpha = None
    if array.shape[2] == 4:
        alpha = np.ascontiguousarray(array[..., 3])
        array = array[..., :3]
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return Decoded(np.ascontiguousarray(array), alpha, "PNG", "array")


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def encode(
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    format: str = "JPEG",
    icc_profile: bytes | None = None,
) -> bytes:
    """Encode RGB (+ alpha) in ``format``; JPEG drops alpha, PNG and WebP keep it.

    EXIF is not written back: the orientation has been applied to the pixels, and a
    photo sent to a bot should not carry its camera's GPS position onwards.
    """
    buf = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if format == "JPEG":
        to_pil(rgb).save(buf, "JPEG", quality=JPEG_QUALITY, **extra)
    elif format == "WEBP":
        to_pil(rgb, alpha).save(buf, "WEBP", quality=90, **extra)
    else:
        to_pil(rgb, alpha).save(buf, "PNG", compress_level=3, **extra)
    return buf.getvalue()


def encode_like(decoded: Decoded, rgb: np.ndarray) -> bytes:
    """``rgb`` (same size as ``decoded``) encoded the way ``decoded`` came in."""
    return encode(rgb, decoded.alpha, decoded.format, decoded.icc_profile)
