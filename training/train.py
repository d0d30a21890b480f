"""facemask-train: train the 68-point keypoint model.

    facemask-train --data ../shared/data/face-keypoints --cache cache/pack384.npz \
        --config shipped --out runs/mine [--epochs N --lr X ...]

``--config`` names a recipe file (``training/configs/NAME.json``, or any path; without it,
the defaults in ``training.config.TrainConfig``); the other flags override it. A recipe with
stages runs them all in order, each in OUT/STAGE, where the next stage looks for its
weights; run the same command again and it skips the stages that are done and continues the
one that was cut short. ``--stage NAME`` runs one stage in OUT, its earlier stages read from
OUT's siblings. ``--limit N --max-steps N`` make a smoke run: a few steps on a few images.

A run directory holds config.json (the resolved config, itself a recipe file), train.log,
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
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.augment import Augmenter, Batch
from training.config import ConfigError, Recipe, TrainConfig, over
from training.data import Pack, Sample, StalePack, build_pack, load_splits
from training.model import (
    ImageNetWeightsMissing,
    build_model,
    imagenet_state,
    load_weights,
    members,
    save_weights,
)
from training.validate import validate

log = logging.getLogger("training")

LOSS_SCALE = 128.0  # losses see coordinates in pixels of a 128-px crop
REPO = Path(__file__).resolve().parents[1]  # where a recipe's inputs come from (git)
PLOT_EVERY_S = 30.0  # curves.png is redrawn at most this often during a run


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


def make_pack(data: Path, cache: Path | None, canvas: int, limit: int = 0) -> Pack:
    """The decoded data set, from the cache if there is one (built on first use); with
    ``limit``, ``limit`` images of each split (a part of the data is never cached)."""
    if data.suffix == ".npz":
        return part_of(Pack.load(data), limit)
    if cache and cache.exists():
        try:
            pack = Pack.load(cache)
            log.info("pack: %s", cache)
            return part_of(pack, limit)
        except StalePack as err:
            log.warning("%s; building it again", err)
    from core.detection.registry import default_detector

    splits = load_splits(data)
    parts = {"train": spread(splits.train, limit), "val": spread(splits.val, limit)}
    log.info("building pack: %d train, %d val people images", *map(len, parts.values()))
    pack = build_pack(parts, canvas, default_detector())
    if cache and limit:
        log.info("--limit: not writing %s (it would hold part of the data)", cache)
    elif cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        pack.save(cache)
    return pack


def spread(samples: list[Sample], limit: int) -> list[Sample]:
    """``limit`` samples spread evenly over the list (its people are in file order), or all."""
    if not limit or len(samples) <= limit:
        return samples
    return [samples[i] for i in np.linspace(0, len(samples) - 1, limit).round().astype(int)]


def part_of(pack: Pack, limit: int) -> Pack:
    """``limit`` images of each split of ``pack``, spread over it as :func:`spread` does."""
    if not limit:
        return pack
    keep = np.concatenate(
        [spread(list(np.flatnonzero(pack.split == s)), limit) for s in np.unique(pack.split)]
    ).astype(int)
    return Pack(*(getattr(pack, f)[np.sort(keep)] for f in pack.__dataclass_fields__))


class Trainer:
    def __init__(self, cfg: TrainConfig, pack: Pack, out: Path, device: str) -> None:
        self.cfg, self.out, self.device = cfg, out, device
        self.train_pack, self.val_pack = pack.select("train"), pack.select("val")
        seed_everything(cfg.seed)
        self.model = build_model(cfg.model, cfg.imagenet, cfg.imagenet_file or None).to(device)
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
        self._plotted_at = -math.inf
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
        losses: list[float] = []
        bar = tqdm(
            range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{self.epochs}", leave=False
        )
        for i in bar:
            step = self.epoch * self.steps_per_epoch + i
            if self.cfg.max_steps and step >= self.cfg.max_steps:
                break
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
            train_secs = time.perf_counter() - t0
            val = validate(self.model, self.val_pack, self.cfg.model.input_size)
            if self.plateau:
                self.plateau.step(val["score"])
            self.epoch += 1
            secs = time.perf_counter() - t0
            if self.cfg.max_steps and self.epoch * self.steps_per_epoch >= self.cfg.max_steps:
                log.info("max steps %d: the run ends at epoch %d", self.cfg.max_steps, self.epoch)
                self.epochs = self.epoch
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
                "train_secs": train_secs,
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
            # the curves after the last epoch, and meanwhile at most every PLOT_EVERY_S:
            # drawing them costs more than a tiny run's whole epoch
            now = time.perf_counter()
            if self.epoch >= self.epochs or now - self._plotted_at >= PLOT_EVERY_S:
                plot_curves(self.history, self.out / "curves.png")
                self._plotted_at = now
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
    p.add_argument(
        "--stage",
        help="run this stage of the recipe in OUT (default: all its stages in order, each "
        "in OUT/STAGE)",
    )
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
        "--imagenet-weights",
        type=Path,
        metavar="FILE",
        help="the backbone's ImageNet weights from this file (b0's: efficientnet-pytorch's "
        "efficientnet-b0-355c32eb.pth); by default from the Lite packages or torch's hub cache",
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
    p.add_argument(
        "--limit", type=int, metavar="N", help="smoke run: N images of each split (train, val)"
    )
    p.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="smoke run: stop after N optimiser steps in all (the run counts as finished)",
    )
    args = p.parse_args(argv)
    if not args.data.exists():
        p.error(f"no data set at {args.data} (the face-keypoints folder, or a pack .npz)")

    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        handlers=[logging.StreamHandler()],
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        recipe = Recipe.read(args.config) if args.config else None
        runs = plan(recipe, args.stage, args.out, overrides(args))
    except ConfigError as err:
        p.error(str(err))
    try:
        for run in runs:
            prepare(run, args)
        check_inputs(runs, recipe)
        packs: dict[tuple[int, int], Pack] = {}
        for run in runs:
            if run.done:
                log.info("%s: done (best validation NME %.4f), skipping", run.out, run.done)
                continue
            key = (run.cfg.canvas, run.cfg.limit)
            if key not in packs:
                packs[key] = make_pack(args.data, args.cache, *key)
            train_one(run, packs[key], args)
    except (ImageNetWeightsMissing, MissingInput) as err:
        raise SystemExit(f"facemask-train: {err}") from None
    if recipe and recipe.release and len(runs) > 1:
        members = " ".join(str(args.out / name / "best.pt") for name in recipe.release)
        data = args.data if args.data.is_dir() else "D"
        log.info("the release: facemask-release %s --data %s", members, data)


class MissingInput(FileNotFoundError):
    """A file a run reads (init, a teacher) is not there and cannot be made here."""


@dataclass
class Run:
    """One training run: a recipe's stage (or the whole recipe), its config and folder."""

    stage: str | None
    cfg: TrainConfig
    out: Path
    resume: bool = False  # continue from out/last.pt
    done: float = 0.0  # finished before: its best validation NME


