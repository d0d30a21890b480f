"""Put a mask picture on a face: a piecewise-affine warp over a fixed triangulation.

Pure geometry first (control points, triangulation, fold guard), then the raster work
(one ``cv2.remap`` per face over the face's bounding box, lighting, compositing).

The control points are the landmarks a mask follows (jaw line, nose line, mouth) plus a
ring of points outside the jaw, so straps and the edge of the mask are never clipped.
The triangulation is computed once, on the mask template, and reused for every face: it
can only fold if a face's landmarks turn a triangle over, and :func:`unfold` takes care of
that by pulling the points towards the nearest similarity transform of the template just
as far as needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from core.keypoints import face68
from core.keypoints.preprocess import fit_similarity
from core.render.cover import find_worn_mask, hide

# The landmarks the warp follows (core.keypoints.face68) ... The nose is followed at its bridge (28)
# and base (33) only: the tip stands out so far that, with the head turned past ~35
# degrees, it crosses in front of the far cheek and would fold the triangles around it.
INNER = [
    face68.NOSE_BRIDGE[1],
    face68.NOSE_BASE,
    face68.MOUTH_CORNERS[0],
    face68.UPPER_LIP_TOP,
    face68.MOUTH_CORNERS[1],
    face68.LOWER_LIP_BOTTOM,
]
# ... and the closed ring, jaw then the top of the nose, pushed outwards for the margin.
RING = [*face68.JAW, face68.NOSE_TOP]
RING_SCALE = 1.35


def face_centre(points: np.ndarray) -> np.ndarray:
    """Midway between the top of the nose and the chin: inside the jaw ring for any pose."""
    return (points[..., face68.NOSE_TOP, :] + points[..., face68.CHIN, :]) / 2


def control_points(points: np.ndarray) -> np.ndarray:
    """(K, 2) warp control points from (68, 2) landmarks: ring, inner points, outer ring."""
    points = np.asarray(points, np.float64)
    ring = points[RING]
    centre = face_centre(points)
    outer = centre + RING_SCALE * (ring - centre)
    return np.vstack([ring, points[INNER], outer])


MOUTH = list(face68.MOUTH)
STEADY = RING + INNER[:2]  # the points a mask hangs from: jaw, nose bridge, nose base
MOUTH_FOLLOW = 0.35


def steady_mouth(
    points: np.ndarray, template: np.ndarray, follow: float = MOUTH_FOLLOW
) -> np.ndarray:
    """``points`` with the mouth moved only ``follow`` of the way from where the jaw and nose
    put it towards where it is.

    A mask hangs from the nose and the jaw; a smile under it barely moves the fabric, and
    following the lips fully would bend rigid parts (valves, filters) with the grin.
    """
    points = np.asarray(points, np.float64)
    src = np.hstack([template[STEADY], np.ones((len(STEADY), 1))])
    affine, *_ = np.linalg.lstsq(src, points[STEADY], rcond=None)
    expected = np.hstack([template[MOUTH], np.ones((len(MOUTH), 1))]) @ affine
    out = points.copy()
    out[MOUTH] = expected + follow * (points[MOUTH] - expected)
    return out


def shape_error(points: np.ndarray, template: np.ndarray) -> float:
    """How far ``points`` are from any affine view of the template face, per face size.

    Predictions on real faces come out near 0.02 and a head turned 45 degrees and nodded 20
    near 0.065; a keypoint model run on something that is not a face (a detector's false
    positive) twists its points out of face shape, 0.1 and more.
    """
    points = np.asarray(points, np.float64)
    src = np.hstack([template, np.ones((len(template), 1))])
    affine, *_ = np.linalg.lstsq(src, points, rcond=None)
    residual = np.linalg.norm(src @ affine - points, axis=1).mean()
    size = np.sqrt(max(np.ptp(points[:, 0]) * np.ptp(points[:, 1]), 1e-9))
    return float(residual / size)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * (
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    )


def triangulate(template_points: np.ndarray) -> np.ndarray:
    """(T, 3) triangles over :func:`control_points` of the template, counter-clockwise.

    The band between the ring and the outer ring is two triangles per ring edge; inside
    the ring, a Delaunay triangulation of the ring and the inner points, keeping only the
    triangles that lie inside the ring.
    """
    ctrl = control_points(template_points)
    n_ring, n_inner = len(RING), len(INNER)
    inside = ctrl[: n_ring + n_inner]
    lo = inside.min(axis=0) - 10
    subdiv = cv2.Subdiv2D(
        (int(lo[0]), int(lo[1]), int(np.ptp(inside[:, 0]) + 20), int(np.ptp(inside[:, 1]) + 20))
    )
    for x, y in inside:
        subdiv.insert((float(x), float(y)))
    ring_poly = ctrl[:n_ring].astype(np.float32).reshape(-1, 1, 2)
    triangles = []
    for tri in subdiv.getTriangleList().reshape(-1, 3, 2):
        idx = [int(np.argmin(np.linalg.norm(inside - v, axis=1))) for v in tri]
        if np.max(np.linalg.norm(inside[idx] - tri, axis=1)) > 1e-2:
            continue  # a vertex of Subdiv2D's outer bounding triangle
        centroid = tri.mean(axis=0)
        if cv2.pointPolygonTest(ring_poly, (float(centroid[0]), float(centroid[1])), False) > 0:
            triangles.append(idx)
    for i in range(n_ring):
        j = (i + 1) % n_ring
        oi, oj = n_ring + n_inner + i, n_ring + n_inner + j
        triangles += [[i, j, oj], [i, oj, oi]]
    triangles = np.asarray(triangles, np.int32)
    flip = signed_areas(ctrl, triangles) < 0
    triangles[flip] = triangles[flip][:, ::-1]
    return triangles


def unfold(
    src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, min_ratio: float = 0.02
) -> np.ndarray:
    """``dst`` moved as little as needed towards a similarity of ``src`` so no triangle folds.

    A triangle folds when its orientation flips (or it collapses below ``min_ratio`` of its
    template area, scaled). A similarity with positive scale never folds, so blending
    towards it always ends the search.
    """
    sim = fit_similarity(src, dst)
    rigid = src @ sim[:, :2].T + sim[:, 2]
    scale2 = abs(np.linalg.det(sim[:, :2]))
    floor = min_ratio * signed_areas(src, triangles) * scale2

    def folds(points: np.ndarray) -> bool:
        return bool(np.any(signed_areas(points, triangles) <= floor))

    if not folds(dst):
        return dst
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if folds((1 - mid) * dst + mid * rigid):
            lo = mid
        else:
            hi = mid
    return (1 - hi) * dst + hi * rigid


# --------------------------------------------------------------------------- raster


@dataclass(frozen=True)
class MaskPicture:
    """A mask ready to warp: premultiplied RGBA levels (float32, 0-1) and its control points."""

    levels: tuple[np.ndarray, ...]  # level k is the picture at 1 / 2**k of its size
    control: np.ndarray  # (K, 2) control points in level-0 pixels
    triangles: np.ndarray  # (T, 3)
    template: np.ndarray  # (68, 2) the face the picture was drawn on, level-0 pixels

    @classmethod
    def from_rgba(
        cls,
        rgba: np.ndarray,
        template_points: np.ndarray,
        n_levels: int = 4,
        restyle: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> MaskPicture:
        """``restyle`` (``core.render.style``) changes the picture's material once, here, on
        its straight RGBA (float32 0-1): a styled mask then takes the one path every mask
        takes, with the same warp and the same light."""
        pic = rgba.astype(np.float32) / 255
        if restyle is not None:
            pic = restyle(pic)
        pic[..., :3] *= pic[..., 3:]
        levels = [pic]
        for _ in range(n_levels - 1):
            h, w = levels[-1].shape[:2]
            levels.append(
                cv2.resize(
                    levels[-1], (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA
                )
            )
        template = np.asarray(template_points, np.float64)
        triangles = triangulate(template)
        if len(triangles) > 255:  # warp_mask labels each pixel's triangle in 8 bits
            raise ValueError(f"a mask picture of {len(triangles)} triangles: 255 at most")
        return cls(tuple(levels), control_points(template), triangles, template)

    def level_for(self, src_per_dst: float) -> int:
        """The coarsest level that still has at least one picture pixel per photo pixel."""
        k = int(np.floor(np.log2(max(src_per_dst, 1.0))))
        return min(k, len(self.levels) - 1)


def _box(
    points: np.ndarray, shape: tuple[int, int], pad: int = 2
) -> tuple[int, int, int, int] | None:
    h, w = shape
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


@dataclass(frozen=True)
class Overlay:
    """A mask warped onto one face, at ``scale`` times the photo's resolution.

    ``rgba`` is premultiplied float32 and covers ``box`` (x0, y0, x1, y1 photo pixels). When
    a face is larger than the mask picture itself, the overlay is computed at the picture's
    resolution (scale < 1) and only resampled to the photo's while compositing.
    """

    rgba: np.ndarray
    box: tuple[int, int, int, int]
    scale: float


def warp_mask(
    mask: MaskPicture,
    landmarks: np.ndarray,
    shape: tuple[int, int],
    max_face_px: float | None = None,
    *,
    video: bool = False,
) -> Overlay | None:
    """The mask warped onto a face's (68, 2) landmarks in a photo of ``shape`` (height, width).

    None when the face lies outside the photo or its points are degenerate. With
    ``max_face_px``, a face wider than that is drawn (and lit, :func:`composite`) at that
    width and only resampled to its own while compositing: video's budget per frame.
    ``video``: the triangles' affines solved together and looked up by table (the same
    maps to float rounding; photos keep OpenCV's one by one).
    """
    landmarks = np.asarray(landmarks, np.float64)
    if not np.isfinite(landmarks).all() or face_width(landmarks) < 2:
        return None  # nothing sensible to put a mask on
    steady = steady_mouth(landmarks, mask.template)
    dst = unfold(mask.control, control_points(steady), mask.triangles)
    box = _box(dst, shape)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    src_per_dst = float(np.sqrt(abs(np.linalg.det(fit_similarity(dst, mask.control)[:, :2]))))
    scale = min(1.0, 1.25 * src_per_dst)
    if max_face_px is not None:
        scale = min(scale, max_face_px / max(face_width(landmarks), 1.0))
    level = mask.level_for(src_per_dst / scale)
    src = (mask.control / (2**level)).astype(np.float32)
    picture = mask.levels[level]
    width = max(2, int(np.ceil((x1 - x0) * scale)))
    height = max(2, int(np.ceil((y1 - y0) * scale)))
    # Photo pixel centres to overlay pixel centres.
    local = ((dst - [x0, y0] + 0.5) * scale - 0.5).astype(np.float32)

    # Which triangle each overlay pixel is in (0 = none), then one affine per triangle.
    labels = np.zeros((height, width), np.uint8)
    affine = np.zeros((len(mask.triangles) + 1, 2, 3), np.float32)
    affine[0, :, 2] = -10  # outside every triangle: sample outside the picture
    corners = np.round(local[mask.triangles] * 16).astype(np.int32)  # 4 bits of subpixel
    for t, tri in enumerate(mask.triangles, start=1):
        cv2.fillConvexPoly(labels, corners[t - 1], t, cv2.LINE_8, shift=4)
        if not video:
            affine[t] = cv2.getAffineTransform(local[tri], src[tri])
    if video:  # every triangle's affine in one solve
        corners_h = np.concatenate([local[mask.triangles], np.ones((*mask.triangles.shape, 1))], 2)
        affine[1:] = np.linalg.solve(corners_h, src[mask.triangles]).transpose(0, 2, 1)
    # each coefficient looked up by label: OpenCV's table lookup, the same floats as numpy's
    # indexing at a fraction of its time
    lut = np.zeros((6, 256), np.float32)
    lut[:, : len(affine)] = affine.reshape(len(affine), 6).T
    table = [cv2.LUT(labels, row) for row in lut]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    map_x = table[0] * xs + table[1] * ys + table[2]
    map_y = table[3] * xs + table[4] * ys + table[5]
    rgba = cv2.remap(
        picture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return Overlay(rgba, box, scale)


def face_width(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[16] - landmarks[0]))


STRIP_ROWS = 512  # photo rows composited at a time when an overlay is upsampled


def composite(
    photo: np.ndarray,
    overlay: Overlay,
    face_px: float,
    exposure: float = 1.0,
    tint: np.ndarray | None = None,
    lit_by: np.ndarray | None = None,
    *,
    video: bool = False,
) -> None:
    """Lay ``overlay`` over ``photo`` (uint8 RGB, changed in place), lit like the face.

    The mask's shading is multiplied by the face's own low-passed luminance, relative to
    the bright side of the face under the mask, so the mask gets the photo's light and
    shadow but not the face's features. A soft contact shadow under the edge seats it.
    The result is ``photo * keep + add``, both maps worked out at the overlay's scale.
    ``lit_by`` (default ``photo``) is the picture the face's light is read from (when a
    worn mask has been painted over in ``photo``: ``core.render.cover.WornMask.lit``).

    ``video``: the same light for a frame's budget (docs/video.md): the luminance read
    straight from the photo at a quarter of the overlay's size, the bright side's level
    from every other pixel, and ``keep`` and ``add`` laid on in 8-bit fixed point (within
    a grey level or two of the float blend, which photos keep).
    """
    x0, y0, x1, y1 = overlay.box
    s = overlay.scale
    region = photo[y0:y1, x0:x1]
    light_region = region if lit_by is None else lit_by[y0:y1, x0:x1]
    h, w = overlay.rgba.shape[:2]
    face = face_px * s  # the face's width in overlay pixels

    rgba = cv2.GaussianBlur(overlay.rgba, (0, 0), max(0.5, face / 500))
    if video:
        _composite_video(region, light_region, rgba, face, exposure, tint, s)
        return
    alpha = rgba[..., 3]
    under = alpha > 0.5
    small = (
        light_region if s == 1.0 else cv2.resize(light_region, (w, h), interpolation=cv2.INTER_AREA)
    )
    light = _low_pass_luma(small, 0.08 * face)
    ref = percentile(light[under], 85) if under.any() else float(light.mean())
    gain = np.clip(light / max(ref, 1e-3), 0.35, 1.12)[..., None] * exposure
    if tint is not None:
        gain = gain * tint
    add = rgba[..., :3] * gain * 255

    keep = _kept_with_shadow(alpha, face)

    if s == 1.0:
        region[:] = _blend(region, keep, add)
        return
    rows = y1 - y0
    for top in range(0, rows, STRIP_ROWS):
        n = min(STRIP_ROWS, rows - top)
        # photo pixel (x, top + y) -> overlay pixel ((x + .5) s - .5, (top + y + .5) s - .5)
        m = np.array([[s, 0, 0.5 * s - 0.5], [0, s, (top + 0.5) * s - 0.5]], np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        up_add = cv2.warpAffine(add, m, (x1 - x0, n), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        up_keep = cv2.warpAffine(
            keep, m, (x1 - x0, n), flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        strip = region[top : top + n]
        strip[:] = _blend(strip, up_keep, up_add)


def _blend(photo: np.ndarray, keep: np.ndarray, add: np.ndarray) -> np.ndarray:
    """``photo * keep + add`` rounded to uint8: the arithmetic numpy's operators do (in
    float32, or float64 where a tint made ``add`` so), with fewer temporary arrays."""
    out = np.multiply(photo, keep[..., None])
    if add.dtype == out.dtype:
        out += add
    else:
        out = out + add
    out += 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _composite_video(
    region: np.ndarray,
    light_region: np.ndarray,
    rgba: np.ndarray,
    face: float,
    exposure: float,
    tint: np.ndarray | None,
    s: float,
) -> None:
    """:func:`composite`'s arithmetic for video (``video=True``): the same light, shadow and
    blend, worked out on whole contiguous arrays (four channels at once, OpenCV's saturating
    conversions to 8 bits, the percentile by partition), which numpy's strided views and
    float clipping made slow (docs/experiments/video-speed.md, round 4)."""
    h, w = rgba.shape[:2]
    alpha = cv2.extractChannel(rgba, 3)
    under = alpha > 0.5
    light = _low_pass_luma_of(light_region, (w, h), 0.08 * face)
    bright = light[::2, ::2][under[::2, ::2]]
    ref = percentile(bright, 85) if bright.size else float(light.mean())
    gain = light * np.float32(1 / max(ref, 1e-3))
    np.clip(gain, 0.35, 1.12, out=gain)
    colour = 255 * exposure * (np.ones(3) if tint is None else np.asarray(tint, np.float64))
    per_channel = np.append(colour, 0.0).astype(np.float32)  # the alpha channel adds nothing
    add8 = cv2.convertScaleAbs(rgba * (gain[..., None] * per_channel))[..., :3]
    keep8 = cv2.convertScaleAbs(_kept_with_shadow(alpha, face), alpha=255)
    _blend_fixed_point(region, add8, keep8, s)


def _kept_with_shadow(alpha: np.ndarray, face: float) -> np.ndarray:
    """How much of the photo shows through the mask (``1 - alpha``), darkened under the
    mask's edge by a soft contact shadow that seats it (``face``: its width in pixels)."""
    shadow = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.02 * face))
    shift = max(1, round(0.012 * face))
    moved = np.zeros_like(shadow)
    moved[shift:] = shadow[:-shift]
    bare = 1 - alpha
    return bare * (1 - 0.35 * moved * bare)


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear between the two nearest ranks) by partition
    instead of a full sort."""
    values = np.asarray(values).reshape(-1)
    at = q / 100 * (values.size - 1)
    lo = int(np.floor(at))
    hi = min(lo + 1, values.size - 1)
    part = np.partition(values, [lo, hi])
    return float(part[lo] + (at - lo) * (part[hi] - part[lo]))


def _blend_fixed_point(region: np.ndarray, add8: np.ndarray, keep8: np.ndarray, s: float) -> None:
    """``region = region * keep + add`` (uint8, in place) with both maps as 8-bit levels,
    resampled from the overlay's scale ``s`` to the region's."""
    rows, cols = region.shape[:2]
    if s != 1.0:
        # resized by 1 / s (the scale itself, not the sides' ratio, so a pixel lands where
        # the affine warp would put it; the overlay's side was rounded up, so the region is
        # cut out of the result): OpenCV's 8-bit resize is ~4x cheaper than that warp
        add8, keep8 = (
            cv2.resize(x, None, fx=1 / s, fy=1 / s, interpolation=cv2.INTER_LINEAR)
            for x in (add8, keep8)
        )
        add8, keep8 = add8[:rows, :cols], keep8[:rows, :cols]
    kept = cv2.multiply(region, cv2.cvtColor(keep8, cv2.COLOR_GRAY2RGB), scale=1 / 255)
    region[:] = cv2.add(kept, add8)


def _low_pass_luma(region: np.ndarray, sigma: float) -> np.ndarray:
    """The region's luminance (0-1) blurred by ``sigma`` pixels, computed at a quarter size."""
    h, w = region.shape[:2]
    factor = 4 if min(h, w) >= 64 and sigma >= 8 else 1
    small = (
        region
        if factor == 1
        else cv2.resize(
            region, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
        )
    )
    luma = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    luma = cv2.GaussianBlur(luma, (0, 0), max(1.0, sigma / factor))
    if factor == 1:
        return luma
    return cv2.resize(luma, (w, h), interpolation=cv2.INTER_LINEAR)


