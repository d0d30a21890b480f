"""Faces as people really photograph them: one real-world condition on a labelled photo.

Every damage is a pure function ``(image, points, rng) -> (image, points)``: it returns a
new RGB uint8 image and the 68 labelled points in its pixels, and leaves its inputs alone.
The labels are kept as they are: a cut photo keeps the points it cut off, outside the
image (a face whose chin is out of frame still has a chin, and the mask is drawn over it).
Shapes, colours and textures are drawn from ``rng``, so one seed gives one photo.

Conditions and their variants (:data:`CONDITIONS`, named ``condition/variant``):

* ``clean``: the photo as it is.
* ``jpeg``: re-encoded at quality 15, 25 or 35 (a photo forwarded through chats).
* ``dark``: a fraction of the light in linear light, a gamma, and sensor noise (shot and
  read noise), with and without the phone's exposure boost that amplifies the noise.
* ``lowres``: shrunk until the outer eye corners are 24 or 18 px apart, scaled back up.
* ``sunglasses``: drawn from the eye points (round, wayfarer or aviator lenses, a bridge
  and the temples), opaque dark or reflective mirror lenses.
* ``worn-mask``: an already-worn mask from the nose to the chin, drawn from the jaw, nose
  and mouth points: cloth (plain, striped or printed), a respirator cup, or one of our own
  seven masks warped on with the product's warp (``core.render.warp``).
* ``chin-cut``: the photo cut just below the mouth, or halfway to the chin.
* ``forehead-cut``: the photo cut just above the brows, or through them.
* ``occluder``: a hand across the mouth (palm, fingers, forearm), or a cup held to it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

import cv2
import numpy as np

from core.detection.boxes import face_axes
from core.keypoints.face68 import (
    BROWS,
    CHIN,
    EYES,
    JAW,
    LEFT_EYE,
    MOUTH,
    NOSE_BASE,
    NOSE_TOP,
    OUTER_EYE_CORNERS,
    RIGHT_EYE,
)
from core.keypoints.face68 import NOSE_BRIDGE as _BRIDGE
from core.keypoints.preprocess import eye_angle
from training.metrics import interocular

Damage = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]

NOSE_BRIDGE = _BRIDGE[1]  # the bridge's second point (28), below the eyes' inner corners
BETWEEN_EYES = (RIGHT_EYE[3], LEFT_EYE[0])  # the inner eye corners, 39 and 42


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class FaceFrame:
    """The face's own frame: ``u`` along its eyes (image right, upright), ``v`` down its
    nose, both in units of the outer-eye-corner distance (``iod`` pixels), from ``origin``."""

    origin: np.ndarray
    right: np.ndarray
    down: np.ndarray
    iod: float

    @classmethod
    def of(cls, points: np.ndarray, origin: np.ndarray | None = None) -> FaceFrame:
        right, down = face_axes(eye_angle(points))
        centre = points[list(OUTER_EYE_CORNERS)].mean(0) if origin is None else origin
        return cls(np.asarray(centre, np.float64), right, down, float(interocular(points)))

    def to_image(self, uv) -> np.ndarray:
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        return self.origin + self.iod * (uv[:, :1] * self.right + uv[:, 1:] * self.down)

    def to_face(self, xy) -> np.ndarray:
        d = np.asarray(xy, np.float64).reshape(-1, 2) - self.origin
        return np.stack([d @ self.right, d @ self.down], 1) / self.iod

    def grid(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Every pixel's (u, v), each (H, W)."""
        h, w = shape
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xs - self.origin[0], ys - self.origin[1]
        u = (dx * self.right[0] + dy * self.right[1]) / self.iod
        v = (dx * self.down[0] + dy * self.down[1]) / self.iod
        return u, v