def overrides(args: argparse.Namespace) -> dict:
    """The command line's changes to a recipe."""
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
        "imagenet_file": str(args.imagenet_weights) if args.imagenet_weights else None,
        "limit": args.limit,
        "max_steps": args.max_steps,
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
    return {k: v for k, v in changes.items() if v is not None and v != {}}


def plan(recipe: Recipe | None, stage: str | None, out: Path, changes: dict) -> list[Run]:
    """The runs a command asks for: one stage in ``out`` (earlier stages beside it), every
    stage in order in ``out/STAGE``, or the one run of a recipe without stages."""
    if recipe is None:
        runs = [Run(None, TrainConfig(), out)]
    elif stage:
        runs = [Run(stage, recipe.config(stage, runs=out.parent), out)]
    elif recipe.stages:
        runs = [Run(name, recipe.config(name, runs=out), out / name) for name in recipe.stages]
    else:
        runs = [Run(None, recipe.config(), out)]
    for run in runs:
        cfg = over(run.cfg, changes)
        if cfg.init:  # the checkpoint replaces the ImageNet weights: never load them
            cfg = replace(cfg, imagenet=False)
        run.cfg = cfg
    return runs


def prepare(run: Run, args: argparse.Namespace) -> None:
    """Whether ``run`` starts, continues or is done: ``--resume`` continues one run; the
    stages of a whole recipe continue where they were, or are skipped when finished."""
    last, written = run.out / "last.pt", run.out / "config.json"
    whole = args.config and run.stage and not args.stage
    if not (args.resume or whole) or not last.exists():
        return
    if written.exists():
        before = TrainConfig.from_dict(json.loads(written.read_text()))
        if whole and replace(before, epochs=run.cfg.epochs) != run.cfg:
            differ = [
                f"{k} {v} -> {run.cfg.to_dict()[k]}"
                for k, v in before.to_dict().items()
                if k != "epochs" and v != run.cfg.to_dict()[k]
            ]
            raise SystemExit(
                f"facemask-train: {run.out} holds a run of another config "
                f"({'; '.join(differ)}): give another --out, or remove it"
            )
        run.cfg = replace(before, epochs=run.cfg.epochs) if whole else before
    run.resume = True
    if whole:
        state = torch.load(last, map_location="cpu", weights_only=False)
        if state["epoch"] >= max(state["epochs"], args.epochs or 0):
            run.done = state["best"]


