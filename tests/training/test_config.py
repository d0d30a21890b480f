"""Experiments as files: the recipes in training/configs and how a run records its own."""

import json

import pytest

from training.config import CONFIGS_DIR, ConfigError, TrainConfig, resolve
from training.model import ModelConfig


def test_the_seed_recipe_is_the_seeds_training():
    cfg = resolve("seed")
    assert cfg.model == ModelConfig("b0", "gap", 224, memory_efficient_swish=True)
    assert cfg.imagenet and cfg.epochs == 100
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay) == ("adam", 1e-3, 0.0)
    assert (cfg.schedule, cfg.loss) == ("plateau", "smoothl1")


def test_the_shipped_recipe_has_its_stages_in_order():
    with pytest.raises(ConfigError, match="pick one with --stage: r2-lite1, r3-lite2"):
        resolve("shipped")
    stages = json.loads((CONFIGS_DIR / "shipped.json").read_text())["stages"]
    done: set[str] = set()
    for name in stages:
        cfg = resolve("shipped", name)
        # every stage: L1, no mirrored crops, MTCNN's tighter scatter
        assert cfg.loss == "l1" and cfg.augment.p_flip == 0.0
        assert cfg.augment.detector_jitter == 0.6 and cfg.model.input_size == 192
        assert cfg.model.arch == name.rsplit("-", 1)[1]
        # a stage starts from, and learns from, stages run before it
        for path in [cfg.init, *cfg.teachers] if cfg.init else cfg.teachers:
            run = path.split("/")[1].removesuffix(".pt")
            assert run in done or run == "c28a9f30", (name, path)
        done.add(name)
    s2 = resolve("shipped", "s2-lite1")
    assert (s2.lr, s2.epochs, s2.augment.rotation, s2.distill_weight) == (3e-4, 40, 20.0, 0.8)
    assert s2.augment.p_detector == TrainConfig().augment.p_detector  # the file's over defaults
    assert resolve("shipped", "r2-lite1").time_budget_min == 6.5


def test_a_recipe_with_an_unknown_field_is_an_error_not_ignored(tmp_path):
    (tmp_path / "typo.json").write_text('{"epoch": 3}')
    with pytest.raises(ConfigError, match="unknown config fields: epoch"):
        resolve(tmp_path / "typo.json")
    (tmp_path / "typo.json").write_text('{"augment": {"rotate": 3}}')
    with pytest.raises(ConfigError, match="unknown augment fields: rotate"):
        resolve(tmp_path / "typo.json")
    with pytest.raises(ConfigError, match="no config file"):
        resolve("no-such-recipe")


def test_a_runs_config_json_is_a_recipe_that_gives_the_same_config(tmp_path):
    cfg = resolve("shipped", "s3-lite2")
    cfg.save(tmp_path / "config.json")
    assert resolve(tmp_path / "config.json") == cfg
