"""``facemask``: mask photos, look at landmarks, list the masks, draw a gallery.

    facemask apply IN --mask N [--mode faces|whole] -o OUT [--json]
    facemask landmarks IN [--mode faces|whole] -o OUT.png|OUT.json
    facemask masks [--json]
    facemask gallery IN -o OUT.png [--mode faces|whole]

``--mode faces`` (the default) finds every face; ``--mode whole`` (or ``--whole``) treats the
whole photo as one face.

A video, GIF animation or video note (told by its content, not its name) is masked frame by
frame into an H.264 MP4 (``--kind video|video_note|animation``), and ``landmarks`` writes
every frame's faces with their track ids as JSON (see :mod:`core.video`).

A problem with the input (not an image, no face, ...) prints its one-sentence reason and
exits with status 1; with ``--json`` the last line is then ``{"error": code, "message": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from core import imageio
from core.errors import FaceMaskError
from core.keypoints import face68
from core.results import Mode
from core.video import codec
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


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    path.write_bytes(imageio.encode(rgb, None, fmt))


def _masker(args: argparse.Namespace):
    from core.api import FaceMasker
    from core.keypoints.landmarks import KeypointPredictor

    return FaceMasker(predictor=KeypointPredictor.load(args.weights))


def cmd_apply(args: argparse.Namespace) -> dict:
    from core.api import mask_spec

    data = imageio.read_bytes(args.input)  # a missing file is reported before the model loads
    mask_spec(args.mask)  # and so is an unknown mask
    if codec.looks_like_video(data):  # by content: a GIF may be a photo or a clip
        return apply_video(args, data)
    result = _masker(args).apply(data, args.mask, args.mode)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(result.image)
    print(f"{args.output}: mask {args.mask} on {len(result.faces)} face(s), "
          f"{result.width}x{result.height} {result.format}, {result.ms:.0f} ms")  # fmt: skip
    return {
        "faces": len(result.faces),
        "width": result.width,
        "height": result.height,
        "format": result.format,
        "ms": round(result.ms, 1),
        "mask": args.mask,
        "output": str(args.output),
    }


def cmd_landmarks(args: argparse.Namespace) -> dict:
    data = imageio.read_bytes(args.input)
    if codec.looks_like_video(data):
        return landmarks_video(args, data)
    decoded = imageio.decode(data)
    faces = _masker(args).find_faces(decoded.rgb, args.mode)
    payload = {
        "width": decoded.width,
        "height": decoded.height,
        "faces": [
            {"box": [round(v, 1) for v in f.box], "points": np.round(f.points, 2).tolist()}
            for f in faces
        ],
    }
    if args.output.suffix.lower() == ".json":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(payload) + "\n")
    else:
        _write_rgb(args.output, draw_landmarks(decoded.rgb, faces))
    print(f"{args.output}: {len(faces)} face(s)")
    return {"faces": len(faces), "width": decoded.width, "height": decoded.height}


def apply_video(args: argparse.Namespace, data: bytes) -> dict:
    """``apply`` for a video, GIF or video note: MP4 out, the summary the bot's caption uses."""
    kind = args.kind or ("animation" if data[:3] == b"GIF" else "video")
    result = _masker(args).apply_video(data, args.mask, args.mode, kind=kind)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(result.data)
    print(f"{args.output}: mask {args.mask}, {result.frames} frames {result.width}x"
          f"{result.height} at {result.fps:g} fps, {result.faces_mean:.2f} faces a frame, "
          f"{result.ms:.0f} ms")  # fmt: skip
    return {
        "frames": result.frames,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "duration_s": result.duration_s,
        "has_audio": result.has_audio,
        "faces_mean": result.faces_mean,
        "scaled_down": result.scaled_down,
        "kind": result.kind,
        "complete": result.complete,
        "ms": round(result.ms, 1),
        "mask": args.mask,
        "output": str(args.output),
    }


def landmarks_video(args: argparse.Namespace, data: bytes) -> dict:
    """``landmarks`` for a video: JSON with every frame's faces (track id and 68 points)."""
    per_frame = _masker(args).landmarks_video(data, args.mode)
    payload = {
        "frames": [
            [{"track_id": tid, "points": np.round(p, 2).tolist()} for tid, p in faces]
            for faces in per_frame
        ]
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload) + "\n")
    tracks = {tid for faces in per_frame for tid, _ in faces}
    print(f"{args.output}: {len(per_frame)} frames, {len(tracks)} face track(s)")
    return {"frames": len(per_frame), "tracks": len(tracks)}


def cmd_masks(args: argparse.Namespace) -> dict:
    specs = catalog.masks()
    if not args.json:
        for s in specs:
            print(f"{s.id}  {s.emoji}  {s.label:<10} {s.name}")
    return {
        "masks": [{"id": s.id, "name": s.name, "label": s.label, "emoji": s.emoji} for s in specs]
    }


def cmd_gallery(args: argparse.Namespace) -> dict:
    data = imageio.read_bytes(args.input)
    picture = gallery(_masker(args), data, args.mode)
    _write_rgb(args.output, picture)
    print(f"{args.output}: {picture.shape[1]}x{picture.shape[0]}")
    return {"width": picture.shape[1], "height": picture.shape[0], "output": str(args.output)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facemask", description="Face masks on photos.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str, needs_model: bool = True) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
        if needs_model:
            s.add_argument("input", type=Path, help="the photo")
            s.add_argument("-o", "--output", type=Path, required=True)
            mode = s.add_mutually_exclusive_group()
            mode.add_argument(
                "--mode",
                type=Mode,
                choices=list(Mode),
                default=Mode.FACES,
                help="faces: find every face (default); whole: the whole photo is one face",
            )
            mode.add_argument(
                "--whole", "--no-crop", dest="mode", action="store_const", const=Mode.WHOLE,
                help="the same as --mode whole (--no-crop: its old name)",
            )  # fmt: skip
            s.add_argument(
                "--weights", type=Path, default=None, help="keypoint weights (default: shipped)"
            )
        return s

    a = add("apply", "put a mask on every face")
    a.add_argument("--mask", type=int, required=True, help="mask id, 1-7 (see: facemask masks)")
    a.add_argument(
        "--kind",
        choices=codec.KINDS,
        help="for a video: the output kind (default: animation for a GIF, else video)",
    )
    a.set_defaults(run=cmd_apply)
    add("landmarks", "draw (.png/.jpg) or write (.json) the 68 landmarks").set_defaults(
        run=cmd_landmarks
    )
    add("masks", "list the masks", needs_model=False).set_defaults(run=cmd_masks)
    add("gallery", "all seven masks on one photo, side by side").set_defaults(run=cmd_gallery)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = args.run(args)
    except FaceMaskError as err:
        print(f"facemask: {err}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": err.code, "message": str(err)}))
        return 1
    except Exception as err:  # a bug, not the input: one line unless --debug asks for more
        if args.debug:
            raise
        print(
            f"facemask: unexpected {type(err).__name__}: {err} (--debug shows where)",
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps({"error": "internal", "message": str(err)}))
        return 2
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
