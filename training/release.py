"""facemask-release: trained checkpoints -> the weights the product ships.

    facemask-release runs/kd2/best.pt runs/gpu/r6.pt --data ../shared/data/face-keypoints

writes into core/weights (``--out``):

    keypoints-<archs>-<head><size>-<sha8>.pt         the members (one checkpoint, or several
                                                     averaged: training.model.KeypointEnsemble),
                                                     float16; <sha8> starts its SHA-256
    keypoints-<archs>-<head><size>-<sha8>.member<k>.int8.onnx
                                                     each member with its backbone in int8
                                                     (training.export.quantize), carrying
                                                     the .pt's SHA-256: what the product runs
    keypoints-<archs>-<head><size>-<sha8>.json       the manifest serving reads: input size,
                                                     normalisation, point order, the ONNX
                                                     files and their SHA-256

The int8 ranges are calibrated on crops of training people (never the validation people,
never test/), placed like the detector's boxes. Then both networks read the validation
people's crops and the tool prints how far apart they are and each one's NME on those
crops (the product's path, with the detector: ``facemask-eval``). Earlier releases in
``--out`` are removed (``--keep`` keeps them), since the product takes one.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from core import runtime
from core.keypoints.preprocess import box_from_points, crop_image, normalize, points_from_unit
from core.weightfiles import WEIGHTS_DIR
from training.data import Sample, load_splits, read_image
from training.export import quantize, write_members, write_release_manifest
from training.metrics import nme
from training.model import KeypointEnsemble, KeypointNet, load_weights, members, save_weights
from training.predictor import numpy_forward, optimized

log = logging.getLogger(__name__)


def members_of(paths: list[Path]) -> list[KeypointNet]:
    """The networks in the checkpoints, an ensemble's members each on their own."""
    nets: list[KeypointNet] = []
    for path in paths:
        model, _ = load_weights(path)
        nets += members(model)
    return nets


def release_name(model: KeypointNet | KeypointEnsemble) -> str:
    archs = "-".join(m.config.arch for m in members(model))
    return f"keypoints-{archs}-{model.config.head}{model.config.input_size}"


