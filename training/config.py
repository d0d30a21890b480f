"""Experiments as data: one TrainConfig per run, presets over defaults.

A run writes its config (config.json) next to its checkpoints and metrics, so every
number in a report can be traced back to the exact settings that made it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from core.model import ModelConfig
from training.augment import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    imagenet: bool = True
    epochs: int = 120
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | adam
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine (linear warm-up) | plateau (the seed's)
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig(**d.get("model", {}))
        d["augment"] = AugmentConfig(**d.get("augment", {}))
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))


PRESETS: dict[str, TrainConfig] = {
    # The seed: b0 at 224, GAP head, SmoothL1, Adam 1e-3, ReduceLROnPlateau(0.1, 10), 100 epochs.
    "seed": TrainConfig(
        model=ModelConfig("b0", "gap", 224, memory_efficient_swish=True),
        imagenet=False,
        epochs=100,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        schedule="plateau",
        loss="smoothl1",
        smoothl1_beta=1.0 / 128,
        warmup_epochs=0.0,
    ),
    "lite0-integral": TrainConfig(),
    "lite0-gap": TrainConfig(model=ModelConfig("lite0", "gap", 192)),
    "b0-scratch": TrainConfig(model=ModelConfig("b0", "integral", 192), imagenet=False),
    "tiny": TrainConfig(
        model=ModelConfig("lite0", "gap", 64), imagenet=False, epochs=2, batch_size=4
    ),
}


def preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise SystemExit(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    model_over = {k[6:]: v for k, v in overrides.items() if k.startswith("model_")}
    rest = {k: v for k, v in overrides.items() if not k.startswith("model_") and v is not None}
    if model_over:
        rest["model"] = replace(cfg.model, **{k: v for k, v in model_over.items() if v is not None})
    return replace(cfg, **rest)
