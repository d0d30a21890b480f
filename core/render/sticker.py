"""A face cut out of a photo as a Telegram sticker: the head on transparency, a white outline.

Pure raster work on one face's 68 points (:mod:`core.keypoints.face68`): the head's outline
is the jaw line closed by a forehead, which is the brows lifted along the face's own up
direction (so a tilted head gets a tilted forehead), widened a little so the mask's straps
and the ears' edge stay in. The cut-out is feathered, laid on a white outline a few pixels
wide, as Telegram's own sticker maker does, scaled so its long side is 512 px, and encoded
as WebP under 512 KB (Telegram's rules for a static sticker)."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from core.keypoints import face68

#: Telegram: a static sticker is 512 px on its long side, WebP or PNG, at most 512 KB
SIDE = 512
MAX_BYTES = 512 * 1024
#: the forehead above the brows, as a share of the brows-to-chin height (hairline, roughly)
FOREHEAD = 0.55
#: the head outline widened from its centre, for the mask's straps and the ears' edge
WIDEN = 1.08
#: outline and feather, in pixels of the 512 px sticker
OUTLINE_PX = 10
FEATHER_PX = 1.6
MARGIN_PX = OUTLINE_PX + 6


def head_outline(points: np.ndarray) -> np.ndarray:
    """(K, 2) polygon around the head: the jaw, then a forehead above the brows."""
    points = np.asarray(points, np.float64)
    jaw = points[face68.JAW]
    brows = points[face68.BROWS]
    chin = points[face68.CHIN]
    up = brows.mean(axis=0) - chin
    height = float(np.linalg.norm(up))
    up = up / max(height, 1e-6)
    forehead = brows[::-1] + up * FOREHEAD * height  # from the left brow's end back to the right
    # round the forehead: its middle rises a little more than its ends, like a skull
    arc = np.sin(np.linspace(0, np.pi, len(forehead)))[:, None]
    forehead = forehead + up * 0.12 * height * arc
    outline = np.vstack([jaw, forehead])
    hull = cv2.convexHull(outline.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    centre = hull.mean(axis=0)
    return centre + WIDEN * (hull - centre)


def cut_out(rgb: np.ndarray, points: np.ndarray) -> bytes:
    """The head around ``points`` in ``rgb`` (uint8 RGB) as a 512 px WebP sticker."""
    polygon = head_outline(points)
    x0, y0 = polygon.min(axis=0)
    x1, y1 = polygon.max(axis=0)
    long_side = max(x1 - x0, y1 - y0, 1.0)
    scale = (SIDE - 2 * MARGIN_PX) / long_side
    width = int(round((x1 - x0) * scale)) + 2 * MARGIN_PX
    height = int(round((y1 - y0) * scale)) + 2 * MARGIN_PX
    width, height = min(width, SIDE), min(height, SIDE)
    if width >= height:  # Telegram wants the long side at exactly 512
        width = SIDE
    else:
        height = SIDE
    shift = np.array([MARGIN_PX - x0 * scale, MARGIN_PX - y0 * scale])
    affine = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float32)
    # a downscale reads many photo pixels per sticker pixel: smooth first, then sample
    source = rgb
    if scale < 0.5:
        source = cv2.GaussianBlur(rgb, (0, 0), 0.5 / scale * 0.6)
    canvas = cv2.warpAffine(
        source, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    inside_photo = cv2.warpAffine(
        np.ones(rgb.shape[:2], np.float32), affine, (width, height), flags=cv2.INTER_LINEAR
    )

    head = np.zeros((height, width), np.uint8)
    corners = np.round((polygon * scale + shift) * 16).astype(np.int32)
    cv2.fillPoly(head, [corners], 255, cv2.LINE_AA, shift=4)
    face_alpha = cv2.GaussianBlur(head.astype(np.float32) / 255, (0, 0), FEATHER_PX)
    face_alpha *= inside_photo  # no invented pixels where the head leaves the photo
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * OUTLINE_PX + 1, 2 * OUTLINE_PX + 1))
    solid = (face_alpha > 0.5).astype(np.uint8)
    outline_alpha = cv2.GaussianBlur(
        cv2.dilate(solid, kernel).astype(np.float32), (0, 0), FEATHER_PX
    )
    alpha = np.maximum(face_alpha, outline_alpha)
    colour = canvas.astype(np.float32) * face_alpha[..., None] + 255 * (1 - face_alpha[..., None])
    rgba = np.dstack([colour, alpha * 255])
    return encode_webp(np.clip(rgba + 0.5, 0, 255).astype(np.uint8))


def encode_webp(rgba: np.ndarray) -> bytes:
    """RGBA as WebP within Telegram's 512 KB, lowering the quality only if it must."""
    picture = Image.fromarray(rgba, "RGBA")
    for quality in (90, 80, 65, 50, 35):
        out = io.BytesIO()
        picture.save(out, format="WEBP", quality=quality, method=4)
        if out.tell() <= MAX_BYTES:
            return out.getvalue()
    return out.getvalue()  # a 512 px picture at quality 35 is far below the limit
