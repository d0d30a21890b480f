"""Experiments as files: the recipes in training/configs and how a run records its own."""

import json

import pytest

from training.config import CONFIGS_DIR, ConfigError, Recipe, TrainConfig, resolve
from training.model import ModelConfig


def test_the_seed_recipe_is_the_seeds_training():
    cfg = resolve("seed")
    assert cfg.model == ModelConfig("b0", "gap", 224, memory_efficient_swish=True)
    assert cfg.imagenet and cfg.epochs == 100
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay) == ("adam", 1e-3, 0.0)
    assert (cfg.schedule, cfg.loss) == ("plateau", "smoothl1")


def test_the_shipped_recipe_has_its_stages_in_order():
    recipe = Recipe.read("shipped")
    with pytest.raises(ConfigError, match="has stages \\(r2-lite1, r3-lite2, .*\\): name one"):
        recipe.config()
    assert list(recipe.stages) == [
        "r2-lite1", "r3-lite2", "r6-lite1", "r7-lite2", "s2-lite1", "s3-lite2",
    ]  # fmt: skip
    done: set[str] = set()
    for name in recipe.stages:
        cfg = recipe.config(name, runs="runs/mine")
        # every stage: L1, no mirrored crops, MTCNN's tighter scatter
        assert cfg.loss == "l1" and cfg.augment.p_flip == 0.0
        assert cfg.augment.detector_jitter == 0.6 and cfg.model.input_size == 192
        assert cfg.model.arch == name.rsplit("-", 1)[1]
        # a stage starts from, and learns from, stages run before it (their best.pt in the
        # folder the stages share) or the recipe's inputs
        for path in [cfg.init, *cfg.teachers] if cfg.init else cfg.teachers:
            if path in recipe.inputs:
                continue
            runs, stage, best = path.rsplit("/", 2)
            assert (runs, best) == ("runs/mine", "best.pt") and stage in done, (name, path)
        done.add(name)
    s2 = recipe.config("s2-lite1")
    assert (s2.lr, s2.epochs, s2.augment.rotation, s2.distill_weight) == (3e-4, 40, 20.0, 0.8)
    assert s2.init == "runs/r6-lite1/best.pt"  # by default the stages share runs/
    assert s2.teachers == ["runs/c28a9f30.pt", "runs/r6-lite1/best.pt", "runs/r7-lite2/best.pt"]
    assert s2.augment.p_detector == TrainConfig().augment.p_detector  # the file's over defaults
    assert recipe.config("r2-lite1").time_budget_min == 6.5
    # release 4's Lite0 comes from git history; the release is the two distilled members
    assert recipe.inputs == {
        "runs/c28a9f30.pt": "8b0f602:core/weights/keypoints-lite0-integral192-c28a9f30.pt"
    }
    assert recipe.release == ["s2-lite1", "s3-lite2"]


def test_every_recipe_reads_and_names_only_earlier_stages():
    for path in sorted(CONFIGS_DIR.glob("*.json")):
        recipe = Recipe.read(path)
        for stage in recipe.stages or [None]:
            recipe.config(stage)  # a stage:NAME of a later or unknown stage is an error


def test_a_stage_may_read_only_an_earlier_stage(tmp_path):
    (tmp_path / "r.json").write_text(
        json.dumps({"stages": {"a": {"init": "stage:b"}, "b": {"teachers": ["stage:a"]}}})
    )
    recipe = Recipe.read(tmp_path / "r.json")
    assert recipe.config("b", runs="x").teachers == ["x/a/best.pt"]
    with pytest.raises(ConfigError, match="stage a reads stage:b, which is not a stage before"):
        recipe.config("a")
    (tmp_path / "r.json").write_text(json.dumps({"stages": {"a": {}}, "release": ["z"]}))
    with pytest.raises(ConfigError, match="releases stages it does not have: z"):
        Recipe.read(tmp_path / "r.json")


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