def superellipse(
    a: float, b: float, power: float = 2.0, taper: float = 0.0, sag: float = 0.0, n: int = 48
) -> np.ndarray:
    """(n, 2) outline |u/a|^p + |v/b|^p = 1; ``taper`` narrows the bottom (negative: the
    top), ``sag`` pulls the bottom half towards +u (a teardrop lens)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    u = a * np.sign(c) * np.abs(c) ** (2 / power)
    v = b * np.sign(s) * np.abs(s) ** (2 / power)
    u = u * (1 - taper * (v / b + 1) / 2) + sag * np.clip(v / b, 0, 1) * a
    return np.stack([u, v], 1)


def coverage(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    """Anti-aliased (H, W) float32 coverage (0-1) of filled image-pixel polygons."""
    mask = np.zeros(shape, np.uint8)
    pts = [np.round(np.asarray(p) * 16).astype(np.int32) for p in polygons]
    cv2.fillPoly(mask, pts, 255, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255


def stroke(shape: tuple[int, int], lines: list[np.ndarray], width: float) -> np.ndarray:
    """Anti-aliased (H, W) float32 coverage of open polylines ``width`` pixels thick."""
    mask = np.zeros(shape, np.uint8)
    pts = [np.round(np.asarray(p) * 16).astype(np.int32) for p in lines]
    cv2.polylines(mask, pts, False, 255, max(1, round(width)), cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255


def paint(image: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """``image`` (uint8) with ``colour`` ((3,) or (H, W, 3), 0-255) laid over at ``alpha``."""
    a = np.clip(alpha, 0, 1)[..., None]
    out = image.astype(np.float32) * (1 - a) + np.asarray(colour, np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def face_light(image: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """(H, W) the photo's low-passed light relative to the face's, so a thing drawn on the
    face takes its shadows (not its features)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    light = cv2.GaussianBlur(gray, (0, 0), max(1.0, 0.15 * frame.iod))
    u, v = frame.grid(image.shape[:2])
    on_face = (np.abs(u) < 0.6) & (v > -0.2) & (v < 1.2)
    ref = float(np.percentile(light[on_face], 80)) if on_face.any() else float(light.mean())
    return np.clip(light / max(ref, 1.0), 0.45, 1.15)


# --------------------------------------------------------------------------- conditions


def clean(image: np.ndarray, points: np.ndarray, rng: np.random.Generator):
    return image.copy(), points.copy()


def jpeg(image: np.ndarray, points: np.ndarray, rng: np.random.Generator, quality: int = 25):
    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy(), points.copy()


def dark(
    image: np.ndarray,
    points: np.ndarray,
    rng: np.random.Generator,
    light: float = 0.2,
    gamma: float = 1.0,
    read_noise: float = 0.002,
    shot_noise: float = 2e-4,
    boost: float = 1.0,
):
    """``light`` of the light (in linear light), sensor noise (read noise, and shot noise
    that grows with the signal: variance ``read_noise**2 + shot_noise * signal``), the
    camera's ``boost`` (auto-exposure gain, which amplifies the noise with the signal), and
    a ``gamma`` above 1 that crushes the shadows further."""
    linear = (image.astype(np.float32) / 255) ** 2.2 * light
    sigma = np.sqrt(read_noise**2 + shot_noise * linear)
    linear = linear + rng.standard_normal(linear.shape).astype(np.float32) * sigma
    linear = np.clip(linear * boost, 0, 1)
    out = linear ** (gamma / 2.2) * 255
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), points.copy()


def low_resolution(
    image: np.ndarray, points: np.ndarray, rng: np.random.Generator, eyes_px: float = 18.0
):
    """Shrunk until the outer eye corners are ``eyes_px`` apart, then scaled back up to its
    own size (as a small face in a photo looks once enlarged); already smaller: unchanged."""
    factor = eyes_px / float(interocular(points))
    if factor >= 1.0:
        return image.copy(), points.copy()
    h, w = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), points.copy()


LENS_SHAPES = {
    # half-width, half-height (iod units), superellipse power, taper, sag
    "round": (0.2, 0.19, 2.0, 0.0, 0.0),
    "wayfarer": (0.25, 0.16, 3.5, 0.22, 0.0),
    "aviator": (0.25, 0.2, 2.3, -0.15, -0.18),
}
DARK_LENSES = [(14, 14, 16), (42, 30, 22), (22, 36, 28), (30, 32, 44)]
MIRROR_LENSES = [  # top, bottom colours of a reflective coating
    ((170, 200, 235), (40, 60, 110)),
    ((235, 180, 90), (120, 50, 30)),
    ((210, 215, 220), (60, 62, 66)),
    ((150, 230, 200), (20, 80, 90)),
]


