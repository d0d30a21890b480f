"""A mask the face already wears: found, and hidden where our mask does not cover it.

People send photos of faces that already wear something over the nose and mouth (a cloth
or surgical mask, a respirator, one of our own from an earlier round). Where that old mask
is wider than ours or reaches higher up the nose, it would show as a coloured rim around
the new one. :func:`find_worn_mask` tells such a face from a bare one and outlines the old
mask; :func:`hide` paints it over with what surrounds it (skin above, the cheeks and the
background beside and below), and ``core.render.warp.apply_masks`` then lays our mask on top,
lit by the old mask's light and shade (smoothed, so its print does not show through, and
brought to the skin's brightness, so a black old mask does not darken ours).

How a worn mask is told from a bare face, on the face read at 32 px between the eyes:

* the skin's colour is the median Lab colour of the upper face, which no mask over the
  nose and mouth covers: a strip of forehead above the brows, between the brows, the top
  of the nose, the eyelids under the brows, a strip under the eyes (a median, so hair or
  make-up in a minority of the samples does not move it);
* a lower-face pixel is "not skin" when its hue is more than 30 degrees off the skin's, its
  chroma per lightness is under 0.6 or over 2 times the skin's (a white, black, grey or
  silver mask; a red one), or it is darker than 0.35 of the skin's lightness. In a photo
  without colour only lightness counts: under 0.35 or over 1.7 times the skin's;
* the face wears a mask when every one of four parts (the nose, each cheek beside it, the
  mouth and chin) is more than 40% not skin and the four together more than 60%. A beard,
  an open mouth or a moustache leave the nose and cheeks skin; a hand or a cup covers one
  side or the mouth, a shadow one side; none of them covers all four;
* and when the colour of the middle of the upper face alone, and of the eyelids alone,
  say so too: a fringe of hair over the forehead, white glasses frames or light from above
  can put the upper face as a whole off the colour of a bare lower face, seldom both.

The thresholds were chosen on the validation people's faces and checked on faces of other
people (docs/experiments/core-notes.md, "Worn masks"); the misses are masks of the skin's
colour. ``python -m lab.remask`` draws the pictures to judge by eye.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from core.keypoints import face68

log = logging.getLogger(__name__)

# The face is read at this many pixels between its outer eye corners: enough for the four
# parts to hold ~100 pixels each, and cheap (a ~70x90 px crop for any size of face).
DECIDE_IOD = 32.0
# ... and the old mask is outlined, and painted over, at this one (a face larger than this
# is worked on shrunk; the painting is smooth skin and background, which loses nothing).
REGION_IOD = 72.0
PAINT_IOD = 36.0  # ... and the painting worked out at this one
MIN_IOD = 16.0  # a smaller face has too few pixels to tell: it is taken for bare
PAD = 0.45  # the crop around the 68 points, in eye distances: the band and some context

# The decision (see the module's docstring); blur first, in decision pixels, so that a
# night photo's colour noise does not count as a mask.
BLUR = 1.5
HUE_OFF = 30.0  # degrees
MIN_HUE_CHROMA = 4.0  # Lab chroma below which a pixel's hue means nothing
CHROMA_LOW, CHROMA_HIGH = 0.6, 2.0  # chroma per lightness, relative to the skin's
DARK = 0.35  # lightness (+5) relative to the skin's
BRIGHT = 1.7  # lightness (+5) relative to the skin's, photos without colour only
COLOURLESS = 3.0  # Lab chroma of the skin below which the photo is taken to have no colour
PART_SHARE, MEAN_SHARE = 0.4, 0.6
# Something over the mouth and chin (``covered``): that part alone (the fourth of
# ``_parts``) more than this share not skin, the bar a mask's four parts meet together.
MOUTH_PART = 3
MOUTH_SHARE = MEAN_SHARE

# The band the old mask is looked for in: the jaw line (points 0-16) pushed out from the
# face's centre, by little beside the cheeks (a worn cloth mask sits ~1.05x the jaw; the
# hair is near) and more around the chin (a respirator hangs under it), up to just under
# the eyes.
BAND_SCALE = np.array([1.12, 1.12, 1.12, 1.25, *[1.4] * 9, 1.25, 1.12, 1.12, 1.12])
# ... and in it, only the colours of the mask over the lower face count (k-means colours,
# Lab distance with lightness at half weight, as shading changes it across the mask): the
# hair, collar or wall beside it stay as they are.
PALETTE = 5
LIGHT_WEIGHT = 0.5
PALETTE_DISTANCE = 14.0
# ear loops: on from jaw points 1 and 15 by this share of their distance from the nose
# bridge, this many eye distances either side of that line
STRAP, STRAP_WIDTH = 0.3, 0.04
LIGHT_SMOOTH = 0.2  # eye distances: the old mask's light is smoothed this much
GROW = 0.05  # the region grown by this many eye distances: the old mask's soft, dark edge


@dataclass(frozen=True)
class WornMask:
    """A worn mask's pixels: ``coverage`` (float32, 0-1) over ``box`` (x0, y0, x1, y1)."""

    box: tuple[int, int, int, int]
    coverage: np.ndarray
    fill: np.ndarray  # (h, w, 3) uint8: what the photo shows with the old mask painted over
    light: np.ndarray  # (h, w, 3) uint8: what lights a mask put there (see _light)

    def lit(self, photo: np.ndarray) -> np.ndarray:
        """A copy of ``photo`` to read the face's light from, for a mask laid over this one."""
        out = photo.copy()
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.light
        return out


