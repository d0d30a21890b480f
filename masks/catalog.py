"""The seven masks: what the bot shows on its buttons and where each picture sits on a face.

``catalog.json`` is written by :mod:`lab.draw_masks`. It holds the face template (the 68
landmark positions, in mask-picture pixels, of the face every mask was drawn on) and, per
mask, its id, names, emoji, picture and the landmarks it follows (``anchors``).

This package imports nothing else of the project's (the bot reads it without the model):
an unknown id is a plain :class:`LookupError` here; ``core.api.mask_spec`` turns it into
the sentence a user reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CATALOG_PATH = HERE / "catalog.json"
PNG_DIR = HERE / "png"


@dataclass(frozen=True)
class Recolour:
    """Which pixels of a mask's picture take a style's colour or pattern (issue 26).

    The body is what is left of the picture's opaque part once everything thinner than
    ``strap_px`` (ear loops, straps) is opened away; of the body, the pixels whose colour is
    within ``chroma`` of the body's median colour (None: all of them, for a mask whose cloth is
    itself patterned), less the ellipses in ``keep`` (valves, filters: ``(cx, cy, rx, ry)`` in
    picture pixels). ``shade``: how the cloth's own folds and light are read from the picture,
    "fine" (its brightness, pixel by pixel) or "smooth" (blurred first, where the picture's
    brightness is its pattern). docs/features.md#styles says why each mask's region is what it is.
    """

    chroma: float | None = 0.06
    keep: tuple[tuple[float, float, float, float], ...] = ()
    shade: str = "fine"
    strap_px: int = 25


@dataclass(frozen=True)
class MaskSpec:
    id: int
    name: str  # "Surgical mask": for captions
    label: str  # "Surgical": short, for a button
    emoji: str
    file: str = ""  # relative to masks/
    anchors: tuple[int, ...] = field(default=(), repr=False)
    recolour: Recolour = field(default=Recolour(), repr=False)

    @property
    def button(self) -> str:
        """The text of this mask's button, e.g. ``"1 😷 Surgical"``."""
        return f"{self.id} {self.emoji} {self.label}"

    @property
    def path(self) -> Path:
        return HERE / self.file


@dataclass(frozen=True)
class Template:
    width: int
    height: int
    points: np.ndarray  # (68, 2) float32: landmark positions in mask-picture pixels


@lru_cache(maxsize=1)
def _load() -> tuple[tuple[MaskSpec, ...], Template]:
    data = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    specs = tuple(
        MaskSpec(
            id=m["id"],
            name=m["name"],
            label=m["label"],
            emoji=m["emoji"],
            file=m["file"],
            anchors=tuple(m["anchors"]),
            recolour=_recolour(m.get("recolour", {})),
        )
        for m in data["masks"]
    )
    t = data["template"]
    template = Template(t["width"], t["height"], np.asarray(t["points"], np.float32))
    return specs, template


def _recolour(entry: dict) -> Recolour:
    return Recolour(
        chroma=entry.get("chroma", Recolour.chroma),
        keep=tuple(tuple(float(v) for v in ellipse) for ellipse in entry.get("keep", ())),
        shade=entry.get("shade", Recolour.shade),
        strap_px=int(entry.get("strap_px", Recolour.strap_px)),
    )


def masks() -> list[MaskSpec]:
    """All masks, ordered by id (1-7)."""
    return list(_load()[0])


def template() -> Template:
    return _load()[1]


def get(mask_id: int) -> MaskSpec:
    """The mask with this id; :class:`LookupError` for anything else (``True`` is no id)."""
    for spec in _load()[0]:
        if spec.id == mask_id and not isinstance(mask_id, bool):
            return spec
    raise LookupError(f"no mask with id {mask_id!r}")
