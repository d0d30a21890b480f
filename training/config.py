"""Experiments as data: one TrainConfig per run, read from a file over the defaults.

A recipe is a JSON file in ``training/configs/`` (``facemask-train --config FILE``): the
fields of :class:`TrainConfig` it changes from the defaults below (``model`` and ``augment``
field by field). Keys starting with ``_`` are notes for people.

A recipe of several runs lists them under ``"stages"``, in the order they run, each a set of
fields over the file's own. A stage names the best weights of an earlier one as
``"stage:NAME"`` (in ``init`` or ``teachers``); each stage runs in a folder of its name,
so that reads ``RUNS/NAME/best.pt``, ``RUNS`` being the folder the stages share. Beside the
stages a recipe may hold ``"inputs"``: files its stages read that no stage makes, each with
the git object it comes from (``"REV:PATH"`` in this repository's history), and
``"release"``: the stages whose best weights make the release.

A run writes its resolved config (config.json) next to its checkpoints and metrics, so
every number in a report traces back to the settings that made it; that file is a recipe
too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from training.augment import AugmentConfig
from training.model import ModelConfig

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    """A recipe file that cannot be read as a TrainConfig (the sentence says why)."""


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    imagenet: bool = True
    init: str = ""  # weights to start from (fine-tuning); the ImageNet weights are not loaded
    epochs: int = 120
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | adam
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine (linear warm-up) | plateau (ReduceLROnPlateau 0.1, 10)
    warmup_epochs: float = 2.0
    loss: str = "wing"  # wing | l1 | smoothl1
    smoothl1_beta: float = 0.01  # in unit crop coordinates
    seed: int = 0
    canvas: int = 384
    time_budget_min: float = 0.0  # > 0: cap epochs to fit the budget (measured on epoch 1)
    freeze_backbone: bool = False  # train the head only (backbone weights and BN statistics)
    # distillation: checkpoints whose mean prediction on each augmented crop is a second
    # target beside the labels, weighted distill_weight (labels 1 - distill_weight)
    teachers: list[str] = field(default_factory=list)
    distill_weight: float = 0.5
    # what the teachers read: the student's crop ("augmented") or the same crop without
    # occlusion or colour changes ("clean"), so a covered face is taught where its points are
    teacher_input: str = "augmented"
    keep_epochs: bool = False  # also keep every epoch's weights (epochs/epoch-N.pt)
    # the backbone's ImageNet weights from this file, not from where imagenet_state looks
    imagenet_file: str = ""
    # smoke runs: train on this many images of each split (0: all), stop after this many
    # optimiser steps in all (0: no limit; the run counts as finished there)
    limit: int = 0
    max_steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from (part of) a dict; unknown keys are an error, not ignored."""
        return over(cls(), d)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


#: a recipe's keys beside TrainConfig's fields (see the module's doc)
RECIPE_KEYS = {"stages", "inputs", "release"}
STAGE_REF = "stage:"


def over(cfg: TrainConfig, changes: dict) -> TrainConfig:
    """``cfg`` with the fields in ``changes`` (``model`` and ``augment`` field by field)."""
    changes = {k: v for k, v in changes.items() if not k.startswith("_")}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(changes) - known - RECIPE_KEYS)
    if unknown:
        raise ConfigError(f"unknown config fields: {', '.join(unknown)}")
    for key in RECIPE_KEYS:
        changes.pop(key, None)
    for name, kind in (("model", ModelConfig), ("augment", AugmentConfig)):
        if name in changes:
            sub = dict(changes[name])
            bad = sorted(set(sub) - {f.name for f in fields(kind)})
            if bad:
                raise ConfigError(f"unknown {name} fields: {', '.join(bad)}")
            if "mirror_shift" in sub:  # JSON has lists, the config tuples
                sub["mirror_shift"] = tuple(sub["mirror_shift"])
            changes[name] = replace(getattr(cfg, name), **sub)
    if changes.get("teacher_input", "augmented") not in ("augmented", "clean"):
        raise ConfigError(f"teacher_input is augmented or clean, not {changes['teacher_input']!r}")
    return replace(cfg, **changes)


def recipe_path(path: Path | str) -> Path:
    """A recipe's file: a path, or a bare name for ``training/configs/NAME.json``; the
    README's ``training/configs/NAME.json`` is found from any folder."""
    path = Path(path)
    if path.exists():
        return path
    if not path.suffix:
        return CONFIGS_DIR / f"{path}.json"
    if path.parent == Path("training/configs"):
        return CONFIGS_DIR / path.name
    return path


@dataclass(frozen=True)
class Recipe:
    """A recipe file: its own fields, its stages in order, its inputs and its release."""

    path: Path
    settings: dict  # the fields over the defaults that every stage shares
    stages: dict[str, dict]
    inputs: dict[str, str]  # file -> "REV:PATH", the git object it comes from
    release: list[str]  # the stages whose best.pt make the release

    @classmethod
    def read(cls, path: Path | str) -> Recipe:
        path = recipe_path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            known = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.json")))
            raise ConfigError(f"no config file {path} (training/configs has: {known})") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not JSON: {err}") from None
        recipe = cls(
            path,
            data,
            data.get("stages", {}),
            data.get("inputs", {}),
            data.get("release", []),
        )
        over(TrainConfig(), data)  # the file's own fields, checked once
        unknown = [s for s in recipe.release if s not in recipe.stages]
        if unknown:
            raise ConfigError(f"{path} releases stages it does not have: {', '.join(unknown)}")
        return recipe

    def config(self, stage: str | None = None, runs: Path | str = "runs") -> TrainConfig:
        """The config of the recipe, or of its stage ``stage``, with each ``stage:NAME`` read
        as ``runs/NAME/best.pt``."""
        cfg = over(TrainConfig(), self.settings)
        if stage is None:
            if self.stages:
                raise ConfigError(
                    f"{self.path} has stages ({', '.join(self.stages)}): name one, or run "
                    "them all in order"
                )
            return cfg
        if stage not in self.stages:
            raise ConfigError(
                f"{self.path} has no stage {stage!r}: {', '.join(self.stages) or 'none'}"
            )
        cfg = over(cfg, self.stages[stage])
        before = list(self.stages)[: list(self.stages).index(stage)]

        def path_of(ref: str) -> str:
            if not ref.startswith(STAGE_REF):
                return ref
            name = ref.removeprefix(STAGE_REF)
            if name not in before:
                raise ConfigError(
                    f"{self.path}: stage {stage} reads {ref}, which is not a stage before it"
                )
            return str(Path(runs) / name / "best.pt")

        return replace(
            cfg,
            init=path_of(cfg.init) if cfg.init else "",
            teachers=[path_of(t) for t in cfg.teachers],
        )


def resolve(path: Path | str, stage: str | None = None, runs: Path | str = "runs") -> TrainConfig:
    """The config of a recipe file (a bare name means ``training/configs/NAME.json``); of
    its stage ``stage`` where it has stages, its earlier stages' runs in ``runs``."""
    return Recipe.read(path).config(stage, runs)