@dataclass(frozen=True)
class _Crop:
    """The face's surroundings in the photo's ``box``, shrunk to a given eye distance."""

    rgb: np.ndarray  # uint8
    lab: np.ndarray  # float32, L 0-100
    box: tuple[int, int, int, int]  # photo pixels
    points: np.ndarray  # (68, 2) crop pixels
    right: np.ndarray  # the face's axes in the crop (unit vectors)
    down: np.ndarray
    iod: float  # crop pixels between the outer eye corners


@dataclass(frozen=True)
class _Skin:
    lab: np.ndarray  # (3,) the median L, a, b of the skin samples
    chroma: float  # its chroma per lightness (+5)
    hue: float  # radians

    @property
    def colourless(self) -> bool:
        return float(np.hypot(self.lab[1], self.lab[2])) < COLOURLESS


def _eye_distance(points: np.ndarray) -> float:
    right_eye, left_eye = face68.OUTER_EYE_CORNERS
    return float(np.linalg.norm(points[left_eye] - points[right_eye]))


def _read(photo: np.ndarray, points: np.ndarray, iod_px: float) -> _Crop | None:
    """The face's crop at ``iod_px`` between the eyes (never enlarged), in RGB and Lab."""
    iod = _eye_distance(points)
    h, w = photo.shape[:2]
    lo = np.floor(points.min(axis=0) - PAD * iod).astype(int)
    hi = np.ceil(points.max(axis=0) + PAD * iod).astype(int)
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    region = photo[y0:y1, x0:x1]
    scale = min(1.0, iod_px / iod)
    if scale < 1.0:
        size = (max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    sx, sy = region.shape[1] / (x1 - x0), region.shape[0] / (y1 - y0)
    local = (points - [x0, y0] + 0.5) * [sx, sy] - 0.5
    right = local[face68.OUTER_EYE_CORNERS[1]] - local[face68.OUTER_EYE_CORNERS[0]]
    local_iod = float(np.hypot(*right))
    right = right / local_iod
    down = np.array([-right[1], right[0]])
    rgb = np.ascontiguousarray(region)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    return _Crop(rgb, lab, (x0, y0, x1, y1), local, right, down, local_iod)


def _fill(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    """(H, W) bool: the filled polygons (crop pixels, 1/16 px precision)."""
    out = np.zeros(shape, np.uint8)
    pts = [np.round(np.asarray(p) * 16).astype(np.int32) for p in polygons]
    cv2.fillPoly(out, pts, 1, cv2.LINE_8, shift=4)
    return out.astype(bool)


def _skin_samples(crop: _Crop) -> list[np.ndarray]:
    """(H, W) bool each: three parts of the upper face, which a mask over the nose and
    mouth leaves bare: the middle (a strip of forehead above the brows, between the brows,
    the top of the nose), the eyelids under the brows, and under the eyes."""
    p, iod, right, down = crop.points, crop.iod, crop.right, crop.down
    brows = p[face68.BROWS]
    top, mid = p[face68.NOSE_TOP], (p[face68.NOSE_TOP] + p[face68.NOSE_BRIDGE[1]]) / 2
    side = 0.06 * iod * right
    middle = [
        np.vstack([brows - 0.08 * iod * down, (brows - 0.2 * iod * down)[::-1]]),
        p[[21, 22, 42, 27, 39]],
        np.array([top - side, top + side, mid + side, mid - side]),
    ]
    lids = [
        np.vstack([p[brow] + 0.06 * iod * down, p[lid] - 0.05 * iod * down])
        for brow, lid in (
            (face68.RIGHT_BROW, [39, 38, 37, 36]),
            (face68.LEFT_BROW, [45, 44, 43, 42]),
        )
    ]
    under = [
        np.vstack([p[lid] + 0.05 * iod * down, (p[lid] + 0.13 * iod * down)[::-1]])
        for lid in ([36, 41, 40, 39], [42, 47, 46, 45])
    ]
    shape = crop.lab.shape[:2]
    eyes = _fill(shape, [p[face68.RIGHT_EYE], p[face68.LEFT_EYE]])
    return [_fill(shape, polygons) & ~eyes for polygons in (middle, lids, under)]


def _parts(crop: _Crop) -> list[np.ndarray]:
    """The four parts of the lower face a worn mask covers all of: the nose, the cheeks
    beside it (right, left), the mouth and chin."""
    p, shape = crop.points, crop.lab.shape[:2]
    return [
        _fill(shape, [p[[29, 35, 34, 33, 32, 31]]]),
        _fill(shape, [p[[1, 2, 3, 4, 48, 31, 29]]]),
        _fill(shape, [p[[15, 14, 13, 12, 54, 35, 29]]]),
        _fill(shape, [p[[48, 4, 5, 6, 7, 8, 9, 10, 11, 12, 54]]]),
    ]


def _skin(samples: np.ndarray) -> _Skin | None:
    """The skin's colour from (N, 3) Lab samples; None with too few to tell."""
    if len(samples) < 12:
        return None
    lab = np.median(samples, axis=0)
    chroma = float(np.hypot(lab[1], lab[2]))
    return _Skin(lab, chroma / (lab[0] + 5), float(np.arctan2(lab[2], lab[1])))


def _not_skin(lab: np.ndarray, skin: _Skin) -> np.ndarray:
    """(H, W) bool: the pixels of ``lab`` whose colour the face's skin does not take."""
    light = lab[..., 0] + 5
    ref = skin.lab[0] + 5
    out = light < DARK * ref
    if skin.colourless:  # no colour to go by: only what is far darker or brighter
        return out | (light > BRIGHT * ref)
    a, b = lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue_off = np.abs((np.arctan2(b, a) - skin.hue + np.pi) % (2 * np.pi) - np.pi)
    relative = chroma / light / max(skin.chroma, 1e-3)
    out |= (chroma > MIN_HUE_CHROMA) & (hue_off > np.radians(HUE_OFF))
    return out | (relative < CHROMA_LOW) | (relative > CHROMA_HIGH)


def _shares(crop: _Crop, lab: np.ndarray, skin: _Skin) -> list[float]:
    """Each lower-face part's share of pixels that are not skin (NaN: an empty part)."""
    not_skin = _not_skin(lab, skin)
    return [float(not_skin[part].mean()) if part.any() else float("nan") for part in _parts(crop)]


def _decide(shares: list[float]) -> bool:
    values = np.asarray(shares)
    if np.isnan(values).any():
        return False  # a part outside the photo or too small to read: take the face as bare
    return bool(values.min() > PART_SHARE and values.mean() > MEAN_SHARE)


def wears_mask(photo: np.ndarray, points: np.ndarray) -> bool:
    """Whether the face on ``points`` (68, 2) already wears something over its nose and
    mouth (see the module's docstring)."""
    return covered(photo, points)[0]


def covered(photo: np.ndarray, points: np.ndarray) -> tuple[bool, bool]:
    """(whether the face on ``points`` wears a mask (:func:`wears_mask`), whether something
    covers its mouth and chin): the second is the mask's test on that part alone, more than
    ``MOUTH_SHARE`` not skin, as a hand or a cup over the mouth leaves it. One reading of
    the face for both."""
    points = np.asarray(points, np.float64)
    if not np.isfinite(points).all() or _eye_distance(points) < MIN_IOD:
        return False, False
    crop = _read(photo, points, DECIDE_IOD)
    if crop is None:
        return False, False
    groups = _skin_samples(crop)
    skin = _skin(crop.lab[np.logical_or.reduce(groups)])
    if skin is None:
        return False, False
    lab = cv2.GaussianBlur(crop.lab, (0, 0), BLUR)
    shares = _shares(crop, lab, skin)
    mask, mouth = _decide(shares), _mouth(shares)
    # Rarely, the upper face as a whole is off the lower face's colour on a bare face (a
    # fringe of hair over the forehead, white glasses frames, light from above): the
    # middle of the upper face and the eyelids must each find the lower face not skin too.
    for group in groups[:2]:
        if not (mask or mouth):
            break
        skin = _skin(crop.lab[group])
        if skin is not None:
            shares = _shares(crop, lab, skin)
            mask, mouth = mask and _decide(shares), mouth and _mouth(shares)
    return mask, mouth


def _mouth(shares: list[float]) -> bool:
    return bool(np.isfinite(shares[MOUTH_PART]) and shares[MOUTH_PART] > MOUTH_SHARE)


def find_worn_mask(photo: np.ndarray, points: np.ndarray) -> WornMask | None:
    """The worn mask on the face on ``points``, outlined and painted over; None for a bare
    face (the usual case, decided on a ~70x90 px crop of the face in about a millisecond)."""
    if not wears_mask(photo, points):
        return None
    return outline_worn_mask(photo, points)


def outline_worn_mask(photo: np.ndarray, points: np.ndarray) -> WornMask | None:
    """:func:`find_worn_mask` for a face already known to wear a mask (video keeps that
    answer per face, ``core.video.masking.TrackPainter``)."""
    points = np.asarray(points, np.float64)
    crop = _read(photo, points, REGION_IOD)
    if crop is None:
        return None
    skin = _skin(crop.lab[np.logical_or.reduce(_skin_samples(crop))])
    if skin is None:
        return None
    region = _region(crop, skin)
    if not region.any():
        return None
    grow = max(1, round(GROW * crop.iod))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    hole = cv2.dilate(region.astype(np.uint8), kernel)
    soft = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), max(0.6, grow / 2))
    soft = np.maximum(soft, cv2.erode(hole, kernel).astype(np.float32))
    fill = _paint_over(crop.rgb, hole, crop.iod)
    light = _light(crop.rgb, hole, np.clip(soft, 0, 1), skin, crop.iod)
    x0, y0, x1, y1 = crop.box
    size = (x1 - x0, y1 - y0)
    if soft.shape != (y1 - y0, x1 - x0):
        soft = cv2.resize(soft, size, interpolation=cv2.INTER_LINEAR)
        light = cv2.resize(light, size, interpolation=cv2.INTER_LINEAR)
    if fill.shape[:2] != (y1 - y0, x1 - x0):
        fill = cv2.resize(fill, size, interpolation=cv2.INTER_LINEAR)
    log.debug("worn mask over %d px of the face's box %s", int((soft > 0.5).sum()), crop.box)
    return WornMask(crop.box, np.clip(soft, 0, 1), fill, light)