def sunglasses(
    image: np.ndarray, points: np.ndarray, rng: np.random.Generator, mirror: bool = False
):
    """Sunglasses drawn from the eye points: two lenses (shape from ``LENS_SHAPES``) over
    the eyes, a bridge and the temples towards the ears, opaque dark or mirrored."""
    points = np.asarray(points, np.float64)
    frame = FaceFrame.of(points)
    shape = image.shape[:2]
    a, b, power, taper, sag = LENS_SHAPES[str(rng.choice(list(LENS_SHAPES)))]
    scale = rng.uniform(0.95, 1.1)
    lenses = []
    for eye, side in ((RIGHT_EYE, -1.0), (LEFT_EYE, 1.0)):
        centre = frame.to_face(points[eye].mean(0))[0] + [0.0, 0.04]
        outline = superellipse(a * scale, b * scale, power, taper, sag)
        outline[:, 0] *= -side  # sag and shapes point to the nose on both sides
        lenses.append(frame.to_image(outline + centre))
    lens_alpha = coverage(shape, lenses)
    u, v = frame.grid(shape)
    if mirror:
        top, bottom = (np.array(c, np.float32) for c in MIRROR_LENSES[rng.integers(4)])
        t = np.clip((v + 0.2) / 0.4, 0, 1)[..., None]
        colour = top * (1 - t) + bottom * t
        colour = colour + 35 * np.exp(-(((v + 0.08) / 0.03) ** 2))[..., None]  # the horizon
        alpha = lens_alpha
    else:
        base = np.array(DARK_LENSES[rng.integers(len(DARK_LENSES))], np.float32)
        # a soft glint across the upper lens
        glint = 60 * np.exp(-(((u * 0.5 + v + 0.12) / 0.05) ** 2))[..., None]
        colour = base + glint
        alpha = lens_alpha * rng.uniform(0.93, 0.99)
    out = paint(image, alpha, colour)
    rims = [np.vstack([p, p[:1]]) for p in lenses]
    eye_line = np.array([[-0.5 * scale * a, -0.06], [0.5 * scale * a, -0.06]])
    inner = frame.to_face(points[list(BETWEEN_EYES)]).mean(0)
    bridge = frame.to_image(eye_line + [inner[0], inner[1] - 0.02])
    temples = []
    for side, jaw_top in ((-1, JAW[0]), (1, JAW[-1])):
        ear = frame.to_face(points[jaw_top])[0]
        start = [side * (0.5 + scale * a * 0.8), -0.06]
        temples.append(frame.to_image([start, [ear[0] + side * 0.05, ear[1] - 0.05]]))
    frame_colour = np.array([20, 20, 22], np.float32) if not mirror else np.array([150, 150, 150])
    width = max(1.0, 0.025 * frame.iod)
    out = paint(out, stroke(shape, rims + [bridge] + temples, width), frame_colour)
    return out, points.astype(np.float32)


MASK_COLOURS = [
    (150, 195, 225),  # surgical blue
    (236, 236, 232),  # white
    (28, 28, 30),  # black
    (35, 45, 80),  # navy
    (230, 170, 185),  # pink
    (120, 140, 95),  # khaki
    (200, 60, 55),  # red
]


