"""Draw the seven masks with code, in the face-template frame.

Every mask is drawn over a canonical face: the mean 68-point shape of the training set,
each face normalised by its keypoint box, mirrored and averaged so it is symmetric. One
face unit is the width of that box; the canvas spans x in [-0.14, 1.14] and y in
[0.16, 1.12] (below the brows to under the chin), so the landmark anchors of every mask
are simply the template points in canvas pixels, written to ``catalog.json``.

Pictures are drawn at twice their size and area-averaged down (antialiased), with a
height field per mask (domes, pleats, seams, valves) lit from the upper left. The lighting
of the photo itself is added at warp time (``core.render.warp``), so the shading drawn here stays
mild. Regenerate with::

    python -m lab.draw_masks [--csv ../shared/data/face-keypoints/training_frames_keypoints.csv]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from core.keypoints.face68 import FLIP_PERMUTATION
from core.render.warp import INNER, RING
from masks.catalog import CATALOG_PATH, PNG_DIR, MaskSpec

log = logging.getLogger(__name__)

# the data set beside the repository, as laid out for development and CI
DEFAULT_CSV = (
    Path(__file__).resolve().parents[2] / "shared/data/face-keypoints/training_frames_keypoints.csv"
)

ORIGIN = np.array([-0.14, 0.16])  # template units at canvas pixel (0, 0)
UNIT = 800.0  # canvas pixels per face unit
SIZE = (1024, 768)  # canvas width, height
SUPERSAMPLE = 2

# The landmarks every mask follows: the ones the warp follows (jaw line, nose line, outer
# lip corners and midpoints).
ANCHORS = RING + INNER

SPECS = [
    MaskSpec(1, "Surgical mask", "Surgical", "😷"),
    MaskSpec(2, "N95 cup", "N95", "⚪"),
    MaskSpec(3, "N95 with valve", "N95 valve", "🔘"),
    MaskSpec(4, "Black cloth mask", "Black", "🖤"),
    MaskSpec(5, "Patterned cloth mask", "Pattern", "🎨"),
    MaskSpec(6, "Sport mask with two valves", "Sport", "🏃"),
    MaskSpec(7, "Half-face respirator", "Villain", "🦹"),
]


# --------------------------------------------------------------------------- template


def mean_shape(csv: Path) -> np.ndarray:
    """The symmetric mean face: (68, 2), each face normalised to its keypoint box."""
    table = np.genfromtxt(csv, delimiter=",", skip_header=1)[:, 1:]
    faces = table.reshape(-1, 68, 2)
    lo, hi = faces.min(axis=1, keepdims=True), faces.max(axis=1, keepdims=True)
    mean = ((faces - lo) / (hi - lo)).mean(axis=0)
    mirrored = mean[FLIP_PERMUTATION] * [-1.0, 1.0] + [1.0, 0.0]
    return (mean + mirrored) / 2


def template_pixels(shape: np.ndarray) -> np.ndarray:
    return (shape - ORIGIN) * UNIT


# --------------------------------------------------------------------------- drawing


def catmull_rom(
    points: Sequence[Sequence[float]], closed: bool = True, steps: int = 24
) -> np.ndarray:
    """A smooth curve through ``points`` (template units)."""
    p = np.asarray(points, dtype=float)
    if closed:
        p = np.vstack([p[-1], p, p[0], p[1]])
    else:
        p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    if not closed:
        out.append(p[-2][None])
    return np.vstack(out)


class Painter:
    """Albedo, coverage, height and gloss layers at the supersampled size."""

    def __init__(self) -> None:
        self.scale = UNIT * SUPERSAMPLE
        self.w, self.h = SIZE[0] * SUPERSAMPLE, SIZE[1] * SUPERSAMPLE
        self.albedo = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        self.height = np.zeros((self.h, self.w), np.float32)
        self.gloss = np.zeros((self.h, self.w), np.float32)
        ys, xs = np.mgrid[0 : self.h, 0 : self.w].astype(np.float32)
        self.x = xs / self.scale + ORIGIN[0]  # template units of every pixel
        self.y = ys / self.scale + ORIGIN[1]

    def px(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, dtype=float) - ORIGIN) * self.scale

    def _fixed(self, pts: np.ndarray) -> np.ndarray:
        return np.round(self.px(pts) * 16).astype(np.int32).reshape(-1, 1, 2)

    def polygon(self, pts: np.ndarray) -> np.ndarray:
        img = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(img, [self._fixed(pts)], 255, cv2.LINE_AA, shift=4)
        return img.astype(np.float32) / 255

    def line(self, pts: np.ndarray, width: float) -> np.ndarray:
        img = np.zeros((self.h, self.w), np.uint8)
        thickness = max(1, round(width * self.scale))
        cv2.polylines(img, [self._fixed(pts)], False, 255, thickness, cv2.LINE_AA, shift=4)
        return img.astype(np.float32) / 255

    def ellipse(self, center: Sequence[float], radii: Sequence[float]) -> np.ndarray:
        d = ((self.x - center[0]) / radii[0]) ** 2 + ((self.y - center[1]) / radii[1]) ** 2
        edge = 1.5 / (self.scale * min(radii))  # about 1.5 supersampled pixels of ramp
        return np.clip((1 - d) / (2 * edge), 0, 1).astype(np.float32)

    def circle(self, center: Sequence[float], r: float) -> np.ndarray:
        return self.ellipse(center, (r, r))

    def paint(
        self,
        cover: np.ndarray,
        color: Sequence[float] | np.ndarray,
        gloss: float | None = None,
    ) -> None:
        """Lay ``color`` (RGB 0-1, or an image) over what is there, where ``cover`` > 0."""
        c = cover[..., None]
        self.albedo = self.albedo * (1 - c) + np.asarray(color, np.float32) * c
        self.alpha = self.alpha + cover * (1 - self.alpha)
        if gloss is not None:
            self.gloss = self.gloss * (1 - cover) + gloss * cover

    def lift(self, cover: np.ndarray, amount: np.ndarray | float) -> None:
        """Add to the height field (template units) where ``cover`` > 0."""
        self.height += cover * amount

    def dome(self, cover: np.ndarray, radius: float) -> np.ndarray:
        """Rounded-edge profile inside ``cover``: rises over ``radius`` from the edge."""
        dist = cv2.distanceTransform((cover > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
        r = radius * self.scale
        t = np.clip(dist / r, 0, 1)
        return (np.sqrt(1 - (1 - t) ** 2) * radius).astype(np.float32)

    def render(
        self, light: Sequence[float] = (-0.35, -0.6, 0.72), shininess: float = 40.0
    ) -> np.ndarray:
        """Light the height field and return the RGBA picture at its final size (uint8)."""
        height = cv2.GaussianBlur(self.height * self.scale, (0, 0), 1.2)
        gy, gx = np.gradient(height)
        normal = np.dstack([-gx, -gy, np.ones_like(gx)])
        normal /= np.linalg.norm(normal, axis=2, keepdims=True)
        lvec = np.asarray(light, np.float32) / np.linalg.norm(light)
        diffuse = np.clip(normal @ lvec, 0, 1) / lvec[2]
        shade = 0.35 + 0.65 * diffuse
        half = lvec + [0, 0, 1]
        half /= np.linalg.norm(half)
        spec = self.gloss * np.clip(normal @ half, 0, 1) ** shininess
        # Ambient occlusion near the outline: the fabric turns away from the viewer there.
        dist = cv2.distanceTransform((self.alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
        occlusion = 1 - 0.22 * np.exp(-dist / (0.025 * self.scale))
        rgb = self.albedo * (shade * occlusion)[..., None] + spec[..., None]
        rgba = np.dstack([np.clip(rgb, 0, 1) * self.alpha[..., None], self.alpha])
        small = cv2.resize(rgba, SIZE, interpolation=cv2.INTER_AREA)
        a = small[..., 3:]
        color = np.where(a > 1e-4, small[..., :3] / np.maximum(a, 1e-4), 0)
        out = np.dstack([color, a])
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def rgb(hexcode: str) -> np.ndarray:
    return np.array([int(hexcode[i : i + 2], 16) / 255 for i in (1, 3, 5)], np.float32)


def noise(p: Painter, sigma: float, seed: int) -> np.ndarray:
    """Smooth zero-mean noise of unit spread, feature size ``sigma`` supersampled pixels."""
    rng = np.random.default_rng(seed)
    n = cv2.GaussianBlur(rng.standard_normal((p.h, p.w)).astype(np.float32), (0, 0), sigma)
    return n / (n.std() + 1e-6)


def mirror_x(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    return [(1 - x, y) for x, y in points]


def symmetric_outline(left_half: Sequence[Sequence[float]]) -> np.ndarray:
    """A closed outline from its left half, listed from the top centre down to the bottom centre."""
    right = mirror_x(left_half[1:-1])[::-1]
    return catmull_rom(list(left_half) + right)


def ear_loop(p: Painter, start: Sequence[float], end: Sequence[float], bend: float) -> np.ndarray:
    """Cover of an elastic cord from the mask to behind the ear, fading out there."""
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + bend)
    curve = catmull_rom([start, mid, end], closed=False)
    cover = p.line(curve, 0.011)
    fade = (
        np.clip((p.x - end[0]) / 0.05, 0, 1)
        if end[0] < 0.5
        else np.clip((end[0] - p.x) / 0.05, 0, 1)
    )
    return cover * fade


def stitches(
    p: Painter, curve: np.ndarray, dash: float = 0.018, width: float = 0.004
) -> np.ndarray:
    """Cover of a dashed stitch line along ``curve``."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    run = np.concatenate([[0], np.cumsum(seg)])
    cover = np.zeros((p.h, p.w), np.float32)
    on = (run // dash) % 2 == 0
    start = None
    for i, flag in enumerate(on):
        if flag and start is None:
            start = i
        if (not flag or i == len(on) - 1) and start is not None:
            if i - start >= 1:
                cover = np.maximum(cover, p.line(curve[start : i + 1], width))
            start = None
    return cover


def inset(outline: np.ndarray, amount: float) -> np.ndarray:
    """The outline pulled towards its centroid by ``amount`` template units (near enough)."""
    c = outline.mean(axis=0)
    d = outline - c
    return c + d * (1 - amount / np.linalg.norm(d, axis=1, keepdims=True))


# --------------------------------------------------------------------------- shapes


def surgical_outline(t: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Pleated rectangle: straight-ish top over the nose, bottom under the chin."""

    def top(x: float) -> float:
        return 0.30 + 0.11 * ((x - 0.5) / 0.485) ** 2

    def bottom(x: float) -> float:
        return 1.05 - 0.29 * ((x - 0.5) / 0.38) ** 2

    side = [(t[1] + t[2]) / 2, t[2], t[3], t[4], t[4] * 0.6 + t[5] * 0.4]
    side = [(x - 0.018, y) for x, y in side]
    side[0] = (side[0][0], top(side[0][0]))
    top_xs = np.linspace(side[0][0], 1 - side[0][0], 25)
    bottom_xs = np.linspace(1 - side[-1][0], side[-1][0], 25)
    right_side = mirror_x(side)
    pts = (
        [(x, top(x)) for x in top_xs]
        + right_side[1:-1]
        + [(x, bottom(x)) for x in bottom_xs]
        + side[::-1][1:-1]
    )
    return np.asarray(pts), side, [top, bottom]


def contour_outline(t: np.ndarray, top: float = 0.29, chin: float = 1.06) -> np.ndarray:
    """Cloth-mask outline with a centre seam: peaked over the nose and under the chin."""
    left = [
        (0.5, top),
        (0.33, top + 0.035),
        (0.15, top + 0.085),
        (t[1][0] - 0.012, (t[1][1] + t[2][1]) / 2),
        (t[3][0] - 0.015, t[3][1]),
        (t[4][0] - 0.01, t[4][1] + 0.03),
        (t[6][0] - 0.005, t[6][1] + 0.035),
        (0.5, chin),
    ]
    return symmetric_outline(left)


def cup_outline(t: np.ndarray) -> np.ndarray:
    left = [
        (0.5, 0.285),
        (0.31, 0.325),
        (0.13, 0.43),
        (t[3][0] - 0.01, 0.6),
        (0.13, 0.79),
        (0.29, 0.96),
        (0.5, 1.05),
    ]
    return symmetric_outline(left)


# --------------------------------------------------------------------------- the seven


def draw_surgical(t: np.ndarray) -> np.ndarray:
    p = Painter()
    outline, side, (top, bottom) = surgical_outline(t)
    body = p.polygon(outline)
    # Ear loops from the corners to behind the ear.
    for flip in (False, True):
        corners = [side[0], side[-1]]
        ear = (-0.075, 0.30)
        if flip:
            corners = mirror_x(corners)
            ear = (1 + 0.075, 0.30)
        for corner, bend in zip(corners, (-0.02, 0.03), strict=True):
            p.paint(ear_loop(p, corner, ear, bend), rgb("#f2f4f3"))
            p.lift(ear_loop(p, corner, ear, bend), 0.004)
    blue = rgb("#8ecae6")
    fabric = blue * (1 + 0.025 * noise(p, 1.0, 1))[..., None]
    p.paint(body, fabric)
    # Three pleats: spread over the middle, gathered at the sides.
    ty = np.vectorize(top)(p.x)
    by = np.vectorize(bottom)(np.clip(p.x, 0.06, 0.94))
    spread = 0.55 + 0.45 * np.clip(1 - ((p.x - 0.5) / 0.5) ** 2, 0, 1)
    frac = (p.y - ty) / np.maximum(by - ty, 1e-3)
    pleat = 0.5 + (frac - 0.5) / spread  # 0-1 across the pleated band
    # Each fold is a step down (a dark line where the fabric turns under) with a soft
    # shadow on the fabric just below it.
    folds = (0.28, 0.5, 0.72)
    steps = sum(1 / (1 + np.exp(np.clip((pleat - f) / 0.012, -40, 40))) for f in folds)
    below = sum(np.where(pleat > f, np.exp(-(pleat - f) / 0.05), 0) for f in folds)
    p.lift(body, 0.012 * steps)
    p.albedo *= (1 - 0.16 * body * below)[..., None]
    p.lift(body, p.dome(body, 0.04) * 0.6)
    # Bound edges: a lighter hem along top and bottom, binding at the sides.
    hem = p.line(outline[:25], 0.022) + p.line(outline[-27:], 0.022)
    p.paint(np.clip(hem, 0, 1) * body, rgb("#a9d8ee"))
    p.lift(np.clip(hem, 0, 1) * body, 0.003)
    sides = p.line(np.asarray(side), 0.03) + p.line(np.asarray(mirror_x(side)), 0.03)
    p.paint(np.clip(sides, 0, 1) * body, rgb("#bfe3f3"))
    p.lift(np.clip(sides, 0, 1) * body, 0.004)
    # Nose wire under the top hem.
    wire = p.line(
        catmull_rom(
            [(0.39, top(0.39) + 0.012), (0.5, 0.312), (0.61, top(0.61) + 0.012)], closed=False
        ),
        0.008,
    )
    p.lift(wire * body, 0.004)
    return p.render()


def draw_cup(t: np.ndarray, valve: bool) -> np.ndarray:
    p = Painter()
    outline = cup_outline(t)
    body = p.polygon(outline)
    white = rgb("#f3f1ea") if not valve else rgb("#e9ebee")
    for y_start, y_ear, bend in ((0.47, 0.26, -0.01), (0.78, 0.42, 0.03)):
        for flip in (False, True):
            x0 = t[3][0] + 0.02 if y_start < 0.6 else 0.15
            start, ear = (x0, y_start), (-0.08, y_ear)
            if flip:
                start, ear = (1 - start[0], start[1]), (1.08, y_ear)
            strap = ear_loop(p, start, ear, bend) * 1.0
            strap = np.clip(cv2.dilate(strap, np.ones((9, 9), np.uint8)), 0, 1)
            p.paint(strap, rgb("#e9e2c8"))
            p.lift(strap, 0.004)
    fibre = 1 + 0.025 * noise(p, 0.8, 2) + 0.008 * noise(p, 6, 3)
    p.paint(body, white * fibre[..., None])
    # The molded cup: a dome over the whole shape, a flat rim at the edge.
    bulge = np.clip(1 - ((p.x - 0.5) / 0.47) ** 2 - ((p.y - 0.70) / 0.42) ** 2, 0, 1)
    p.lift(body, 0.16 * np.sqrt(bulge) + p.dome(body, 0.03) * 0.4)
    rim = np.clip(body - p.polygon(inset(outline, 0.035)), 0, 1)
    p.paint(rim, white * 0.96)
    p.lift(rim, -0.006)
    seam = stitches(p, inset(outline, 0.04), dash=0.012, width=0.003)
    p.paint(seam * body, white * 0.82)
    # Metal nose clip.
    clip_curve = catmull_rom([(0.39, 0.325), (0.5, 0.305), (0.61, 0.325)], closed=False)
    clip = p.line(clip_curve, 0.018)
    p.paint(clip, rgb("#b9bec4"), gloss=0.6)
    p.lift(clip, 0.004)
    if valve:
        c, r = (0.5, 0.745), 0.095
        housing = p.circle(c, r)
        p.paint(housing, rgb("#d5d9de"), gloss=0.35)
        p.lift(housing, p.dome(housing, 0.03) + 0.01)
        cap = p.circle(c, r * 0.72)
        p.paint(cap, rgb("#c4c9cf"), gloss=0.45)
        p.lift(cap, p.dome(cap, 0.015))
        # Slots in the cap: short horizontal bars.
        for k in range(-2, 3):
            yy = c[1] + k * 0.022
            half = np.sqrt(max((r * 0.55) ** 2 - (k * 0.022) ** 2, 0))
            slot = p.line(np.array([(c[0] - half, yy), (c[0] + half, yy)]), 0.008)
            p.paint(slot * cap, rgb("#7d838a"))
            p.lift(slot * cap, -0.006)
        ring = np.clip(p.circle(c, r * 0.76) - p.circle(c, r * 0.70), 0, 1)
        p.paint(ring, rgb("#9aa1a8"))
    return p.render()


def cloth(
    t: np.ndarray, albedo: np.ndarray | Callable[[Painter], np.ndarray], loop: str
) -> Painter:
    """The contoured cloth mask, with centre seam, hem stitching and ear loops."""
    p = Painter()
    outline = contour_outline(t)
    body = p.polygon(outline)
    for flip in (False, True):
        corners = [
            outline[np.argmin(np.abs(outline[:, 1] - 0.43) + (outline[:, 0] > 0.5))],
            outline[np.argmin(np.abs(outline[:, 1] - 0.76) + (outline[:, 0] > 0.5))],
        ]
        ear = (-0.075, 0.31)
        if flip:
            corners, ear = mirror_x(corners), (1.075, 0.31)
        for corner, bend in zip(corners, (-0.02, 0.03), strict=True):
            cord = ear_loop(p, (corner[0] + 0.015 * (1 if not flip else -1), corner[1]), ear, bend)
            cord = np.clip(cv2.dilate(cord, np.ones((7, 7), np.uint8)), 0, 1)
            p.paint(cord, rgb(loop))
            p.lift(cord, 0.005)
    color = albedo(p) if callable(albedo) else albedo
    weave = (
        1
        + 0.03 * np.sin(p.x * 2 * np.pi / 0.006) * np.sin(p.y * 2 * np.pi / 0.006)
        + 0.03 * noise(p, 1.0, 4)
    )
    p.paint(body, color * weave[..., None])
    # A ridge along the centre seam: the cloth is sewn from two curved halves.
    ridge = np.clip(1 - np.abs(p.x - 0.5) / 0.5, 0, 1) ** 1.6
    p.lift(body, 0.07 * ridge + p.dome(body, 0.035) * 0.5)
    seam_curve = np.array([(0.5, 0.29), (0.5, 1.06)])
    p.lift(p.line(seam_curve, 0.006) * body, -0.004)
    hem = stitches(p, inset(outline, 0.018), dash=0.014, width=0.0045)
    p.paint(
        hem * body,
        color * 1.25 + 0.06 if not callable(albedo) else np.clip(color * 0.6 + 0.25, 0, 1),
    )
    p.lift(hem * body, 0.002)
    return p


def plaid(p: Painter) -> np.ndarray:
    """A tartan of navy, red and mustard: stripes in x and y woven together."""

    def stripes(coord: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = (coord / 0.16) % 1.0
        broad = ((u > 0.1) & (u < 0.45)).astype(np.float32)
        thin = ((u > 0.68) & (u < 0.71)).astype(np.float32)
        return cv2.GaussianBlur(broad, (0, 0), 1.2), cv2.GaussianBlur(thin, (0, 0), 1.0)

    bx, tx = stripes(p.x)
    by, ty = stripes(p.y)
    base = rgb("#1f3a68")
    red = rgb("#b8323a")
    mustard = rgb("#e8b930")
    broad = (bx + by)[..., None] / 2
    color = base * (1 - broad) + red * broad
    overlap = (bx * by)[..., None]
    color = color * (1 - 0.35 * overlap)
    thin = np.clip(tx + ty, 0, 1)[..., None]
    return (color * (1 - thin) + mustard * thin).astype(np.float32)


def draw_sport(t: np.ndarray) -> np.ndarray:
    p = Painter()
    outline = contour_outline(t, top=0.285, chin=1.05)
    body = p.polygon(outline)
    for flip in (False, True):
        start, ear = (t[2][0] + 0.01, 0.47), (-0.08, 0.33)
        if flip:
            start, ear = (1 - start[0], start[1]), (1.08, 0.33)
        strap = np.clip(
            cv2.dilate(ear_loop(p, start, ear, -0.01), np.ones((25, 25), np.uint8)), 0, 1
        )
        p.paint(strap, rgb("#1b1d20"))
        p.lift(strap, 0.006)
    graphite = rgb("#3a3f46") * (1 + 0.05 * noise(p, 1.0, 5))[..., None]
    p.paint(body, graphite, gloss=0.08)
    ridge = np.clip(1 - np.abs(p.x - 0.5) / 0.5, 0, 1) ** 1.4
    p.lift(body, 0.08 * ridge + p.dome(body, 0.04) * 0.6)
    # A lighter side panel sweeping from the nose to the jaw, with an accent line.
    panel_edge = catmull_rom([(0.5, 0.40), (0.36, 0.50), (0.2, 0.78), (0.16, 0.95)], closed=False)
    for flip in (False, True):
        edge = panel_edge if not flip else np.asarray(mirror_x(panel_edge))
        accent = p.line(edge, 0.012)
        p.paint(accent * body, rgb("#ff7a1a"))
    for cx in (0.255, 0.745):
        c, r = (cx, 0.70), 0.085
        ring = p.circle(c, r)
        p.paint(ring, rgb("#ff7a1a"), gloss=0.4)
        p.lift(ring, p.dome(ring, 0.02) + 0.015)
        cap = p.circle(c, r * 0.78)
        p.paint(cap, rgb("#24272b"), gloss=0.3)
        p.lift(cap, p.dome(cap, 0.012))
        # Grille: a grid of round holes.
        holes = np.zeros_like(cap)
        for i in range(-3, 4):
            for j in range(-3, 4):
                hx, hy = c[0] + i * 0.016, c[1] + j * 0.016
                if (i * 0.016) ** 2 + (j * 0.016) ** 2 < (r * 0.62) ** 2:
                    holes = np.maximum(holes, p.circle((hx, hy), 0.0055))
        p.paint(holes, rgb("#0b0c0d"))
        p.lift(holes, -0.004)
    hem = stitches(p, inset(outline, 0.016), dash=0.012, width=0.004)
    p.paint(hem * body, rgb("#6b7179"))
    return p.render()


def draw_respirator(t: np.ndarray) -> np.ndarray:
    p = Painter()
    left = [
        (0.5, 0.275),
        (0.38, 0.30),
        (0.2, 0.40),
        (t[2][0] + 0.01, 0.52),
        (t[4][0] + 0.0, 0.74),
        (0.3, 0.93),
        (0.5, 1.03),
    ]
    outline = symmetric_outline(left)
    body = p.polygon(outline)
    for flip in (False, True):
        start, ear = (0.17, 0.43), (-0.09, 0.30)
        if flip:
            start, ear = (1 - start[0], start[1]), (1.09, 0.30)
        strap = np.clip(
            cv2.dilate(ear_loop(p, start, ear, -0.01), np.ones((31, 31), np.uint8)), 0, 1
        )
        p.paint(strap, rgb("#151515"))
        p.lift(strap, 0.006)
        buckle = p.circle(((start[0] + ear[0]) / 2 + 0.01, (start[1] + ear[1]) / 2 - 0.008), 0.018)
        p.paint(buckle * strap, rgb("#8a8d91"), gloss=0.7)
    rubber = rgb("#2a2b2e") * (1 + 0.03 * noise(p, 1.5, 6))[..., None]
    p.paint(body, rubber, gloss=0.35)
    bulge = np.clip(1 - ((p.x - 0.5) / 0.5) ** 2 - ((p.y - 0.72) / 0.45) ** 2, 0, 1)
    p.lift(body, 0.1 * np.sqrt(bulge) + p.dome(body, 0.03) * 0.7)
    # A raised rib around the face seal.
    rib = p.line(inset(outline, 0.03), 0.012) * body
    p.lift(rib, 0.006)
    # Two filter cartridges on the cheeks.
    for cx in (0.2, 0.8):
        c = (cx, 0.73)
        collar = p.circle(c, 0.15)
        p.paint(collar, rgb("#1c1d1f"), gloss=0.3)
        p.lift(collar, p.dome(collar, 0.04) + 0.03)
        face = p.circle(c, 0.125)
        p.paint(face, rgb("#7a1f1f"), gloss=0.5)
        p.lift(face, p.dome(face, 0.02) + 0.02)
        holes = np.zeros_like(face)
        for ring_r, count in ((0.0, 1), (0.035, 8), (0.07, 14), (0.1, 20)):
            for k in range(count):
                a = 2 * np.pi * k / count
                holes = np.maximum(
                    holes, p.circle((c[0] + ring_r * np.cos(a), c[1] + ring_r * np.sin(a)), 0.008)
                )
        p.paint(holes, rgb("#120808"))
        p.lift(holes, -0.006)
        rim = np.clip(p.circle(c, 0.128) - p.circle(c, 0.118), 0, 1)
        p.paint(rim, rgb("#a8acb1"), gloss=0.8)
    # Exhalation grille over the mouth and chin: a rounded box with slats.
    box = p.polygon(
        catmull_rom(
            [(0.5, 0.66), (0.6, 0.69), (0.61, 0.84), (0.5, 0.90), (0.39, 0.84), (0.4, 0.69)]
        )
    )
    p.paint(box, rgb("#3b3d41"), gloss=0.5)
    p.lift(box, p.dome(box, 0.025) + 0.03)
    for k in range(6):
        yy = 0.705 + k * 0.03
        slat = p.line(np.array([(0.42, yy), (0.58, yy)]), 0.012) * box
        p.paint(slat, rgb("#101113"))
        p.lift(slat, -0.008)
    return p.render()


def draw_all(template: np.ndarray) -> dict[int, np.ndarray]:
    t = template
    return {
        1: draw_surgical(t),
        2: draw_cup(t, valve=False),
        3: draw_cup(t, valve=True),
        4: cloth(t, rgb("#232427"), "#1a1a1c").render(),
        5: cloth(t, plaid, "#1f3a68").render(),
        6: draw_sport(t),
        7: draw_respirator(t),
    }


# --------------------------------------------------------------------------- main


def load_template(csv: Path) -> np.ndarray:
    """The template in face units: from the CSV when it is there, else from the catalog."""
    if csv.exists():
        return mean_shape(csv)
    log.warning("%s not found; reusing the template in %s", csv, CATALOG_PATH)
    data = json.loads(CATALOG_PATH.read_text())
    return np.asarray(data["template"]["points"]) / data["template"]["unit"] + ORIGIN


def write(template: np.ndarray, pictures: dict[int, np.ndarray]) -> None:
    PNG_DIR.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec in SPECS:
        path = PNG_DIR / f"{spec.id}.png"
        cv2.imwrite(str(path), cv2.cvtColor(pictures[spec.id], cv2.COLOR_RGBA2BGRA))
        entries.append(
            {
                "id": spec.id,
                "name": spec.name,
                "label": spec.label,
                "emoji": spec.emoji,
                "file": f"png/{path.name}",
                "anchors": ANCHORS,
            }
        )
    catalog = {
        "template": {
            "width": SIZE[0],
            "height": SIZE[1],
            "unit": UNIT,
            "points": np.round(template_pixels(template), 2).tolist(),
        },
        "masks": entries,
    }
    CATALOG_PATH.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--csv", type=Path, default=DEFAULT_CSV, help="keypoints CSV for the mean face"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    template = load_template(args.csv)
    pictures = draw_all(template)
    write(template, pictures)
    log.info("wrote %d masks and %s", len(pictures), CATALOG_PATH)


if __name__ == "__main__":
    main()
