"""A mask's material as data: a colour, a pattern or a person's own picture (issue 26).

A :class:`Style` never draws a mask of its own. It changes the mask picture once, where the
warp prepares it (``warp.MaskPicture.from_rgba``'s ``restyle``), and everything after that is
the one rendering path every mask takes: the same warp, the same lighting from the face, the
same compositing. On the picture, only the pixels of the mask's cloth change
(``masks.catalog.Recolour`` says which, per mask): each takes the style's material times the
cloth's own shading there (its brightness relative to the cloth's median), so folds, pleats,
seams and the light drawn into the picture stay, and valves, filters and straps stay as drawn.

>>> Style.parse("#0473e2"), Style.parse("navy"), Style.parse("stripes")
>>> Style.from_picture(Path("me.jpg").read_bytes())   # a person's own picture on the cloth
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import FaceMaskError
from masks import patterns
from masks.catalog import MaskSpec, Recolour

#: the cloth's shading is kept between these factors of its median brightness: a seam's
#: highlight on black cloth is several times the cloth's brightness and would burn out
SHADE_RANGE = (0.15, 1.8)
#: a "smooth" shade reads the cloth's light blurred by this many picture pixels
SMOOTH_SHADE_PX = 40.0
#: own pictures: the smallest side printed, and the most pixels read
MIN_PICTURE_SIDE = patterns.OWN_PICTURE_MIN_SIDE
MAX_PICTURE_PIXELS = patterns.OWN_PICTURE_MAX_PIXELS
#: the id a person's own picture goes by in jobs and callback data; its bytes travel beside it
OWN = "own"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class UnknownStyleError(FaceMaskError):
    """I don't know that colour or pattern. Try a colour such as navy or #0473e2, or a pattern
    such as stripes, dots, checks, camo, hearts, stars, plaid or gradient."""

    code = "unknown_style"


class PatternNotAnImageError(FaceMaskError):
    """That file is not a picture I can print on a mask. Please send a JPEG, PNG or WebP."""

    code = "pattern_not_image"


class PatternTooSmallError(FaceMaskError):
    """That picture is too small to print on a mask: it needs at least 64 pixels a side."""

    code = "pattern_too_small"


class PatternTooLargeError(FaceMaskError):
    """That picture is too large to print on a mask: please send one under 25 megapixels."""

    code = "pattern_too_large"


class PatternAnimatedError(FaceMaskError):
    """That picture moves: please send a still picture to print on the mask."""

    code = "pattern_animated"


@dataclass(frozen=True)
class Style:
    """What a mask's cloth is made of: a colour, a pattern, or a picture, and how it is laid on.

    ``key`` names it (what :meth:`parse` read, or ``"own:<hash>"``) and is what caches go by.
    ``strength``: how much of the cloth takes the material (1: all of it); ``shading``: how
    much of the cloth's own folds and light are kept (1: all of them, 0: a flat material).
    """

    key: str
    colour: tuple[float, float, float] | None = None
    pattern: str | None = None
    picture: np.ndarray | None = field(default=None, compare=False, repr=False)
    strength: float = 1.0
    shading: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Style:
        """A colour (``"#0473e2"``, ``"navy"``) or a pattern's name (``"stripes"``);
        :class:`UnknownStyleError` for anything else (an own picture: :meth:`from_picture`)."""
        name = text.strip().lower()
        if name in patterns.PATTERN_NAMES:
            return cls(name, pattern=name)
        rgb = patterns.colour(name)
        if rgb is None:
            raise UnknownStyleError()
        return cls(name, colour=rgb)

    @classmethod
    def from_picture(cls, data: bytes) -> Style:
        """A person's own picture printed on the cloth; the picture's typed refusals
        (:class:`PatternNotAnImageError` and its kin) for anything that cannot be printed."""
        rgb = read_picture(data)
        digest = hashlib.sha256(data).hexdigest()[:16]
        return cls(f"{OWN}:{digest}", picture=rgb)

    def material(self, width: int, height: int, unit: float, body: tuple[int, int, int, int]):
        """(height, width, 3) float32 RGB 0-1: what the cloth is made of over a mask picture of
        that size; ``unit``: the template face's width in its pixels; ``body``: the cloth's
        box (x0, y0, x1, y1), which an own picture covers."""
        if self.colour is not None:
            return np.broadcast_to(np.asarray(self.colour, np.float32), (height, width, 3))
        if self.pattern is not None:
            return patterns.draw(self.pattern, width, height, unit)
        assert self.picture is not None
        return _fitted(self.picture, width, height, body)

    def restyler(self, spec: MaskSpec, unit: float):
        """The function ``warp.MaskPicture.from_rgba`` runs on ``spec``'s picture."""

        def restyle(rgba: np.ndarray) -> np.ndarray:
            return restyle_picture(rgba, spec.recolour, self, unit)

        return restyle


