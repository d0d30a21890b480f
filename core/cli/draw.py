"""Pictures the command line draws: a photo's 68 landmarks, and all seven masks side by side."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import cv2
import numpy as np

from core import imageio
from core.keypoints import face68
from core.results import Mode
from masks import catalog

# The colour each region of the face (core.keypoints.face68.REGIONS) is drawn in (RGB).
COLOURS = {
    "jaw": (255, 214, 10),
    "brows": (255, 120, 40),
    "nose": (60, 220, 255),
    "eyes": (80, 255, 120),
    "mouth": (255, 70, 160),
}


def draw_landmarks(rgb: np.ndarray, faces: Sequence) -> np.ndarray:
    """A copy of ``rgb`` with every face's box, outline and 68 points drawn on it."""
    out = rgb.copy()
    size = max(1.0, max(out.shape[:2]) / 700)
    for face in faces:
        pts = np.asarray(face.points, np.float32)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), max(1, round(size)), cv2.LINE_AA)
        for part, closed in face68.OUTLINES:
            line = np.round(pts[part] * 16).astype(np.int32)
            cv2.polylines(out, [line], closed, (235, 235, 235), 1, cv2.LINE_AA, shift=4)
        radius = max(2, round(1.6 * size))
        for region, part in face68.REGIONS.items():
            color = COLOURS[region]
            for x, y in pts[part]:
                centre = (int(round(x * 16)), int(round(y * 16)))
                cv2.circle(out, centre, radius * 16, color, -1, cv2.LINE_AA, shift=4)
    return out


def _label(tile: np.ndarray, text: str) -> None:
    h = tile.shape[0]
    scale = h / 480
    thick = max(1, round(2 * scale))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(
        tile, (0, h - th - round(16 * scale)), (tw + round(16 * scale), h), (20, 20, 20), -1
    )
    org = (round(8 * scale), h - round(8 * scale))
    cv2.putText(
        tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
    )


def gallery(
    masker, image: imageio.ImageInput, mode: Mode | str = Mode.FACES, tile_height: int = 400
) -> np.ndarray:
    """All seven masks on ``image`` plus its landmarks, as one RGB picture (two rows of four)."""
    decoded = imageio.decode(image)
    faces = masker.find_faces(decoded.rgb, mode)
    boxes = np.array([f.points.min(axis=0).tolist() + f.points.max(axis=0).tolist() for f in faces])
    x0, y0 = boxes[:, :2].min(axis=0)
    x1, y1 = boxes[:, 2:].max(axis=0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 0.85
    h, w = decoded.rgb.shape[:2]
    left, top = int(max(0, cx - half)), int(max(0, cy - half * 1.05))
    right, bottom = int(min(w, cx + half)), int(min(h, cy + half * 0.95))

    scale = tile_height / (bottom - top)

    def tile(rgb: np.ndarray, text: str, faces: Sequence = ()) -> np.ndarray:
        part = rgb[top:bottom, left:right]
        size = (round(part.shape[1] * scale), tile_height)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        out = np.ascontiguousarray(cv2.resize(part, size, interpolation=interp))
        if faces:  # drawn at the tile's size, so the points stay crisp
            moved = [
                SimpleNamespace(
                    box=tuple((np.asarray(f.box) - [left, top] * 2) * scale),
                    points=(f.points - [left, top]) * scale,
                )
                for f in faces
            ]
            out = draw_landmarks(out, moved)
        _label(out, text)
        return out

    tiles = []
    for spec in catalog.masks():
        masked = masker.mask_pixels(decoded.rgb, spec.id, mode)[1]
        tiles.append(tile(masked, f"{spec.id} {spec.label}"))
    tiles.append(tile(decoded.rgb, "68 landmarks", faces))
    return np.vstack([np.hstack(tiles[:4]), np.hstack(tiles[4:])])
