"""Occlusion augmentation: faces already masked, behind sunglasses or a hand, cut by the
frame, or in the dark, drawn on training photos from their own labelled points.

The drawings are :mod:`training.damage`'s (the same generators ``facemask-robustness``
measures with), with their sizes, colours and strengths drawn wider here, plus bars of
colour. A few variants are **held out** of training on purpose, so the robustness table
also says how the model does on occluders it never saw: striped cloth, mirrored lenses and
a cup (:data:`HELD_OUT`).

Every occluder takes ``(image, points, rng)`` and returns a new image of the same shape in
which the labels still hold: a cut blanks the rows outside the new frame (black, as the
product's crop pads outside a photo) instead of slicing them away, so the points keep
their pixel coordinates on the training canvas.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from training import damage

Occluder = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]

# the robustness conditions no training crop shows (see the module's docstring)
HELD_OUT = ("worn-mask/cloth-striped", "sunglasses/mirror", "occluder/cup")


def cloth(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = "cloth-plain" if rng.random() < 0.6 else "cloth-printed"
    return damage.worn_mask(image, points, rng, kind=kind)[0]


def respirator(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return damage.worn_mask(image, points, rng, kind="respirator")[0]


def ours(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the product's own seven masks, warped on with the product's warp: the face a
    user sends back to the bot for another mask."""
    return damage.worn_mask(image, points, rng, kind="ours")[0]


