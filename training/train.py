"""facemask-train: train the 68-point keypoint model.

    facemask-train --data ../shared/data/face-keypoints --config shipped --stage r2-lite1 \
        --out runs/r2-lite1 [--epochs N --lr X ...]

``--config`` names a recipe file (``training/configs/NAME.json``, or any path; without it,
the defaults in ``training.config.TrainConfig``); the other flags override it. The run
directory holds config.json (the resolved config, itself a recipe file), train.log,
metrics.jsonl, curves.png, last.pt (resumable: model, optimiser, epoch, history) and
best.pt (weights only, loadable with weights_only=True): the epoch with the best
validation NME on the product's path (``training.validate``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.augment import Augmenter, Batch
from training.config import ConfigError, TrainConfig, over, resolve
from training.data import Pack, StalePack, build_pack, load_splits
from training.model import build_model, load_weights, members, save_weights
from training.validate import validate

log = logging.getLogger("training")

LOSS_SCALE = 128.0  # losses see coordinates in pixels of a 128-px crop


def keypoint_loss(pred: torch.Tensor, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    if cfg.loss == "smoothl1":
        return F.smooth_l1_loss(pred, target, beta=cfg.smoothl1_beta)
    d = (pred - target).norm(dim=-1) * LOSS_SCALE
    if cfg.loss == "l1":
        return d.mean()
    if cfg.loss == "wing":  # Feng et al. 2018, w=10, eps=2 at 128 px
        w, eps = 10.0, 2.0
        c = w - w * math.log(1 + w / eps)
        return torch.where(d < w, w * torch.log1p(d / eps), d - c).mean()
    raise ValueError(f"unknown loss {cfg.loss!r}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_pack(data: Path, cache: Path | None, canvas: int) -> Pack:
    """The decoded data set, from the cache if there is one (built on first use)."""
    if data.suffix == ".npz":
        return Pack.load(data)
    if cache and cache.exists():
        try:
            pack = Pack.load(cache)
            log.info("pack: %s", cache)
            return pack
        except StalePack as err:
            log.warning("%s; building it again", err)
    from core.detect import default_detector

    splits = load_splits(data)
    log.info("building pack: %d train, %d val people images", len(splits.train), len(splits.val))
    pack = build_pack({"train": splits.train, "val": splits.val}, canvas, default_detector())
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        pack.save(cache)
    return pack


class Trainer:
    def __init__(self, cfg: TrainConfig, pack: Pack, out: Path, device: str) -> None:
        self.cfg, self.out, self.device = cfg, out, device
        self.train_pack, self.val_pack = pack.select("train"), pack.select("val")
        seed_everything(cfg.seed)
        self.model = build_model(cfg.model, imagenet=cfg.imagenet).to(device)
        self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.freeze_backbone:
            self.model.backbone.requires_grad_(False)
        self.teachers = [self._teacher(path) for path in cfg.teachers]
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        self.opt = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.plateau = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.1, patience=10)
            if cfg.schedule == "plateau"
            else None
        )
        self.aug = Augmenter(
            self.train_pack.images,
            self.train_pack.points,
            self.train_pack.sizes,
            cfg.model.input_size,
            cfg.augment,
            device,
            cfg.seed,
        )
        self.steps_per_epoch = max(1, len(self.train_pack) // cfg.batch_size)
        self.epochs = cfg.epochs
        self.epoch = 0
        self.history: list[dict] = []
        self.best = math.inf
        self.amp = device.startswith("cuda")

    def _teacher(self, path: str) -> torch.nn.Module:
        teacher, _ = load_weights(path, map_location=self.device)
        size = teacher.config.input_size
        if size != self.cfg.model.input_size:
            raise ValueError(
                f"teacher {path} takes {size} px crops, the student "
                f"{self.cfg.model.input_size}: they must see the same crops"
            )
        teacher.requires_grad_(False)
        log.info("teacher: %s (%s %s)", path, teacher.config.arch, teacher.config.head)
        return teacher.to(self.device, memory_format=torch.channels_last).eval()

    def loss(self, batch: Batch, pred: torch.Tensor) -> torch.Tensor:
        """The labels' loss, or with teachers, a blend of it and the teachers' mean's (the
        teachers read the crop ``teacher_input`` names). On a mirrored crop the labels stand
        in for the teachers: networks trained on unmirrored crops read mirrored faces worse
        (validation people 4.10 vs 3.78% NME, shifted back)."""
        y, mirrored = batch.y, batch.mirrored
        x = batch.clean if self.cfg.teacher_input == "clean" else batch.x
        loss = keypoint_loss(pred, y, self.cfg)
        if not self.teachers:
            return loss
        taught = y.clone()
        seen = ~mirrored  # the teachers read only the crops whose targets they give
        if seen.any():
            with (
                torch.no_grad(),
                torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp),
            ):
                taught[seen] = torch.stack([t(x[seen]).float() for t in self.teachers]).mean(0)
        w = self.cfg.distill_weight
        return (1 - w) * loss + w * keypoint_loss(pred, taught, self.cfg)

    # -- schedule ---------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        warm = cfg.warmup_epochs * self.steps_per_epoch
        if warm and step < warm:
            return cfg.lr * (step + 1) / warm
        total = self.epochs * self.steps_per_epoch
        t = min(1.0, (step - warm) / max(1, total - warm))
        return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))

    # -- checkpoints ------------------------------------------------------------
    def save(self) -> None:
        torch.save(
            {
                "model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "plateau": self.plateau.state_dict() if self.plateau else None,
                "epoch": self.epoch,
                "epochs": self.epochs,
                "history": self.history,
                "best": self.best,
                "rng": self.aug.rng.bit_generator.state,
                "torch_rng": self.aug.gen.get_state(),
            },
            self.out / "last.pt",
        )

    def resume(self) -> None:
        state = torch.load(self.out / "last.pt", map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        if self.plateau and state["plateau"]:
            self.plateau.load_state_dict(state["plateau"])
        self.epoch, self.epochs = state["epoch"], state["epochs"]
        self.history, self.best = state["history"], state["best"]
        self.aug.rng.bit_generator.state = state["rng"]
        self.aug.gen.set_state(
            state["torch_rng"].cpu() if self.device == "cpu" else state["torch_rng"]
        )
        log.info(
            "resumed at epoch %d of %d (best val NME %.4f)", self.epoch, self.epochs, self.best
        )

    # -- loop -------------------------------------------------------------------
    def train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze_backbone:  # frozen BatchNorm statistics too
            self.model.backbone.eval()

    def train_epoch(self) -> float:
        self.train_mode()
        order = self.aug.rng.permutation(len(self.train_pack))
        losses = []
        bar = tqdm(
            range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{self.epochs}", leave=False
        )
        for i in bar:
            step = self.epoch * self.steps_per_epoch + i
            if not self.plateau:
                for g in self.opt.param_groups:
                    g["lr"] = self.lr_at(step)
            idx = order[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size]
            batch = self.aug.batch(idx)
            x = batch.x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                pred = self.model(x)
            loss = self.loss(batch, pred.float())
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        return float(np.mean(losses))

    def run(self) -> float:
        while self.epoch < self.epochs:
            t0 = time.perf_counter()
            loss = self.train_epoch()
            val = validate(self.model, self.val_pack, self.cfg.model.input_size)
            if self.plateau:
                self.plateau.step(val["score"])
            self.epoch += 1
            secs = time.perf_counter() - t0
            if self.epoch == 3 and self.cfg.time_budget_min > 0:
                # epoch 1 pays for warm-up (cuDNN, allocator), so time epochs 2 and 3
                spent = sum(h["secs"] for h in self.history) + secs
                per_epoch = (self.history[-1]["secs"] + secs) / 2
                fit = 3 + int((self.cfg.time_budget_min * 60 - spent) / per_epoch)
                self.epochs = max(3, min(self.epochs, fit))
                log.info("time budget %.1f min: %d epochs", self.cfg.time_budget_min, self.epochs)
            row = {
                "epoch": self.epoch,
                "loss": loss,
                "lr": self.opt.param_groups[0]["lr"],
                "secs": secs,
                **{f"val_{k}": v for k, v in val.items()},
            }
            self.history.append(row)
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if val["score"] < self.best:
                self.best = val["score"]
                save_weights(
                    self.model,
                    self.out / "best.pt",
                    epoch=self.epoch,
                    val=val,
                    config=self.cfg.to_dict(),
                )
            if self.cfg.keep_epochs:
                (self.out / "epochs").mkdir(exist_ok=True)
                save_weights(
                    self.model,
                    self.out / "epochs" / f"epoch-{self.epoch}.pt",
                    epoch=self.epoch,
                    val=val,
                    config=self.cfg.to_dict(),
                )
            self.save()
            log.info(
                "epoch %d/%d loss %.4f val NME %.4f (whole image %.4f, fail %.3f) best %.4f %.0fs",
                self.epoch,
                self.epochs,
                loss,
                val["detector"],
                val["whole"],
                val["detector_fail_0.10"],
                self.best,
                secs,
            )
            plot_curves(self.history, self.out / "curves.png")
        return self.best


def init_state(path: str | Path, arch: str) -> dict[str, torch.Tensor]:
    """The weights to start from: a checkpoint's, or an ensemble's member of ``arch``
    (a released ensemble fine-tunes member by member)."""
    model, _ = load_weights(path)
    nets = [m for m in members(model) if m.config.arch == arch]
    if not nets:
        found = ", ".join(m.config.arch for m in members(model))
        raise ValueError(f"{path} holds no {arch} network (it holds {found})")
    if len(nets) > 1:
        raise ValueError(f"{path} holds {len(nets)} {arch} networks: give one member's file")
    return nets[0].state_dict()


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["loss"] for h in history])
    a.set(title="training loss", xlabel="epoch", yscale="log")
    for key, label in (("val_detector", "detected faces"), ("val_whole", "whole image")):
        b.plot(ep, [100 * h[key] for h in history], label=label)
    b.set(title="validation people: NME (%)", xlabel="epoch", ylim=(0, 15))
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="facemask-train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the face-keypoints folder (or a pack .npz made by --cache)",
    )
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument(
        "--config", help="recipe: NAME (training/configs/NAME.json) or a path; default: defaults"
    )
    p.add_argument("--stage", help="the recipe's stage to run, where it has stages")
    p.add_argument("--cache", type=Path, help="pack file: decoded images, built on first use")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--loss", choices=["wing", "l1", "smoothl1"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--erase", type=float, help="probability of an occluding rectangle")
    p.add_argument(
        "--occlude",
        type=float,
        help="probability of a drawn occluder: worn mask, sunglasses, hand, cut frame, dark",
    )
    p.add_argument(
        "--jitter", type=float, help="detector-style boxes' scatter, x the Haar cascade's"
    )
    p.add_argument("--rotation", type=float, help="rotation augmentation, +- degrees")
    p.add_argument(
        "--flip", type=float, help="probability of a mirrored crop (default 0; see --mirror-shift)"
    )
    p.add_argument(
        "--mirror-shift",
        type=float,
        nargs=2,
        metavar=("PX", "FRAC"),
        help="a mirrored crop's points move left by PX + FRAC x image width first "
        "(default: the data set's, training.augment.MIRROR_SHIFT; 0 0 mirrors straight)",
    )
    p.add_argument(
        "--freeze-backbone", action="store_true", help="train the head only (with --init)"
    )
    p.add_argument("--input-size", type=int)
    p.add_argument("--arch", choices=["lite0", "lite1", "lite2", "b0"], help="backbone")
    p.add_argument("--seed", type=int)
    p.add_argument("--time-budget", type=float, help="minutes; caps epochs after epoch 1")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", type=Path, help="start from these weights (fine-tuning)")
    p.add_argument(
        "--no-imagenet", action="store_true", help="start from random weights, not ImageNet's"
    )
    p.add_argument(
        "--teacher",
        action="append",
        type=Path,
        help="distil from these weights (repeat for an ensemble; their mean is the target)",
    )
    p.add_argument("--distill-weight", type=float, help="the teachers' share of the loss (0.5)")
    p.add_argument(
        "--teacher-input",
        choices=["augmented", "clean"],
        help="teachers read the student's crop, or the same crop without occlusion",
    )
    p.add_argument("--keep-epochs", action="store_true", help="keep every epoch's weights")
    args = p.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(args.out / "train.log")],
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = resolve(args.config, args.stage) if args.config else TrainConfig()
    except ConfigError as err:
        p.error(str(err))
    changes = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "loss": args.loss,
        "seed": args.seed,
        "time_budget_min": args.time_budget,
        "weight_decay": args.weight_decay,
        "freeze_backbone": args.freeze_backbone or None,
        "teachers": [str(t) for t in args.teacher] if args.teacher else None,
        "distill_weight": args.distill_weight,
        "teacher_input": args.teacher_input,
        "keep_epochs": args.keep_epochs or None,
        "init": str(args.init) if args.init else None,
        "imagenet": False if args.no_imagenet else None,
        "model": {"input_size": args.input_size, "arch": args.arch},
        "augment": {
            "p_erase": args.erase,
            "p_occlude": args.occlude,
            "detector_jitter": args.jitter,
            "rotation": args.rotation,
            "p_flip": args.flip,
            "mirror_shift": args.mirror_shift,
        },
    }
    changes["model"] = {k: v for k, v in changes["model"].items() if v is not None}
    changes["augment"] = {k: v for k, v in changes["augment"].items() if v is not None}
    cfg = over(cfg, {k: v for k, v in changes.items() if v is not None and v != {}})
    if cfg.init:  # the checkpoint replaces the ImageNet weights: never load them
        cfg = replace(cfg, imagenet=False)
    if args.resume and (args.out / "config.json").exists():
        cfg = TrainConfig.from_dict(json.loads((args.out / "config.json").read_text()))
    cfg.save(args.out / "config.json")
    log.info("config: %s", cfg)
    pack = make_pack(args.data, args.cache, cfg.canvas)
    trainer = Trainer(cfg, pack, args.out, args.device)
    if cfg.init and not args.resume:
        trainer.model.load_state_dict(init_state(cfg.init, cfg.model.arch))
        log.info("initialised from %s", cfg.init)
    if args.resume and (args.out / "last.pt").exists():
        trainer.resume()
        if args.epochs:  # extend (or shorten) a finished run
            trainer.epochs = args.epochs
    best = trainer.run()
    log.info("done: best validation NME %.4f -> %s", best, args.out / "best.pt")


if __name__ == "__main__":
    main()