def _low_pass_luma_of(region: np.ndarray, size: tuple[int, int], sigma: float) -> np.ndarray:
    """:func:`_low_pass_luma` of ``region`` resampled to ``size`` (width, height), ``sigma``
    in those pixels, read from ``region`` itself at a quarter of ``size`` (one resampling
    of one channel instead of two of three)."""
    w, h = size
    factor = 4 if min(h, w) >= 64 and sigma >= 8 else 1
    luma = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    small = (max(1, w // factor), max(1, h // factor))
    if small != (region.shape[1], region.shape[0]):
        luma = cv2.resize(luma, small, interpolation=cv2.INTER_AREA)
    luma = cv2.GaussianBlur(luma.astype(np.float32) / 255, (0, 0), max(1.0, sigma / factor))
    if factor == 1 and small == (w, h):
        return luma
    return cv2.resize(luma, (w, h), interpolation=cv2.INTER_LINEAR)


def scene_light(photo: np.ndarray) -> tuple[float, np.ndarray]:
    """How bright the photo's highlights are (0-1) and the colour of its light.

    The light's colour is read from the brightest unclipped pixels (white walls, shirts,
    highlights take the colour of the light), not from the average, which a red jumper or
    an orange space suit would pull its own way.
    """
    small = photo[::8, ::8].reshape(-1, 3).astype(np.float32) / 255
    luma = small @ np.array([0.299, 0.587, 0.114], np.float32)
    exposure = float(np.clip(np.percentile(luma, 98) / 0.9, 0.35, 1.0))
    unclipped = small.max(axis=1) < 0.98
    if unclipped.sum() < 16:
        return exposure, np.ones(3, np.float32)
    bright = small[unclipped & (luma >= np.percentile(luma[unclipped], 95))]
    colour = bright.mean(axis=0) + 1e-3
    tint = np.clip((colour / colour.mean()) ** 0.6, 0.75, 1.15).astype(np.float32)
    return exposure, tint


def apply_masks(
    photo: np.ndarray, mask: MaskPicture, faces: list[np.ndarray], cover: bool = True
) -> np.ndarray:
    """A copy of ``photo`` (uint8 RGB) with the mask on every face's (68, 2) landmarks.

    With ``cover``, a mask a face already wears is painted over first (core.render.cover), so
    none of it shows around ours; ours is lit by the old mask's light and shade.
    """
    out = photo.copy()
    exposure, tint = scene_light(photo)
    for points in faces:
        overlay = warp_mask(mask, points, photo.shape[:2])
        if overlay is None:
            continue
        worn = find_worn_mask(photo, points) if cover else None
        if worn is not None:
            hide(out, worn)
        lit_by = worn.lit(photo) if worn is not None else None
        composite(out, overlay, face_width(points), exposure, tint, lit_by)
    return out