def _mask_texture(
    rng: np.random.Generator, texture: str, u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """(H, W, 3) colours of a cloth: one colour, stripes in the face's frame, or a print."""
    base = np.array(MASK_COLOURS[rng.integers(len(MASK_COLOURS))], np.float32)
    if texture == "plain":
        colour = np.broadcast_to(base, (*u.shape, 3)).copy()
        if rng.random() < 0.5:  # pleats of a surgical mask
            colour *= (1 - 0.12 * (np.sin(2 * np.pi * v / 0.12) > 0.8))[..., None]
        return colour
    if texture == "striped":
        other = np.array(MASK_COLOURS[rng.integers(len(MASK_COLOURS))], np.float32)
        if np.abs(other - base).sum() < 60:
            other = 255 - base
        period = rng.uniform(0.07, 0.16)
        along = v if rng.random() < 0.5 else u + 0.3 * v
        stripe = (np.sin(2 * np.pi * along / period) > 0)[..., None]
        return np.where(stripe, base, other).astype(np.float32)
    if texture == "printed":
        cells = int(rng.integers(6, 14))
        palette = rng.uniform(20, 240, (cells, cells, 3)).astype(np.float32)
        # a blotchy print laid in the face's frame, so it bends with the face
        grid_u = np.clip((u + 0.8) / 1.6 * (cells - 1), 0, cells - 1).astype(np.float32)
        grid_v = np.clip((v + 0.2) / 1.6 * (cells - 1), 0, cells - 1).astype(np.float32)
        return cv2.remap(palette, grid_u, grid_v, cv2.INTER_CUBIC)
    raise ValueError(f"unknown texture {texture!r}")


def cloth_outline(points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """A cloth mask's edge: along the jaw (points 1-15, a little outside it) and over the
    nose, from jaw point 15 to 1 through the bridge."""
    centre = (points[NOSE_TOP] + points[CHIN]) / 2
    inner_jaw = JAW[1:-1]  # the ears' points (0, 16) stay out
    jaw = points[inner_jaw]
    jaw = (
        centre
        + 1.05 * (jaw - centre)
        + 0.04 * frame.iod * frame.down * (np.abs(np.array(inner_jaw) - CHIN) < 4)[:, None]
    )
    t = np.linspace(0, 1, 16)[1:-1, None]
    p0, p2 = points[JAW[-2]], points[JAW[1]]
    control = points[NOSE_BRIDGE] - 0.1 * frame.iod * frame.down
    top = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * control + t**2 * p2  # quadratic Bezier
    return np.vstack([jaw, top])


def _respirator_outline(points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """A respirator cup: a rounded shape from the nose bridge to below the chin."""
    top, chin = frame.to_face(points[NOSE_BRIDGE])[0], frame.to_face(points[CHIN])[0]
    width = np.linalg.norm(points[JAW[3]] - points[JAW[-4]]) / frame.iod
    centre = (top + chin) / 2 + [0.0, 0.03]
    half_height = (chin[1] - top[1]) / 2 + 0.06
    outline = superellipse(0.5 * width, half_height, 2.4, -0.35, 0.0)
    return frame.to_image(outline + centre)


@cache
def _our_picture(mask_id: int):
    """One of the product's seven masks, ready to warp (FaceMasker.picture without the
    keypoint model FaceMasker would load)."""
    from core.render.picture import load_picture
    from masks import catalog

    return load_picture(catalog.get(mask_id))


def worn_frame(points: np.ndarray) -> FaceFrame:
    """The face's frame a worn mask is drawn in: centred halfway from the nose bridge to
    the chin."""
    return FaceFrame.of(points, origin=(points[NOSE_BRIDGE] + points[CHIN]) / 2)


def worn_mask(
    image: np.ndarray, points: np.ndarray, rng: np.random.Generator, kind: str = "cloth-plain"
):
    """A mask already on the face: ``cloth-plain``, ``cloth-striped``, ``cloth-printed``,
    ``respirator``, or ``ours`` (one of the product's seven, warped on with its warp)."""
    points = np.asarray(points, np.float64)
    if kind == "ours":
        from core.render import warp
        from masks import catalog

        ids = [m.id for m in catalog.masks()]
        picture = _our_picture(int(rng.choice(ids)))
        # cover off: this draws a mask on a bare face, nothing is under it to hide
        return warp.apply_masks(image, picture, [points], cover=False), points.astype(np.float32)
    shape = image.shape[:2]
    frame = worn_frame(points)
    u, v = frame.grid(shape)
    if kind == "respirator":
        outline = _respirator_outline(points, frame)
        base = np.array(MASK_COLOURS[rng.choice([0, 1, 1, 2, 5])], np.float32)
        colour = np.broadcast_to(base, (*shape, 3)).copy()
    else:
        outline = cloth_outline(points, frame)
        colour = _mask_texture(rng, kind.removeprefix("cloth-"), u, v)
    out = lay_cloth(image, points, frame, u, outline, colour, seam=kind == "respirator")
    return out, points.astype(np.float32)


def lay_cloth(
    image: np.ndarray,
    points: np.ndarray,
    frame: FaceFrame,
    u: np.ndarray,
    outline: np.ndarray,
    colour: np.ndarray,
    seam: bool = False,
    straps: bool = True,
) -> np.ndarray:
    """``colour`` ((H, W, 3)) laid inside ``outline`` as cloth round the face: darker towards
    its sides, lit like the face, its edge drawn, the straps to the ears (and a respirator's
    ``seam`` down its middle)."""
    shape = image.shape[:2]
    alpha = coverage(shape, [outline])
    half_width = np.linalg.norm(points[JAW[2]] - points[JAW[-3]]) / 2 / frame.iod
    roundness = np.clip(1 - 0.35 * (u / max(half_width, 1e-3)) ** 2, 0.55, 1)
    colour = colour * (roundness * face_light(image, frame))[..., None]
    out = paint(image, alpha, colour)
    edges = [np.vstack([outline, outline[:1]])]
    if seam:
        edges.append(frame.to_image([[0.0, frame.to_face(points[NOSE_BRIDGE])[0, 1]], [0.0, 0.7]]))
    if straps:
        for end in (points[JAW[1]], points[JAW[-2]]):
            edges.append(np.array([end, end + (end - points[NOSE_BRIDGE]) * 0.25]))
    line = np.clip(colour.mean(axis=(0, 1)) * 0.6, 0, 255)
    return paint(out, stroke(shape, edges, max(1.0, 0.02 * frame.iod)) * 0.8, line)


def chin_cut_row(points: np.ndarray, to_chin: float) -> int:
    """The first row below a frame cut ``to_chin`` of the way from the mouth's lowest point
    to the chin's (unclamped)."""
    mouth_bottom = float(points[MOUTH, 1].max())
    chin = float(points[JAW, 1].max())
    return int(np.ceil(mouth_bottom + to_chin * max(0.0, chin - mouth_bottom)))


def forehead_cut_row(points: np.ndarray, above: float) -> int:
    """The first row of a frame cut ``above`` of the brow-to-eye distance above the brows'
    highest point (negative: through the brows; unclamped)."""
    brow_top = float(points[BROWS, 1].min())
    eyes = float(points[EYES, 1].mean())
    return int(np.floor(brow_top - above * max(0.0, eyes - brow_top)))


def chin_cut(image: np.ndarray, points: np.ndarray, rng: np.random.Generator, to_chin=0.15):
    """The photo cut below the mouth (:func:`chin_cut_row`); the points below stay, outside
    the image."""
    cut = min(max(chin_cut_row(points, to_chin), 1), image.shape[0])
    return image[:cut].copy(), points.copy()


def forehead_cut(image: np.ndarray, points: np.ndarray, rng: np.random.Generator, above=0.1):
    """The photo cut above the eyes (:func:`forehead_cut_row`); the points above stay,
    outside the image."""
    cut = min(max(forehead_cut_row(points, above), 0), image.shape[0] - 1)
    return image[cut:].copy(), (points - [0.0, cut]).astype(np.float32)


SKIN_TONES = [(240, 200, 175), (224, 172, 140), (198, 140, 100), (150, 100, 70), (95, 62, 45)]


def _capsule(frame: FaceFrame, a, b, radius: float) -> np.ndarray:
    """A rounded bar from face point ``a`` to ``b`` (face units), ``radius`` thick, outline."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    n = np.array([-d[1], d[0]])
    t = np.linspace(-np.pi / 2, np.pi / 2, 10)[:, None]
    cap_b = b + radius * (np.cos(t) * d + np.sin(t) * n)
    cap_a = a + radius * (-np.cos(t) * d - np.sin(t) * n)
    return frame.to_image(np.vstack([cap_b, cap_a]))


def occluder(image: np.ndarray, points: np.ndarray, rng: np.random.Generator, kind="hand"):
    """A hand across the mouth (palm on the near side, four fingers across to the far
    cheek, the forearm out of the near side) or a cup held to the mouth."""
    points = np.asarray(points, np.float64)
    shape = image.shape[:2]
    frame = FaceFrame.of(points, origin=points[MOUTH].mean(0))
    u, v = frame.grid(shape)
    side = float(rng.choice([-1.0, 1.0]))  # the hand's or the handle's side
    if kind == "hand":
        skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], np.float32)
        skin = skin * rng.uniform(0.92, 1.05)
        palm = superellipse(0.3, 0.3, 2.5) + [side * 0.3, 0.08]
        fingers = [
            _capsule(frame, [side * 0.3, dv], [side * (0.3 - length), dv], 0.065)
            for dv, length in zip([-0.16, -0.03, 0.1, 0.22], rng.uniform(0.62, 0.78, 4))
        ]
        forearm = _capsule(frame, [side * 0.35, 0.15], [side * 1.6, 1.2], 0.24)
        shapes = [frame.to_image(palm), forearm, *fingers]
        alpha = coverage(shape, shapes)
        shade = np.clip(1.05 - 0.25 * np.abs(v - 0.05), 0.7, 1.05)
        out = paint(image, alpha, skin * (shade * face_light(image, frame))[..., None])
        gaps = [
            frame.to_image([[side * 0.28, dv], [side * -0.3, dv]]) for dv in (-0.095, 0.035, 0.16)
        ]
        out = paint(out, stroke(shape, gaps, max(1.0, 0.015 * frame.iod)) * 0.5, skin * 0.55)
        return out, points.astype(np.float32)
    if kind == "cup":
        colours = [(245, 245, 240), (190, 40, 40), (40, 70, 150), (30, 30, 30), (240, 200, 60)]
        colour = np.array(colours[rng.integers(len(colours))], np.float32)
        half = rng.uniform(0.28, 0.34)
        rim_v = frame.to_face(points[NOSE_BASE])[0, 1] + 0.04
        body = np.array([[-half, rim_v], [half, rim_v], [half * 0.85, 2.0], [-half * 0.85, 2.0]])
        du = rng.uniform(-0.05, 0.05)
        handle = _capsule(frame, [side * half + du, rim_v + 0.2], [side * (half + 0.2), 0.6], 0.06)
        alpha = coverage(shape, [frame.to_image(body + [du, 0.0]), handle])
        shade = np.clip(1.05 - 0.5 * ((u - du) / half) ** 2, 0.45, 1.05)
        out = paint(image, alpha, colour * shade[..., None])
        rim = frame.to_image(superellipse(half, 0.07, 2.0) + [du, rim_v])
        out = paint(out, coverage(shape, [rim]), colour * 0.55)
        return out, points.astype(np.float32)
    raise ValueError(f"unknown occluder {kind!r}")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Condition:
    name: str  # "jpeg"
    variant: str  # "q25"
    damage: Damage

    @property
    def key(self) -> str:
        return self.name if not self.variant else f"{self.name}/{self.variant}"


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", "", clean),
    Condition("jpeg", "q35", partial(jpeg, quality=35)),
    Condition("jpeg", "q25", partial(jpeg, quality=25)),
    Condition("jpeg", "q15", partial(jpeg, quality=15)),
    Condition("dark", "dim", partial(dark, light=0.3, gamma=1.0, read_noise=0.002)),
    Condition("dark", "night", partial(dark, light=0.08, gamma=1.2, read_noise=0.003)),
    Condition(
        "dark",
        "night-boosted",
        partial(dark, light=0.04, gamma=1.0, read_noise=0.003, shot_noise=4e-4, boost=8.0),
    ),
    Condition("lowres", "eyes24", partial(low_resolution, eyes_px=24.0)),
    Condition("lowres", "eyes18", partial(low_resolution, eyes_px=18.0)),
    Condition("sunglasses", "opaque", partial(sunglasses, mirror=False)),
    Condition("sunglasses", "mirror", partial(sunglasses, mirror=True)),
    Condition("worn-mask", "cloth-plain", partial(worn_mask, kind="cloth-plain")),
    Condition("worn-mask", "cloth-striped", partial(worn_mask, kind="cloth-striped")),
    Condition("worn-mask", "cloth-printed", partial(worn_mask, kind="cloth-printed")),
    Condition("worn-mask", "respirator", partial(worn_mask, kind="respirator")),
    Condition("worn-mask", "ours", partial(worn_mask, kind="ours")),
    Condition("chin-cut", "below-mouth", partial(chin_cut, to_chin=0.15)),
    Condition("chin-cut", "mid-chin", partial(chin_cut, to_chin=0.5)),
    Condition("forehead-cut", "above-brows", partial(forehead_cut, above=0.1)),
    Condition("forehead-cut", "through-brows", partial(forehead_cut, above=-0.5)),
    Condition("occluder", "hand", partial(occluder, kind="hand")),
    Condition("occluder", "cup", partial(occluder, kind="cup")),
)


def select(names: list[str] | None) -> list[Condition]:
    """The conditions named (``dark`` is all its variants, ``dark/night`` one); all: None."""
    if not names:
        return list(CONDITIONS)
    chosen = []
    for name in names:
        found = [c for c in CONDITIONS if name in (c.name, c.key)]
        if not found:
            known = ", ".join(
                dict.fromkeys([c.name for c in CONDITIONS] + [c.key for c in CONDITIONS])
            )
            raise ValueError(f"unknown condition {name!r}: choose from {known}")
        chosen += [c for c in found if c not in chosen]
    return chosen


def damaged(
    condition: Condition, image: np.ndarray, points: np.ndarray, seed: int = 0, index: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``condition`` on one photo; its random choices depend on the seed, the photo's index
    and the condition's name only, so adding a condition changes no other."""
    rng = np.random.default_rng([seed, index, zlib.crc32(condition.key.encode())])
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    return condition.damage(image, np.asarray(points, np.float32), rng)