def crops(
    samples: list[Sample], size: int, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Normalised crops around the labelled faces (jittered like detector boxes where ``rng``
    is given: side x0.9-1.1, centre +-5%, +-10 degrees) with each face's points and matrix."""
    inputs, truths = [], []
    for s in samples:
        box = box_from_points(s.points)
        if rng is not None:
            shift = rng.uniform(-0.05, 0.05, 2) * box.side
            box = replace(
                box,
                cx=box.cx + shift[0],
                cy=box.cy + shift[1],
                side=box.side * rng.uniform(0.9, 1.1),
                angle=rng.uniform(-10, 10),
            )
        crop, matrix = crop_image(read_image(s.path), box, size)
        inputs.append(normalize(crop[None])[0])
        truths.append((s.points, matrix))
    return np.stack(inputs), truths


def crop_nme(forward, inputs: np.ndarray, truths, size: int) -> tuple[float, np.ndarray]:
    """Mean NME of a forward pass on crops, and its (N, 68, 2) unit outputs."""
    outs = []
    for i in range(0, len(inputs), 32):
        out = forward(inputs[i : i + 32])
        outs.append(np.asarray(out[0] if isinstance(out, tuple) else out))
    unit = np.concatenate(outs).astype(np.float64)
    points = np.stack([points_from_unit(u, matrix, size) for u, (_, matrix) in zip(unit, truths)])
    return float(nme(points, np.stack([p for p, _ in truths])).mean()), unit


def release(
    paths: list[Path],
    data: Path,
    out: Path = WEIGHTS_DIR,
    calibration: int = 256,
    half: bool = True,
    keep: bool = False,
    seed: int = 0,
) -> dict:
    nets = members_of(paths)
    model: KeypointNet | KeypointEnsemble = nets[0] if len(nets) == 1 else KeypointEnsemble(nets)
    splits = load_splits(data)
    rng = np.random.default_rng(seed)
    size = model.config.input_size
    picked = rng.choice(len(splits.train), min(calibration, len(splits.train)), replace=False)
    calib, _ = crops([splits.train[i] for i in picked], size, rng)

    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "made_by": "facemask-release",
        "members": [str(p) for p in paths],
        "calibration_crops": len(calib),
    }
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        staged = Path(tmp) / "w.pt"
        save_weights(model, staged, half=half, **meta)
        sha = runtime.file_sha256(staged)
        weights = out / f"{release_name(model)}-{sha[:8]}.pt"
        # the network as it will run: the weights as stored (float16 rounding included)
        stored = optimized(load_weights(staged)[0])
        quantize(stored, size, calib, Path(tmp) / "q.onnx", source_sha256=sha)
        if not keep:
            for old in out.glob("keypoints-*"):
                if old.suffix in (".pt", ".onnx", ".json"):
                    log.info("removing the earlier release %s", old.name)
                    old.unlink()
        staged.replace(weights)
        files = write_members((Path(tmp) / "q.onnx").read_bytes(), weights, len(members(model)))
        manifest = write_release_manifest(weights, model, meta, files)

    report: dict = {
        "weights": str(weights), "manifest": str(manifest), "sha256": sha, "size": size,
    }  # fmt: skip
    if splits.val:
        inputs, truths = crops(splits.val, size)
        floats = numpy_forward(stored)
        quantized = runtime.OnnxModule([f.read_bytes() for f in files])
        nme_float, unit_float = crop_nme(floats, inputs, truths, size)
        nme_int8, unit_int8 = crop_nme(quantized, inputs, truths, size)
        report |= {
            "val_crops": len(inputs),
            "nme_float": nme_float,
            "nme_int8": nme_int8,
            "int8_vs_float_px": float(
                np.linalg.norm(unit_int8 - unit_float, axis=-1).mean() * size
            ),
        }
    return report


def repack(weights: Path) -> Path:
    """A release of the earlier layout (NAME.pt and one NAME.int8.onnx holding every member)
    rewritten as serving reads it now: one int8 file per member and NAME.json. The int8
    networks are cut, not quantized again, so they compute exactly what they did."""
    combined = weights.with_name(weights.stem + ".int8.onnx")
    model, meta = load_weights(weights)
    data = combined.read_bytes()
    from training.export import onnx_metadata

    if onnx_metadata(data).get("source_sha256") != runtime.file_sha256(weights):
        raise SystemExit(f"{combined.name} was not made from {weights.name}")
    files = write_members(data, weights, len(members(model)))
    manifest = write_release_manifest(weights, model, meta, files)
    combined.unlink()
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="facemask-release",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("weights", nargs="+", type=Path, help="checkpoints: one, or the members")
    p.add_argument("--data", type=Path, help="the face-keypoints data set (required)")
    p.add_argument(
        "--repack", action="store_true",
        help="rewrite an earlier release (NAME.pt + NAME.int8.onnx) as member files + NAME.json",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--calibration", type=int, default=256, help="training crops for int8")
    p.add_argument("--float32", action="store_true", help="store float32, not float16")
    p.add_argument("--keep", action="store_true", help="keep earlier releases in --out")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.repack:
        for weights in args.weights:
            print(f"serving: {repack(weights)}")
        return 0
    if args.data is None:
        p.error("--data is required to make a release")
    torch.set_num_threads(2)
    report = release(
        args.weights, args.data, args.out, args.calibration, not args.float32, args.keep
    )
    print(f"weights: {report['weights']}")
    print(f"serving: {report['manifest']} (and the ONNX files it lists)")
    if "val_crops" in report:
        print(
            f"validation people's crops ({report['val_crops']}, boxes from the labels): "
            f"NME float {100 * report['nme_float']:.3f}%, int8 {100 * report['nme_int8']:.3f}%; "
            f"int8 vs float {report['int8_vs_float_px']:.2f} px mean at {report['size']} px"
        )
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
