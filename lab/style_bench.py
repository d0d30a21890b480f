"""What a style costs (issue 26): the same photo masked plain, in a colour, a pattern and an own
picture, with the real model; target: a styled mask at most 1.1x the plain one.

    python -m lab.style_bench [--photo PATH] [--mask 1] [--repeat 15]

A style changes the mask picture once (``core.render.style``, kept by the masker), so a warm
masker pays the same warp for every style; the first use of a style pays its preparation,
printed apart ("prepare"). Also printed: what the kept styled pictures and patterns take.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from core.api import FaceMasker, load_picture
from core.render.style import Style
from core.results import Mode
from masks import catalog, patterns

TARGET = 1.1


def own_picture() -> bytes:
    """A 640 x 480 picture with colour and detail everywhere, as a phone photo would have."""
    ys, xs = np.mgrid[0:480, 0:640].astype(np.float32)
    rgb = np.dstack([128 + 120 * np.sin(xs / 37), 128 + 120 * np.sin(ys / 23), xs / 640 * 255])
    out = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def astronaut_jpeg() -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, "JPEG", quality=92)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.style_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--photo", type=Path, default=None, help="default: scikit-image's astronaut")
    p.add_argument("--mask", type=int, default=1)
    p.add_argument("--repeat", type=int, default=15, help="timed runs per style (median)")
    p.add_argument("--json", action="store_true", help="last line: the figures as JSON")
    args = p.parse_args(argv)

    photo = args.photo.read_bytes() if args.photo else astronaut_jpeg()
    masker = FaceMasker()
    styles: dict[str, Style | None] = {
        "plain": None,
        "colour #0473e2": Style.parse("#0473e2"),
        "pattern stripes": Style.parse("stripes"),
        "own picture": Style.from_picture(own_picture()),
    }
    spec = catalog.get(args.mask)
    figures: dict[str, dict[str, float]] = {}
    for name, style in styles.items():
        started = time.perf_counter()
        load_picture(spec, style)
        figures[name] = {"prepare_ms": (time.perf_counter() - started) * 1000}
        masker.apply(photo, args.mask, Mode.FACES, style)  # warm: the picture is kept
    # the styles take turns, so a machine that gets busier slows them all alike
    times: dict[str, list[float]] = {name: [] for name in styles}
    for _ in range(args.repeat):
        for name, style in styles.items():
            started = time.perf_counter()
            masker.apply(photo, args.mask, Mode.FACES, style)
            times[name].append((time.perf_counter() - started) * 1000)
    for name in styles:
        figures[name]["ms"] = statistics.median(times[name])
    plain = figures["plain"]["ms"]
    print(f"mask {args.mask} ({spec.name}), median of {args.repeat}, warm masker:")
    ok = True
    for name, row in figures.items():
        ratio = row["ms"] / plain
        row["ratio"] = ratio
        ok &= ratio <= TARGET
        print(
            f"  {name:<16} {row['ms']:7.1f} ms  {ratio:4.2f}x plain  "
            f"(picture prepared once: {row['prepare_ms']:.0f} ms)"
        )
    kept = masker.styled_bytes() / 2**20
    drawn = patterns.cached_bytes() / 2**20
    print(f"kept: styled pictures {kept:.1f} MB, drawn patterns {drawn:.1f} MB")
    print(f"target <= {TARGET}x plain: {'met' if ok else 'NOT met'}")
    if args.json:
        print(json.dumps({"figures": figures, "styled_mb": kept, "patterns_mb": drawn}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
