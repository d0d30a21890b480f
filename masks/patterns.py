"""The colours and patterns a mask can be made of (issue 26), drawn by code, no pictures.

A pattern is drawn straight at the size of a mask picture, its features sized by ``unit`` (the
template face's width in those pixels), so a stripe is as wide on every mask and on every
face; :func:`draw` keeps what it drew (a few mask sizes, each drawn once) since a worker
restyles the same masks again and again.

This package imports only numpy (the bot reads the names to build its palette without core).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: the palette the bot offers, by short id (the id goes in callback data and in jobs)
PALETTE: dict[str, str] = {
    "navy": "#1f2f5c",
    "red": "#c62828",
    "pink": "#f06292",
    "green": "#2e7d32",
    "yellow": "#f9c22e",
    "orange": "#ef6c00",
    "purple": "#6a1b9a",
    "white": "#f4f4f2",
}
#: more names :func:`colour` understands (the command line's --color, a typed name)
MORE_COLOURS: dict[str, str] = {
    "black": "#202124",
    "grey": "#8a8d91",
    "gray": "#8a8d91",
    "blue": "#1e63d6",
    "sky": "#6fb7e8",
    "teal": "#00897b",
    "mint": "#7fd8b4",
    "brown": "#6d4c41",
    "gold": "#d4a017",
    "beige": "#e3d3b4",
}
#: a person's own picture for the cloth: its smallest side, its most pixels and bytes (the bot
#: checks them before it keeps the picture's reference; core.render.style when it prints it)
OWN_PICTURE_MIN_SIDE = 64
OWN_PICTURE_MAX_PIXELS = 25_000_000
OWN_PICTURE_MAX_BYTES = 10 * 2**20
#: what a pattern's id calls it; the bot's palette shows them in this order
PATTERN_NAMES = (
    "stripes", "dots", "checks", "camo", "hearts", "stars", "plaid", "gradient",
)  # fmt: skip


def colour(name_or_hex: str) -> tuple[float, float, float] | None:
    """RGB (0-1) of ``"#0473e2"``, ``"0473e2"``, ``"#07e"`` or a known name; None otherwise."""
    text = name_or_hex.strip().lower()
    text = PALETTE.get(text) or MORE_COLOURS.get(text) or text
    digits = text.removeprefix("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) != 6 or any(c not in "0123456789abcdef" for c in digits):
        return None
    r, g, b = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b)


def _rgb(hexcode: str) -> np.ndarray:
    found = colour(hexcode)
    assert found is not None
    return np.asarray(found, np.float32)


def _grid(width: int, height: int, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in face units (a face is about 1 wide), (1, W) and (H, 1)."""
    xs = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / unit
    ys = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / unit
    return xs, ys


def _smooth_step(edge: np.ndarray, softness: float) -> np.ndarray:
    """0 below -softness, 1 above +softness: an anti-aliased edge at 0."""
    return np.clip(0.5 + edge / (2 * softness), 0, 1).astype(np.float32)


def _mix(base: np.ndarray, top: np.ndarray, amount: np.ndarray) -> np.ndarray:
    return base * (1 - amount[..., None]) + top * amount[..., None]