def needs(run: Run) -> list[str]:
    """The files ``run`` reads: its teachers, and the weights it starts from."""
    if run.done:
        return []
    return [*run.cfg.teachers, *([run.cfg.init] if run.cfg.init and not run.resume else [])]


def check_inputs(runs: list[Run], recipe: Recipe | None) -> None:
    """Every file the runs read is there or made by an earlier run (a recipe's inputs are
    taken from this repository's git history where missing), and the ImageNet weights they
    start from are at hand. Checked before any training or decoding, so that a missing
    teacher never stops a recipe hours in."""
    made: set[Path] = set()
    backbones: set[tuple[str, str]] = set()
    for run in runs:
        if run.cfg.imagenet and not run.done:
            backbones.add((run.cfg.model.arch, run.cfg.imagenet_file))
        for name in needs(run):
            path = Path(name)
            if path in made or path.exists():
                continue
            if recipe and name in recipe.inputs:
                from_git(path, recipe.inputs[name])
                continue
            hint = ""
            if recipe and path.name == "best.pt" and path.parent.name in recipe.stages:
                hint = (
                    f": run stage {path.parent.name} first (--stage {path.parent.name} "
                    f"--out {path.parent}), or the whole recipe without --stage"
                )
            raise MissingInput(f"{run.out} needs {path}, which is not there{hint}")
        made.add(run.out / "best.pt")
    for arch, file in sorted(backbones):  # ImageNetWeightsMissing says what to do
        imagenet_state(arch, file or None)


def from_git(path: Path, obj: str) -> None:
    """Write ``REV:PATH`` of this repository's history to ``path``."""
    done = subprocess.run(["git", "-C", str(REPO), "show", obj], capture_output=True)
    if done.returncode:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise MissingInput(
            f"{path} is missing and git cannot give {obj} ({why[-1] if why else 'no git'}): "
            f"a shallow clone? git fetch --unshallow, or put the file at {path}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(done.stdout)
    part.replace(path)
    log.info("%s: from git %s", path, obj)


def train_one(run: Run, pack: Pack, args: argparse.Namespace) -> float:
    """Train ``run`` on ``pack``: its folder, log and config, then the epochs."""
    run.out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run.out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        cfg = run.cfg
        cfg.save(run.out / "config.json")
        log.info("%sconfig: %s", f"stage {run.stage}: " if run.stage else "", cfg)
        trainer = Trainer(cfg, pack, run.out, args.device)
        if cfg.init and not run.resume:
            trainer.model.load_state_dict(init_state(cfg.init, cfg.model.arch))
            log.info("initialised from %s", cfg.init)
        if run.resume:
            trainer.resume()
            if args.epochs:  # extend (or shorten) a finished run
                trainer.epochs = args.epochs
        best = trainer.run()
        log.info("done: best validation NME %.4f -> %s", best, run.out / "best.pt")
        return best
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


if __name__ == "__main__":
    main()
