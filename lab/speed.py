"""facemask-speed: time per face of the seed's model against the shipped one, side by side.

    facemask-speed [--repeat 50] [--threads 2] [--json]

The seed: EfficientNet-b0 at 224 px, GAP head, efficientnet-pytorch's default
memory-efficient swish, batch 1. Ours: the shipped weights and preprocessing, on ONNX
Runtime as served (and on torch, for reference). All are
timed on the same face crop of scikit-image's astronaut, interleaved, each call being
the whole landmark step (crop, normalise, network, back to image points).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from core.keypoints.landmarks import KeypointPredictor
from training.model import KeypointNet, ModelConfig, describe, load_weights
from training.predictor import load_predictor, numpy_forward, torch_predictor

SEED_CONFIG = ModelConfig("b0", "gap", 224, memory_efficient_swish=True)


def seed_predictor() -> KeypointPredictor:
    # eager, as the seed ran it
    model = KeypointNet(SEED_CONFIG).eval()
    return KeypointPredictor(numpy_forward(model), SEED_CONFIG.input_size, backend="torch")


def time_per_face(predictors: dict[str, KeypointPredictor], repeat: int) -> dict[str, float]:
    from skimage.data import astronaut

    from core.detection.registry import default_detector

    image = astronaut()
    box = default_detector().detect(image)[0].box
    times: dict[str, list[float]] = {k: [] for k in predictors}
    for p in predictors.values():  # warm-up
        for _ in range(3):
            p.predict(image, [box])
    for _ in range(repeat):
        for name, p in predictors.items():
            t = time.perf_counter()
            p.predict(image, [box])
            times[name].append((time.perf_counter() - t) * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights", help="default: the shipped weights")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ours = load_predictor(args.weights)
    model = getattr(ours, "model", None)
    if model is None:  # a release: its float weights lie beside its manifest
        model = load_weights(ours.release.manifest.with_suffix(".pt"))[0]
    on_torch = torch_predictor(model, backend="torch")
    runs = {"seed": seed_predictor(), "shipped": ours, "shipped_torch": on_torch}
    if ours.backend == "onnxruntime-int8":
        runs["shipped_float"] = torch_predictor(model)
    ms = time_per_face(runs, args.repeat)
    ratio = ms["shipped"] / ms["seed"]
    name = describe(model)
    print(f"threads: {args.threads}, repeats: {args.repeat}, median ms per face")
    rows = [
        ("seed (b0 224, GAP, memory-efficient swish, torch)", ms["seed"]),
        (f"shipped ({name}, {ours.backend})", ms["shipped"]),
    ]
    if "shipped_float" in ms:
        rows.append(("  the same in float on ONNX Runtime", ms["shipped_float"]))
    rows.append(("  the same on torch (BatchNorm folded, channels-last)", ms["shipped_torch"]))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}} {value:7.1f} ms")
    print(f"shipped / seed: {ratio:.2f} (target <= 0.50)")
    if args.json:
        print(
            json.dumps(
                {
                    "seed_ms": ms["seed"],
                    "shipped_ms": ms["shipped"],
                    "shipped_backend": ours.backend,
                    "shipped_torch_ms": ms["shipped_torch"],
                    "shipped_float_ms": ms.get("shipped_float"),
                    "ratio": ratio,
                    "threads": args.threads,
                }
            )
        )


if __name__ == "__main__":
    main()