def _cells(xs: np.ndarray, ys: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's position inside its cell of a square lattice, -0.5..0.5 (a row in two
    shifted by half a cell, so dots and shapes sit in a brick pattern)."""
    row = np.floor(ys / period)
    u = xs / period + 0.5 * (row % 2)
    v = ys / period
    return u - np.floor(u) - 0.5, v - np.floor(v) - 0.5


def _stripes(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)
    diagonal = (xs + ys) / 0.11
    band = _smooth_step(np.abs((diagonal % 1) - 0.5) - 0.25, 1.5 / (0.11 * unit))
    return _mix(np.broadcast_to(_rgb("#f4f1e8"), (h, w, 3)), _rgb("#1f2f5c"), band)


def _dots(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)
    u, v = _cells(xs, ys, 0.09)
    dot = _smooth_step(0.28 - np.hypot(u, v), 1.5 / (0.09 * unit))
    return _mix(np.broadcast_to(_rgb("#c62828"), (h, w, 3)), _rgb("#fbfaf6"), dot)


def _checks(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)
    half = 0.1  # one square's side, in face widths
    product = np.sin(np.pi * xs / half) * np.sin(np.pi * ys / half)
    dark = _smooth_step(product, 0.15)
    return _mix(np.broadcast_to(_rgb("#f4f4f2"), (h, w, 3)), _rgb("#202124"), dark)


def _camo(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)
    rng = np.random.default_rng(26)
    layers = []
    for _ in range(3):
        field = np.zeros((h, w), np.float32)
        for _ in range(7):
            fx, fy = rng.uniform(-30, 30, 2)
            phase = rng.uniform(0, 2 * np.pi)
            field += np.sin(fx * xs + fy * ys + phase).astype(np.float32)
        layers.append(field / 7**0.5)
    out = np.broadcast_to(_rgb("#6b7a3a"), (h, w, 3)).astype(np.float32)
    for field, hexcode, level in zip(layers, ("#3e4a23", "#8c7a4b", "#2a2a1e"), (0.2, 0.5, 0.9)):
        out = _mix(out, _rgb(hexcode), _smooth_step(field - level, 0.06))
    return out


def _hearts(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)
    u, v = _cells(xs, ys, 0.14)
    x, y = u / 0.3, -(v / 0.3) + 0.15
    inside = (x**2 + y**2 - 1) ** 3 - x**2 * y**3
    heart = _smooth_step(-inside, 0.08)
    return _mix(np.broadcast_to(_rgb("#f8d7e3"), (h, w, 3)), _rgb("#d81b60"), heart)


def _stars(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)
    u, v = _cells(xs, ys, 0.15)
    r = np.hypot(u, v)
    theta = np.arctan2(-v, u) - np.pi / 2
    # a five-pointed star's edge in polar form: its radius swings between 0.18 and 0.42
    edge = 0.3 + 0.12 * np.cos(5 * theta) ** 3
    star = _smooth_step(edge * 0.9 - r, 1.5 / (0.15 * unit))
    return _mix(np.broadcast_to(_rgb("#1f2f5c"), (h, w, 3)), _rgb("#f9c22e"), star)


def _plaid(w: int, h: int, unit: float) -> np.ndarray:
    xs, ys = _grid(w, h, unit)

    def bands(coord: np.ndarray, period: float, width: float) -> np.ndarray:
        return _smooth_step(width - np.abs((coord / period) % 1 - 0.5), 0.03)

    broad = np.maximum(bands(xs, 0.2, 0.18), bands(ys, 0.2, 0.18))
    both = bands(xs, 0.2, 0.18) * bands(ys, 0.2, 0.18)
    thin = np.maximum(bands(xs + 0.1, 0.2, 0.025), bands(ys + 0.1, 0.2, 0.025))
    out = _mix(np.broadcast_to(_rgb("#2e7d32"), (h, w, 3)), _rgb("#1b2a4a"), broad)
    out = out * (1 - 0.3 * both[..., None])
    return _mix(out, _rgb("#f4f1e8"), thin)


def _gradient(w: int, h: int, unit: float) -> np.ndarray:
    _, ys = _grid(w, h, unit)
    xs, _ = _grid(w, h, unit)
    t = np.clip((xs * 0.5 + ys) / (0.5 * w / unit + h / unit), 0, 1)
    top, bottom = _rgb("#ff6f61"), _rgb("#6a1b9a")
    return (top * (1 - t[..., None]) + bottom * t[..., None]).astype(np.float32)


_DRAW: dict[str, Callable[[int, int, float], np.ndarray]] = {
    "stripes": _stripes, "dots": _dots, "checks": _checks, "camo": _camo,
    "hearts": _hearts, "stars": _stars, "plaid": _plaid, "gradient": _gradient,
}  # fmt: skip
assert tuple(_DRAW) == PATTERN_NAMES


#: pictures :func:`draw` keeps, newest last: a few masks' sizes times the patterns
KEEP_DRAWN = 16
_drawn: dict[tuple[str, int, int, float], np.ndarray] = {}


def draw(name: str, width: int, height: int, unit: float) -> np.ndarray:
    """Pattern ``name`` as a (height, width, 3) float32 RGB picture (0-1), read-only, drawn
    once per size and kept; :class:`LookupError` for a name not in :data:`PATTERN_NAMES`."""
    if name not in _DRAW:
        raise LookupError(f"no pattern called {name!r}")
    key = (name, width, height, float(unit))
    picture = _drawn.pop(key, None)
    if picture is None:
        picture = np.ascontiguousarray(_DRAW[name](width, height, unit), np.float32)
        picture.setflags(write=False)
    _drawn[key] = picture
    while len(_drawn) > KEEP_DRAWN:
        _drawn.pop(next(iter(_drawn)))
    return picture


def cached_bytes() -> int:
    """What :func:`draw` keeps now, in bytes (facemask-bench --memory counts it)."""
    return sum(picture.nbytes for picture in _drawn.values())