def _light(
    rgb: np.ndarray, hole: np.ndarray, soft: np.ndarray, skin: _Skin, iod: float
) -> np.ndarray:
    """What lights a mask laid over the old one: the old mask's own light and shade (one
    side in shadow, the light from above), smoothed so that its print or stripes are gone,
    and brought to the skin's brightness, so a black old mask does not darken a light new
    one. Outside the old mask, ``rgb`` itself."""
    weight = hole.astype(np.float32)
    sigma = LIGHT_SMOOTH * iod
    colour = rgb.astype(np.float32)
    spread = np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-3)[..., None]
    smooth = cv2.GaussianBlur(colour * weight[..., None], (0, 0), sigma) / spread
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    old = float(np.median(luma[hole > 0]))
    skin_rgb = cv2.cvtColor(skin.lab.reshape(1, 1, 3).astype(np.float32), cv2.COLOR_Lab2RGB)
    skin_luma = 255 * float(skin_rgb.reshape(3) @ np.array([0.299, 0.587, 0.114]))
    gain = skin_luma / max(old, 8.0)
    out = colour * (1 - soft[..., None]) + smooth * gain * soft[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _paint_over(rgb: np.ndarray, hole: np.ndarray, iod: float) -> np.ndarray:
    """``rgb`` with ``hole`` filled in from around it (Telea's inpainting), worked out at
    ``PAINT_IOD`` between the eyes: what fills a mask's place is smooth skin and background,
    and a smaller picture is filled many times faster."""
    factor = min(1.0, PAINT_IOD / iod)
    if factor < 1.0:
        h, w = hole.shape
        size = (max(2, round(w * factor)), max(2, round(h * factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        hole = hole.astype(np.uint8)
    return cv2.inpaint(rgb, hole, 3.0, cv2.INPAINT_TELEA)


def _band(crop: _Crop) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool each: where a worn mask can be (inside the jaw line pushed out by
    ``BAND_SCALE`` from the face's centre, up to a line from beside the cheekbones along
    just under the eyes), and where its ear loops run (from jaw points 1 and 15 on, away
    from the nose bridge)."""
    p, iod, down = crop.points, crop.iod, crop.down
    centre = (p[face68.NOSE_TOP] + p[face68.CHIN]) / 2
    jaw = centre + BAND_SCALE[:, None] * (p[face68.JAW] - centre)
    under_eyes = np.vstack(
        [p[[45, 46, 47, 42]], p[[face68.NOSE_TOP]] + 0.1 * iod * down, p[[39, 40, 41, 36]]]
    )
    shape = crop.lab.shape[:2]
    band = _fill(shape, [np.vstack([jaw[1:16], under_eyes + 0.05 * iod * down])])
    loops = []
    for end in (p[face68.JAW[1]], p[face68.JAW[-2]]):
        along = STRAP * (end - p[face68.NOSE_BRIDGE[1]])
        across = STRAP_WIDTH * iod * np.array([-along[1], along[0]]) / max(np.hypot(*along), 1e-6)
        loops.append(
            np.array([end - across, end + along - across, end + along + across, end + across])
        )
    return band, _fill(shape, loops)


def _palette(lab: np.ndarray, where: np.ndarray, k: int = PALETTE) -> np.ndarray:
    """(k, 3) the main colours of ``lab`` at ``where`` (k-means), L halved."""
    pixels = lab[where] * [LIGHT_WEIGHT, 1, 1]
    k = min(k, len(pixels))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(
        pixels.astype(np.float32), k, None, criteria, 1, cv2.KMEANS_PP_CENTERS
    )
    return centres


def _region(crop: _Crop, skin: _Skin) -> np.ndarray:
    """(H, W) bool: the worn mask's pixels in ``crop``: what is not skin inside the band,
    of the colours of the mask over the lower face and joining it, with the holes a
    stripe or print of skin colour leaves."""
    lab = cv2.GaussianBlur(crop.lab, (0, 0), 0.8)
    band, loops = _band(crop)
    core = np.zeros_like(band)
    for part in _parts(crop):
        core |= part
    not_skin = _not_skin(lab, skin)
    if (core & not_skin).sum() < 8:
        return np.zeros_like(band)
    centres = _palette(lab, core & not_skin)
    weighted = lab * [LIGHT_WEIGHT, 1, 1]
    near = np.zeros_like(band)
    for c in centres:
        near |= ((weighted - c) ** 2).sum(axis=2) < PALETTE_DISTANCE**2
    # the lower face is all mask once the face is called masked, whatever its colours
    # the lower face is all mask once the face is called masked, whatever its colours; an
    # ear loop is thin and greyed by the shrinking: anything there that is not skin
    candidate = ((not_skin & near & band) | core | (not_skin & loops)).astype(np.uint8)
    band = band | loops
    # stripes of skin colour cut the mask in pieces: join them before asking what joins
    k = max(3, round(0.1 * crop.iod) | 1)
    closer = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_CLOSE, closer) & band
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[core & (labels > 0)])] = True
    keep[0] = False
    region = keep[labels]
    # holes: what the region encloses and no path from outside the band reaches
    free = (~region).astype(np.uint8)
    count, labels = cv2.connectedComponents(free, connectivity=4)
    outside = np.zeros(count, bool)
    outside[np.unique(labels[~band & (free > 0)])] = True
    outside[0] = True  # label 0 is the region itself
    return region | ~outside[labels]


def hide(photo: np.ndarray, worn: WornMask) -> None:
    """Paint the worn mask over in ``photo`` (uint8 RGB, changed in place)."""
    x0, y0, x1, y1 = worn.box
    region = photo[y0:y1, x0:x1]
    alpha = worn.coverage[..., None]
    out = region * (1 - alpha) + worn.fill * alpha
    region[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def worn_mask_region(photo: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 coverage (0-1) of the mask the face on ``points`` already wears, over
    the whole photo; None for a bare face."""
    worn = find_worn_mask(photo, points)
    if worn is None:
        return None
    out = np.zeros(photo.shape[:2], np.float32)
    x0, y0, x1, y1 = worn.box
    out[y0:y1, x0:x1] = worn.coverage
    return out
