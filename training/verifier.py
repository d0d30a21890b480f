"""Train the face verifier (``core.keypoints.verifier``) and export it for serving.

The crops come from ``lab.verifier_data`` (faces of the training people, clean and
damaged, against what the product masks where there is no face). A small network: four
strided 3x3 convolution blocks (64 -> 4 px), a linear layer on the 4x4 map (where in the
square a feature lies matters: a face is laid out the same way every time), one logit.
Adam with a cosine schedule, faces and non-faces weighted equally, flips, light and blur
jitter; a checkpoint every epoch (``--resume`` goes on from the last), the best by how
well faces of the validation people are told from the held-back non-faces.

    python -m training.verifier --train .cache/verifier/train.npz \
        --val .cache/verifier/val.npz --out .cache/verifier/run
    python -m training.verifier --export .cache/verifier/run/best.pt \
        --onnx core/weights/verifier-face64-r8.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from core.keypoints.verifier import SIZE, as_input

#: one group in DEV_SHARE of the training crops' groups (people, sources) is held back
#: to pick the epoch on (the negatives; the faces come from the validation people)
DEV_SHARE = 10


class Verifier(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 6 * width]
        blocks: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            blocks += [
                nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(),
                nn.Conv2d(b, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(),
            ]  # fmt: skip
        self.features = nn.Sequential(*blocks)
        side = SIZE // 16
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(chans[-1] * side * side, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: the share of crops blurred, and the strongest blur (px of the 64-px crop; a face out of
#: focus by a tenth of its eye distance is ~1.6 px there)
BLUR_SHARE, BLUR_SIGMA = 0.2, 1.5


def is_dev(group: str) -> bool:
    return zlib.crc32(group.encode()) % DEV_SHARE == 0


def augment(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flips, light, contrast, blur and noise, and a shift of up to 2 px."""
    out = crops.astype(np.float32)
    n = len(out)
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    gain = rng.uniform(0.6, 1.4, (n, 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-30, 30, (n, 1, 1, 1)).astype(np.float32)
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = (out - mean) * rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32) + mean
    out = out * gain + bias
    grey = rng.random(n) < 0.1
    out[grey] = out[grey].mean(axis=3, keepdims=True)
    blur = np.flatnonzero(rng.random(n) < BLUR_SHARE)
    for i in blur:
        out[i] = cv2.GaussianBlur(out[i], (0, 0), float(rng.uniform(0.5, BLUR_SIGMA)))
    out += rng.normal(0, rng.uniform(0, 6), (n, 1, 1, 1)).astype(np.float32) * rng.standard_normal(
        out.shape
    ).astype(np.float32)
    dy, dx = rng.integers(-2, 3, 2)
    out = np.roll(out, (int(dy), int(dx)), axis=(1, 2))
    return np.clip(out, 0, 255)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def predict(model: nn.Module, crops: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            out.append(
                torch.sigmoid(model(torch.from_numpy(as_input(crops[i : i + batch])))).numpy()
            )
    return np.concatenate(out).reshape(-1) if out else np.zeros(0)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    scores = np.concatenate([pos, neg])
    ranks = scores.argsort().argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def judge(model, val: dict, dev: dict) -> dict:
    """How faces (validation people) and non-faces (held-back groups and the validation
    people's hair and turned faces) are told apart."""
    pv = predict(model, val["crops"])
    pd = predict(model, dev["crops"])
    pos = pv[val["labels"] == 1]
    neg = np.concatenate([pv[val["labels"] == 0], pd[dev["labels"] == 0]])
    # the threshold that keeps 99.5% of the faces, and what it lets through
    keep = float(np.quantile(pos, 0.005))
    return {
        "auc": auc(pos, neg),
        "faces": int(len(pos)),
        "non_faces": int(len(neg)),
        "threshold_995": keep,
        "non_faces_passed_995": float((neg >= keep).mean()),
        "faces_kept_05": float((pos >= 0.5).mean()),
        "non_faces_passed_05": float((neg >= 0.5).mean()),
    }


def train(args) -> None:
    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    data = load(args.train)
    dev_mask = np.array([is_dev(g) for g in data["groups"]])
    dev = {k: v[dev_mask] for k, v in data.items()}
    tr = {k: v[~dev_mask] for k, v in data.items()}
    val = load(args.val)
    labels = tr["labels"].astype(np.float32)
    # each class half of every epoch's weight, whatever their counts
    weights = np.where(labels == 1, 0.5 / labels.sum(), 0.5 / (1 - labels).sum())
    torch.manual_seed(args.seed)  # the first weights too: a run is the same run again
    model = Verifier(args.width)
    if args.init:  # go on from another run's weights, with this run's schedule
        model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(labels) / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / (args.epochs * steps_per_epoch))))
    )
    start, best, history = 0, -1.0, []
    last = out / "last.pt"
    if args.resume and last.exists():
        state = torch.load(last, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, best, history = state["epoch"] + 1, state["best"], state["history"]
        print(f"resumed after epoch {start}")
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    for epoch in range(start, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.choice(len(labels), len(labels), p=weights / weights.sum())
        model.train()
        started, total = time.time(), 0.0
        for i in range(0, len(order), args.batch):
            idx = order[i : i + args.batch]
            x = torch.from_numpy(as_input(augment(tr["crops"][idx], rng)))
            y = torch.from_numpy(labels[idx])[:, None]
            loss = loss_fn(model(x), y).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        res = judge(model, val, dev)
        res.update(epoch=epoch, loss=total / len(order), seconds=round(time.time() - started, 1))
        history.append(res)
        print(json.dumps(res), flush=True)
        if res["auc"] > best:
            best = res["auc"]
            torch.save(
                {"model": model.state_dict(), "width": args.width, "judged": res}, out / "best.pt"
            )
        torch.save(
            {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
             "epoch": epoch, "best": best, "history": history, "width": args.width},
            last,
        )  # fmt: skip
    (out / "history.json").write_text(json.dumps(history, indent=1))


def export(checkpoint: Path, onnx_path: Path) -> None:
    """The checkpoint as an ONNX file (input ``x``: (N, 3, 64, 64) float32, output: logits)."""
    state = torch.load(checkpoint, weights_only=False)
    model = Verifier(state["width"])
    model.load_state_dict(state["model"])
    model.eval()
    from training.export import export_checked

    example = np.zeros((2, 3, SIZE, SIZE), np.float32)
    probe = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 3, SIZE, SIZE)).astype(np.float32)
    export_checked(model, example, probe, onnx_path, "x", atol=1e-4)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes); judged: {state.get('judged')}")


def main(argv: list[str] | None = None) -> None:
    global BLUR_SHARE, BLUR_SIGMA
    p = argparse.ArgumentParser(prog="python -m training.verifier", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--train", type=Path)
    p.add_argument("--val", type=Path)
    p.add_argument("--out", type=Path, default=Path(".cache/verifier/run"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    p.add_argument(
        "--blur", type=float, nargs=2, metavar=("SHARE", "SIGMA"),
        help=f"blur this share of crops, up to this sigma (default {BLUR_SHARE} {BLUR_SIGMA})",
    )  # fmt: skip
    p.add_argument("--export", type=Path, help="a checkpoint to export instead of training")
    p.add_argument("--onnx", type=Path, help="where --export writes")
    args = p.parse_args(argv)
    if args.export:
        export(args.export, args.onnx or Path("verifier.onnx"))
        return
    if not (args.train and args.val):
        p.error("--train and --val are needed to train")
    if args.blur:
        BLUR_SHARE, BLUR_SIGMA = args.blur
    train(args)


if __name__ == "__main__":
    main()