def _pattern(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours of a cloth in a pattern no robustness row draws: checks, dots, a
    fine many-coloured print, or a fade between two colours (stripes stay held out)."""
    colours = damage.MASK_COLOURS
    base = np.array(colours[rng.integers(len(colours))], np.float32)
    if rng.random() < 0.5:
        base = rng.uniform(10, 245, 3).astype(np.float32)
    other = rng.uniform(10, 245, 3).astype(np.float32)
    if np.abs(other - base).sum() < 90:
        other = 255 - base
    kind = rng.choice(["checks", "dots", "print", "fade"])
    if kind == "checks":
        cell = rng.uniform(0.06, 0.2)
        on = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(bool)
    elif kind == "dots":
        period = rng.uniform(0.08, 0.2)
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        on = du**2 + dv**2 < (period * rng.uniform(0.15, 0.35)) ** 2
    elif kind == "print":
        cells = int(rng.integers(14, 40))
        palette = rng.uniform(10, 245, (int(rng.integers(2, 5)), 3)).astype(np.float32)
        pick = rng.integers(len(palette), size=(cells, cells))
        grid_u = np.clip((u + 0.8) / 1.6 * (cells - 1), 0, cells - 1).astype(np.float32)
        grid_v = np.clip((v + 0.2) / 1.6 * (cells - 1), 0, cells - 1).astype(np.float32)
        index = cv2.remap(pick.astype(np.float32), grid_u, grid_v, cv2.INTER_NEAREST)
        return palette[index.astype(int)]
    else:  # a fade from top to bottom
        t = np.clip((v + 0.2) / 1.4, 0, 1)[..., None]
        return ((1 - t) * base + t * other).astype(np.float32)
    return np.where(on[..., None], other, base).astype(np.float32)


def patterned(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cloth mask in a pattern (:func:`_pattern`), 0.95-1.12 times as wide and as long
    as the robustness rows' cloth, its edge over the nose as high or lower."""
    points = np.asarray(points, np.float64)
    frame = damage.worn_frame(points)
    u, v = frame.grid(image.shape[:2])
    outline = frame.to_face(damage.cloth_outline(points, frame))
    outline[:, 0] *= rng.uniform(0.95, 1.12)  # wider or narrower, longer below the chin
    outline[outline[:, 1] > 0, 1] *= rng.uniform(0.95, 1.12)
    top = outline[:, 1] < 0  # the edge over the nose: as the rows draw it, or lower
    outline[top, 1] *= rng.uniform(0.6, 1.0)
    colour = _pattern(rng, u, v)
    return damage.lay_cloth(image, points, frame, u, frame.to_image(outline), colour)


def respirator_shapes(image: np.ndarray, points: np.ndarray, rng: np.random.Generator):
    """Respirators of other widths, heights, roundness and colours than the robustness
    row's one shape: cups, flat folded ones, duckbills (tapered to the chin)."""
    points = np.asarray(points, np.float64)
    frame = damage.worn_frame(points)
    u, _ = frame.grid(image.shape[:2])
    top, chin = frame.to_face(points[damage.NOSE_BRIDGE])[0], frame.to_face(points[damage.CHIN])[0]
    width = np.linalg.norm(points[damage.JAW[3]] - points[damage.JAW[-4]]) / frame.iod
    longer = rng.uniform(0.0, 0.14)  # grown downwards: its top edge stays under the eyes
    half_height = (chin[1] - top[1]) / 2 + 0.06 + longer / 2
    shape = damage.superellipse(
        0.5 * width * rng.uniform(0.85, 1.15),
        half_height,
        rng.uniform(1.8, 3.2),
        rng.uniform(-0.5, 0.3),
        0.0,
    )
    outline = frame.to_image(shape + (top + chin) / 2 + [0.0, longer / 2 + rng.uniform(0.0, 0.05)])
    if rng.random() < 0.5:
        colour = np.array(damage.MASK_COLOURS[rng.integers(len(damage.MASK_COLOURS))], np.float32)
    else:
        colour = rng.uniform(20, 240, 3).astype(np.float32)
    colour = np.broadcast_to(colour, (*image.shape[:2], 3)).copy()
    if rng.random() < 0.4:  # a valve on one cheek
        side = float(rng.choice([-1.0, 1.0]))
        valve = damage.coverage(
            image.shape[:2], [frame.to_image(damage.superellipse(0.12, 0.12) + [side * 0.3, 0.35])]
        )
        colour = colour * (1 - 0.45 * valve[..., None])
    return damage.lay_cloth(image, points, frame, u, outline, colour, seam=rng.random() < 0.6)


def scarf(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scarf, neck gaiter or collar pulled up over the face: from the nose (tip to
    bridge) down past the chin, wider than the jaw, folded, plain or patterned."""
    points = np.asarray(points, np.float64)
    frame = damage.worn_frame(points)
    u, v = frame.grid(image.shape[:2])
    nose = frame.to_face(points[damage.NOSE_BRIDGE])[0, 1]
    tip = frame.to_face(points[damage.NOSE_BASE])[0, 1]
    top = nose + rng.uniform(0.0, 1.0) * (tip - nose)
    half = rng.uniform(0.9, 1.5)
    sag = rng.uniform(-0.05, 0.12)
    xs = np.linspace(-half, half, 20)
    edge = np.stack([xs, top + sag * (1 - (xs / half) ** 2) - 0.05 * np.abs(xs)], 1)
    bottom = np.array([[half + 0.2, 2.0], [-half - 0.2, 2.0]])
    outline = frame.to_image(np.vstack([edge, bottom]))
    colour = (
        _pattern(rng, u, v)
        if rng.random() < 0.5
        else np.broadcast_to(rng.uniform(15, 240, 3).astype(np.float32), (*image.shape[:2], 3))
    )
    # soft folds: shading that comes and goes, never two-tone stripes (those are held out)
    folds = 1 - rng.uniform(0.04, 0.12) * (
        0.5 + 0.5 * np.sin(2 * np.pi * v / rng.uniform(0.2, 0.4))
    )
    return damage.lay_cloth(
        image, points, frame, u, outline, colour * folds[..., None], straps=False
    )


def sunglasses(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return damage.sunglasses(image, points, rng, mirror=False)[0]


def hand(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return damage.occluder(image, points, rng, kind="hand")[0]


def bar(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bar of flat colour or noise, 0.2-0.6 eye distances thick, across the eyes, the
    mouth or the lower face at a random slant (a scarf, a phone, a censor bar)."""
    frame = damage.FaceFrame.of(np.asarray(points, np.float64))
    centre_v = float(rng.choice([0.0, 0.9, 1.2])) + rng.uniform(-0.15, 0.15)
    half = rng.uniform(0.1, 0.3)
    slant = rng.uniform(-0.3, 0.3)
    length = rng.uniform(0.8, 1.6)
    outline = np.array(
        [
            [-length, centre_v - half - slant * length],
            [length, centre_v - half + slant * length],
            [length, centre_v + half + slant * length],
            [-length, centre_v + half - slant * length],
        ]
    )
    alpha = damage.coverage(image.shape[:2], [frame.to_image(outline)])
    if rng.random() < 0.5:
        colour = rng.uniform(0, 255, 3)
    else:
        colour = rng.uniform(0, 255, image.shape).astype(np.float32)
        colour = cv2.GaussianBlur(colour, (0, 0), max(1.0, 0.05 * frame.iod))
    return damage.paint(image, alpha, colour)


def chin_cut(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame's bottom edge between the mouth's lowest point and the chin."""
    cut = damage.chin_cut_row(points, rng.uniform(-0.1, 0.7))
    out = image.copy()
    out[max(cut, 1) :] = 0
    return out


def forehead_cut(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame's top edge from a little above the brows to halfway down to the eyes."""
    cut = damage.forehead_cut_row(points, rng.uniform(-0.6, 0.3))
    out = image.copy()
    out[: min(max(cut, 0), image.shape[0] - 1)] = 0
    return out


def dark(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """2-30% of the light, sensor noise, and half the time the phone's exposure boost."""
    light = float(np.exp(rng.uniform(np.log(0.02), np.log(0.3))))
    boost = float(rng.uniform(1.0, 0.5 / light)) if rng.random() < 0.5 else 1.0
    return damage.dark(
        image,
        points,
        rng,
        light=light,
        gamma=float(rng.uniform(1.0, 1.3)),
        read_noise=float(rng.uniform(0.001, 0.004)),
        shot_noise=float(rng.uniform(1e-4, 5e-4)),
        boost=boost,
    )[0]


OCCLUDERS: dict[str, Occluder] = {
    "cloth": cloth,
    "respirator": respirator,
    "ours": ours,
    "sunglasses": sunglasses,
    "hand": hand,
    "bar": bar,
    "chin-cut": chin_cut,
    "forehead-cut": forehead_cut,
    "dark": dark,
    "patterned": patterned,
    "respirator-shapes": respirator_shapes,
    "scarf": scarf,
}

# how often each is drawn: masks first, they are what the bot meets most and reads worst
DEFAULT_WEIGHTS: dict[str, float] = {
    "cloth": 0.2,
    "respirator": 0.1,
    "ours": 0.2,
    "sunglasses": 0.12,
    "hand": 0.08,
    "bar": 0.05,
    "chin-cut": 0.1,
    "forehead-cut": 0.05,
    "dark": 0.1,
}

# release 8's round: the same, plus cloth in patterns, respirators of other shapes and
# scarves (training/configs/occlusion2.json sets these weights)
WIDER_WEIGHTS: dict[str, float] = {
    **DEFAULT_WEIGHTS,
    "cloth": 0.14,
    "respirator": 0.06,
    "ours": 0.14,
    "patterned": 0.12,
    "respirator-shapes": 0.08,
    "scarf": 0.05,
}


def occlude(
    image: np.ndarray,
    points: np.ndarray,
    rng: np.random.Generator,
    weights: dict[str, float] | None = None,
) -> tuple[np.ndarray, str]:
    """One occluder, drawn by ``weights``, on ``image``; the image and the occluder's name."""
    weights = weights or DEFAULT_WEIGHTS
    unknown = sorted(set(weights) - set(OCCLUDERS))
    if unknown:
        raise ValueError(f"unknown occluders {unknown}: choose from {sorted(OCCLUDERS)}")
    names = list(weights)
    p = np.asarray([weights[n] for n in names], np.float64)
    name = names[int(rng.choice(len(names), p=p / p.sum()))]
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    return OCCLUDERS[name](image, np.asarray(points, np.float32), rng), name
