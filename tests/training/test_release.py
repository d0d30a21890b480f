"""facemask-release on a tiny data set: the members in one file, its int8 twin beside it."""

import json

import numpy as np
import torch

from core import runtime
from core.keypoints.landmarks import KeypointPredictor, member_path
from training import release
from training.model import KeypointEnsemble, ModelConfig, build_model, load_weights, save_weights
from training.predictor import torch_predictor


def test_release_writes_hashed_weights_and_an_int8_twin_that_the_product_runs(
    tiny_dataset, tmp_path, capsys
):
    paths = []
    for seed, arch in enumerate(("lite0", "lite1")):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"{arch}.pt")
        save_weights(build_model(ModelConfig(arch, "integral", 64)), paths[-1])
    out = tmp_path / "weights"
    out.mkdir()
    (out / "keypoints-lite0-integral64-0badf00d.pt").write_bytes(b"an earlier release")
    args = [*map(str, paths), "--data", str(tiny_dataset), "--out", str(out), "--json"]
    assert release.main([*args, "--calibration", "8"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    weights = out / f"keypoints-lite0-lite1-integral64-{report['sha256'][:8]}.pt"
    assert sorted(p.name for p in out.iterdir()) == sorted([
        weights.stem + ".json",
        member_path(weights, 0).name,
        member_path(weights, 1).name,
        weights.name,
    ])  # the earlier release is gone
    assert runtime.file_sha256(weights) == report["sha256"]
    model, meta = load_weights(weights)
    assert isinstance(model, KeypointEnsemble) and len(model.members) == 2
    assert meta["made_by"] == "facemask-release" and meta["calibration_crops"] == 8
    manifest = json.loads(weights.with_suffix(".json").read_text())
    assert manifest["input_size"] == 64 and manifest["source_weights"]["sha256"] == report["sha256"]
    assert [m["arch"] for m in manifest["members"]] == ["lite0", "lite1"]

    product = KeypointPredictor.load(weights.with_suffix(".json"))  # as serving loads it
    floats = torch_predictor(model)
    assert (product.backend, floats.backend) == ("onnxruntime-int8", "onnxruntime")
    # the tool compared them on the validation people's crops of the data set
    assert report["val_crops"] > 0 and np.isfinite(report["nme_int8"])
    image = (np.random.default_rng(1).random((120, 100, 3)) * 255).astype(np.uint8)
    a, b = product.predict_whole_image(image), floats.predict_whole_image(image)
    assert a.shape == (68, 2) and np.isfinite(a).all()
    assert np.abs(a - b).mean() < 0.05 * 120  # an untrained net, but the same one


def test_release_of_one_checkpoint_keeps_it_a_single_network(tiny_dataset, tmp_path):
    path = tmp_path / "one.pt"
    save_weights(build_model(ModelConfig("lite0", "integral", 64)), path)
    report = release.release([path], tiny_dataset, tmp_path / "w", calibration=4, half=False)
    model, _ = load_weights(report["weights"])
    assert not isinstance(model, KeypointEnsemble)
    assert all(
        v.dtype == torch.float32
        for v in torch.load(report["weights"])["state_dict"].values()
        if v.is_floating_point()
    )


def test_repack_cuts_an_earlier_release_into_members_without_changing_a_point(tmp_path):
    """The earlier layout (NAME.pt and one NAME.int8.onnx holding every member) becomes
    member files and a manifest; served, they compute exactly what the one file did."""
    from training.export import quantize
    from training.predictor import optimized

    members = [build_model(ModelConfig(arch, "integral", 64)) for arch in ("lite0", "lite1")]
    weights = tmp_path / "keypoints-lite0-lite1-integral64-00000000.pt"
    save_weights(KeypointEnsemble(members), weights)
    model = load_weights(weights)[0]
    combined = weights.with_name(weights.stem + ".int8.onnx")
    calibration = np.random.default_rng(0).normal(size=(8, 3, 64, 64)).astype(np.float32)
    sha = runtime.file_sha256(weights)
    quantize(optimized(model), 64, calibration, combined, source_sha256=sha)
    before = runtime.OnnxModule(combined.read_bytes(), threads=1)(calibration)

    manifest = release.repack(weights)
    assert not combined.exists() and manifest == weights.with_suffix(".json")
    after = KeypointPredictor.load(manifest, threads=2).forward(calibration)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
