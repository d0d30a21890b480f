"""A mask picture from the catalogue, ready to warp: its pixels, its template points and,
for a style, the restyler that recolours or patterns it."""

from __future__ import annotations

import cv2
import numpy as np

from core.render import warp
from core.render.style import Style
from masks import catalog


def load_picture(spec: catalog.MaskSpec, style: Style | None = None) -> warp.MaskPicture:
    bgra = cv2.imread(str(spec.path), cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
        raise RuntimeError(f"mask picture {spec.path} is missing or not RGBA")
    rgba = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)
    template = catalog.template()
    restyle = style.restyler(spec, template_unit(template)) if style is not None else None
    return warp.MaskPicture.from_rgba(rgba, template.points, restyle=restyle)


def template_unit(template: catalog.Template) -> float:
    """The template face's width (jaw end to jaw end) in mask-picture pixels: what a
    pattern's features are sized by."""
    points = template.points
    return float(np.linalg.norm(points[16] - points[0]))
