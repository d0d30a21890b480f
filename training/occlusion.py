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