def parse(text: str) -> Style:
    """:meth:`Style.parse`, for a caller who wants a function."""
    return Style.parse(text)


def read_picture(data: bytes) -> np.ndarray:
    """An own picture's RGB pixels (uint8), or why it cannot be printed."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if getattr(image, "is_animated", False) and getattr(image, "n_frames", 1) > 1:
                raise PatternAnimatedError()
            width, height = image.size
            if width * height > MAX_PICTURE_PIXELS:
                raise PatternTooLargeError()
            if min(width, height) < MIN_PICTURE_SIDE:
                raise PatternTooSmallError()
            image.draft("RGB", (2048, 2048))  # a big JPEG is decoded at a fraction of its size
            return np.asarray(image.convert("RGB"))
    except FaceMaskError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise PatternNotAnImageError() from None


def _fitted(picture: np.ndarray, width: int, height: int, body: tuple[int, int, int, int]):
    """``picture`` scaled to cover the body's box, centred and cropped, on a canvas of the mask
    picture's size (outside the box: the picture's edge, repeated)."""
    x0, y0, x1, y1 = body
    box_w, box_h = max(1, x1 - x0), max(1, y1 - y0)
    ph, pw = picture.shape[:2]
    scale = max(box_w / pw, box_h / ph)
    # the affine from canvas pixels to picture pixels: the box's centre on the picture's
    m = np.array(
        [[1 / scale, 0, pw / 2 - (x0 + box_w / 2) / scale],
         [0, 1 / scale, ph / 2 - (y0 + box_h / 2) / scale]], np.float32,
    )  # fmt: skip
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = cv2.warpAffine(
        picture, m, (width, height), flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return canvas.astype(np.float32) / 255


def cloth_region(rgba: np.ndarray, recolour: Recolour) -> np.ndarray:
    """(H, W) float32 0-1: how much each pixel of a mask picture (straight RGBA, 0-1) is cloth
    that takes a style (``masks.catalog.Recolour`` says how it is found)."""
    solid = (rgba[..., 3] > 0.5).astype(np.uint8)
    k = max(1, recolour.strap_px) | 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    body = cv2.morphologyEx(solid, cv2.MORPH_OPEN, disc)
    region = body.astype(np.float32)
    if recolour.chroma is not None and body.any():
        rgb = rgba[..., :3]
        luma = rgb @ _LUMA + 1e-2
        tone = rgb / luma[..., None]  # the colour without its brightness
        reference = np.median(tone[body > 0], axis=0)
        distance = np.linalg.norm(tone - reference, axis=-1)
        region *= np.clip(2 - distance / recolour.chroma, 0, 1)
    if recolour.keep:
        kept = np.zeros(region.shape, np.uint8)
        for cx, cy, rx, ry in recolour.keep:
            cv2.ellipse(kept, (round(cx), round(cy)), (round(rx), round(ry)), 0, 0, 360, 1, -1)
        region *= 1 - kept
    return cv2.GaussianBlur(region, (0, 0), 1.5) * body


def restyle_picture(rgba: np.ndarray, recolour: Recolour, style: Style, unit: float) -> np.ndarray:
    """A mask picture (straight RGBA float32, 0-1) with its cloth made of ``style``'s material,
    keeping the cloth's shading; a new array."""
    height, width = rgba.shape[:2]
    region = cloth_region(rgba, recolour) * float(np.clip(style.strength, 0, 1))
    rgb = rgba[..., :3]
    luma = rgb @ _LUMA
    if recolour.shade == "smooth":
        luma = cv2.GaussianBlur(luma, (0, 0), SMOOTH_SHADE_PX)
    cloth = region > 0.5
    reference = float(np.median(luma[cloth])) if cloth.any() else 1.0
    shade = np.clip(luma / max(reference, 1e-3), *SHADE_RANGE)
    shade = 1 + float(style.shading) * (shade - 1)
    ys, xs = np.nonzero(cloth) if cloth.any() else (np.array([0, height]), np.array([0, width]))
    body = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    material = style.material(width, height, unit, body)
    out = rgba.copy()
    w = region[..., None]
    out[..., :3] = np.clip(rgb * (1 - w) + material * shade[..., None] * w, 0, 1)
    return out
