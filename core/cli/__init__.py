"""``facemask``: mask photos and videos (one, a folder, thousands), look at landmarks, list
the masks, draw a gallery. Every option is in docs/cli.md.

    facemask apply INPUT... [-o OUT] [--mask 1|villain|all|random|1:0.5,4:0.5] [--jobs N]
    facemask landmarks INPUT [-o OUT.png|OUT.json]
    facemask masks [--json]
    facemask gallery INPUT -o OUT.png

What the terminal reads is worded in :mod:`core.cli.messages` (core's errors carry a code;
the chat and the terminal each say it for their reader); the batch is :mod:`core.cli.apply`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from core import batch, imageio
from core.cli import messages
from core.cli.draw import COLOURS, draw_landmarks, gallery
from core.errors import FaceMaskError
from core.results import Mode
from masks import catalog, names

__all__ = ["COLOURS", "draw_landmarks", "gallery", "main", "parser"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("facemask")
    except PackageNotFoundError:
        return "unknown"


def _masker(args: argparse.Namespace):
    from core.cli.apply import make_masker

    weights = args.weights and str(args.weights)
    return make_masker(weights, args.detector, args.threshold, args.min_face or 0.0, workers=1)


def _write_rgb(path: Path, rgb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = batch.EXTENSIONS.get(path.suffix.lower(), "png")
    path.write_bytes(batch.encode_photo(rgb, None, fmt))


def cmd_landmarks(args: argparse.Namespace) -> int:
    from core.video import codec

    out = args.output
    suffix = out.suffix.lower() if out is not None else ".json"
    if suffix not in (".json", ".png", ".jpg", ".jpeg", ".webp"):
        raise UsageError(f"-o {out}: write .json (the points) or .png, .jpg, .webp (a drawing)")
    data = imageio.read_bytes(_existing(args.input))
    if codec.looks_like_video(data):
        if suffix != ".json":
            raise UsageError("a video's landmarks are written as JSON: -o NAME.json")
        per_frame = _masker(args).landmarks_video(data, args.mode)
        payload: dict = {
            "frames": [
                [{"track_id": tid, "points": batch.round_points(p)} for tid, p in faces]
                for faces in per_frame
            ]
        }
        tracks = {tid for faces in per_frame for tid, _ in faces}
        summary = {"frames": len(per_frame), "tracks": len(tracks)}
        said = f"{len(per_frame)} frames, {len(tracks)} face track(s)"
    else:
        decoded = imageio.decode(data)
        faces = _masker(args).find_faces(decoded.rgb, args.mode)
        payload = {
            "width": decoded.width,
            "height": decoded.height,
            "faces": [
                {"box": [round(float(v), 2) for v in f.box], "points": batch.round_points(f.points)}
                for f in faces
            ],
        }
        summary = {"faces": len(faces), "width": decoded.width, "height": decoded.height}
        said = f"{len(faces)} face(s)"
        if suffix != ".json":
            _write_rgb(out, draw_landmarks(decoded.rgb, faces))
    if suffix == ".json":
        text = json.dumps(payload) + "\n"
        if out is None:
            sys.stdout.write(text)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
    if out is not None and not args.quiet:
        print(f"{out}: {said}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return messages.OK


def cmd_masks(args: argparse.Namespace) -> int:
    specs = catalog.masks()
    if args.json:
        listing = [
            {"id": s.id, "name": s.name, "label": s.label, "emoji": s.emoji, "slug": names.slug(s)}
            for s in specs
        ]
        print(json.dumps({"masks": listing}, ensure_ascii=False))
        return messages.OK
    for s in specs:
        print(f"{s.id}  {s.emoji}  {names.slug(s):<10} {s.name}")
    return messages.OK


def cmd_gallery(args: argparse.Namespace) -> int:
    data = imageio.read_bytes(_existing(args.input))
    picture = gallery(_masker(args), data, args.mode)
    _write_rgb(args.output, picture)
    if not args.quiet:
        print(f"{args.output}: {picture.shape[1]}x{picture.shape[0]}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {"width": picture.shape[1], "height": picture.shape[0], "output": str(args.output)}
            )
        )
    return messages.OK


def cmd_apply(args: argparse.Namespace) -> int:
    from core.cli import apply

    return apply.run(args)


class UsageError(Exception):
    """A mistake on the command line (exit status 2)."""


class _Missing(FaceMaskError):
    code = "missing"


def _existing(path: Path) -> Path:
    if not path.exists():
        raise _Missing(f"no such file: {path}")
    return path


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be 1 to 100")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be 0 to 1")
    return value


def parser() -> argparse.ArgumentParser:
    from core.detection.registry import DETECTOR_NAMES
    from core.video.codec import KINDS

    p = argparse.ArgumentParser(
        prog="facemask",
        description="Face masks on photos and videos: one file, a folder or thousands.",
        epilog=messages.exit_codes_help() + ". Every option: docs/cli.md.",
    )
    p.add_argument("--version", action="version", version=f"facemask {_version()}")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, description=help, epilog=messages.exit_codes_help())
        s.add_argument("--json", action="store_true", help="machine-readable output (JSON lines)")
        s.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
        return s

    def model_options(s: argparse.ArgumentParser) -> None:
        mode = s.add_mutually_exclusive_group()
        mode.add_argument(
            "--mode",
            type=Mode,
            choices=list(Mode),
            default=Mode.FACES,
            help="faces: find every face (default); whole: the whole picture is one face",
        )
        mode.add_argument(
            "--whole",
            "--no-crop",
            dest="mode",
            action="store_const",
            const=Mode.WHOLE,
            help="the same as --mode whole",
        )
        s.add_argument("--weights", type=Path, help="keypoint weights (default: shipped)")
        s.add_argument(
            "--detector",
            choices=DETECTOR_NAMES,
            default=None,
            help="the face detector (default: auto, MTCNN then CenterFace)",
        )
        s.add_argument(
            "--threshold",
            type=_fraction,
            default=None,
            help="mask only faces the detector scores at least this (0-1)",
        )
        s.add_argument(
            "--min-face",
            type=float,
            default=0.0,
            metavar="PX",
            help="mask only faces at least this many pixels wide",
        )

    a = add("apply", "put a mask on every face of photos and videos (files, folders, globs, -)")
    a.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="photos, videos, folders, globs ('photos/*.jpg'), or - for stdin",
    )
    a.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="a file (one input), a folder (mirrors the inputs' tree), or - for "
        "stdout; default: beside each input as NAME_<mask>.EXT",
    )
    a.add_argument(
        "-m",
        "--mask",
        default="1",
        help="a number, name or emoji (villain, 🦹, злодей), all (seven outputs "
        "each), random, mix (every face a different mask) or a weighted mix "
        "1:0.5,4:0.3,7:0.2 (default: 1)",
    )
    style = a.add_mutually_exclusive_group()
    style.add_argument(
        "--color",
        "--colour",
        dest="style",
        metavar="COLOUR",
        help="the cloth in a colour (navy, red, #0473e2...); folds and light stay",
    )
    style.add_argument(
        "--pattern",
        metavar="NAME|FILE",
        help="a pattern (stripes, dots, checks, camo, hearts, stars, plaid, "
        "gradient) or a picture file printed on the cloth",
    )
    a.add_argument(
        "--seed", type=int, default=None, help="seed for random and mixes: the same data set again"
    )
    a.add_argument("-r", "--recursive", action="store_true", help="folders' subfolders too")
    a.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that exist (default: skip those inputs)",
    )
    a.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        help="worker processes (default: the usable cores)",
    )
    a.add_argument(
        "--format",
        choices=(*batch.PHOTO_FORMATS, *batch.VIDEO_FORMATS),
        help="output format (default: -o's extension, else the input's)",
    )
    a.add_argument(
        "--quality",
        type=_quality,
        default=None,
        help="JPEG/WebP quality, and WebM's, 1-100 (default: 92 JPEG, 90 WebP)",
    )
    a.add_argument(
        "--keep-metadata",
        action="store_true",
        help="keep the photo's EXIF (camera, date, GPS!) except its orientation",
    )
    a.add_argument(
        "--labels",
        metavar="DIR",
        help="data-set labels: per photo its points, mask polygons and a mask-region "
        "PNG, and DIR/coco.json",
    )
    a.add_argument("--report", metavar="FILE.jsonl", help="one JSON line per input")
    a.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="refuse videos longer than this (default: no limit)",
    )
    a.add_argument(
        "--max-side",
        type=_positive_int,
        default=None,
        metavar="PX",
        help="scale pictures down to this long side (default: keep their size)",
    )
    a.add_argument(
        "--kind",
        choices=KINDS,
        help="for videos: video, video_note (a round 640 px square) or animation "
        "(no sound); default: animation for a GIF, else video",
    )
    model_options(a)
    a.set_defaults(run=cmd_apply)

    lm = add("landmarks", "draw (.png/.jpg/.webp) or write (.json) a photo's or video's 68 points")
    lm.add_argument("input", type=Path, metavar="INPUT")
    lm.add_argument("-o", "--output", type=Path, help="default: the JSON on stdout")
    model_options(lm)
    lm.set_defaults(run=cmd_landmarks)

    add("masks", "list the masks: number, emoji, name").set_defaults(run=cmd_masks)

    g = add("gallery", "all seven masks on one photo, side by side")
    g.add_argument("input", type=Path, metavar="INPUT")
    g.add_argument("-o", "--output", type=Path, required=True)
    model_options(g)
    g.set_defaults(run=cmd_gallery)
    return p


def _terminated(signum: int, frame: object) -> None:
    raise messages.Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (a scheduler's time limit) stops a run cleanly, as Ctrl-C does: by default it
    # ended this process at once, its partial outputs left and its workers running on
    # (a handler can be set from the main thread only)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return _main(argv)
    except messages.Terminated:
        print("facemask: stopped (SIGTERM)", file=sys.stderr)
        return messages.TERMINATED
    except KeyboardInterrupt:
        print("facemask: interrupted", file=sys.stderr)
        return messages.INTERRUPTED
    except BrokenPipeError:
        # the reader went away (| head): say nothing more, and let Python's exit not fail
        # flushing the dead pipe either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return messages.BROKEN_PIPE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    from core.cli.apply import UsageError as PlanError

    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as stop:  # argparse: 2 for a mistake, 0 for --help / --version
        return int(stop.code or 0)
    if args.debug:
        os.environ["FACEMASK_DEBUG"] = "1"
    try:
        code = args.run(args)
        sys.stdout.flush()
        return code
    except (UsageError, PlanError) as err:
        print(f"facemask: {err}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": "usage", "message": str(err)}))
        return messages.USAGE
    except FaceMaskError as err:
        where = getattr(args, "input", None) or "facemask"
        usage = err.code in ("unknown_mask", "unknown_mode", "unknown_style") or (
            err.code or ""
        ).startswith("pattern_")  # choices on the command line, not an input's fault
        text = messages.describe(err.code, str(err))
        print(f"facemask: {text}" if usage else f"facemask: {where}: {text}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": err.code, "message": str(err)}))
        return messages.USAGE if usage else messages.SOME_FAILED
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as err:  # a bug, not the input: one line unless --debug asks for more
        if args.debug:
            raise
        print(
            "facemask: " + messages.describe("internal", f"{type(err).__name__}: {err}"),
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps({"error": "internal", "message": str(err)}))
        return messages.SOME_FAILED
