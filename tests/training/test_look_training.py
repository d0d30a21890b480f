"""training.look: ImageNet features of the verifier's crops, a probe fitted on them, exported
as the one ONNX file that serving runs beside the verifier."""

from __future__ import annotations

import numpy as np

from core.keypoints.verifier import VERIFIER_ONNX, FaceVerifier
from core.weightfiles import weight_file
from training import look

from .test_verifier_training import _crops


def _fit(tmp_path, *options: str):
    """training.look on small made-up crops; the ONNX file it exported."""
    _crops(tmp_path / "train.npz", 96, 0)
    _crops(tmp_path / "val.npz", 32, 1)
    onnx = tmp_path / "look.onnx"
    look.main([
        "--train", str(tmp_path / "train.npz"), "--val", str(tmp_path / "val.npz"),
        "--out", str(tmp_path / "look.pt"), "--onnx", str(onnx), "--side", "64",
        "--threads", "1", *options,
    ])  # fmt: skip
    return onnx


def test_fits_a_probe_on_imagenet_features_and_exports_what_serving_runs(tmp_path, capsys):
    onnx = _fit(tmp_path)
    report = capsys.readouterr().out
    assert '"val"' in report and onnx.exists()
    # a bright middle is a "face" in these crops: ImageNet's features tell that at once
    verifier = FaceVerifier.load(weight_file(VERIFIER_ONNX), look=onnx)
    with np.load(tmp_path / "val.npz") as z:
        crops, labels = z["crops"], z["labels"]
    seen = verifier.look_of_crops(crops)
    assert seen.shape == (len(crops), 2)  # the sharp probe's (NaN on soft crops), the soft one's
    for probe in np.isfinite(seen).all(axis=0).nonzero()[0]:
        assert seen[labels == 1, probe].min() > seen[labels == 0, probe].max()
    assert np.isfinite(seen[:, 1]).all()
    # the checkpoint exports again to the same answers
    again = tmp_path / "again.onnx"
    look.main(["--export", str(tmp_path / "look.pt"), "--onnx", str(again)])
    twin = FaceVerifier.load(weight_file(VERIFIER_ONNX), look=again)
    assert np.allclose(twin.look_of_crops(crops), seen, atol=1e-5, equal_nan=True)
    assert np.isnan(FaceVerifier.load(look=False).look_of_crops(crops)).all()


def test_fine_tunes_the_last_blocks_keeps_the_best_epoch_and_exports_it(tmp_path, capsys):
    onnx = _fit(tmp_path, "--fine-tune", "2", "--batch", "32")
    report = capsys.readouterr().out
    assert '"epoch": 2' in report and "kept epoch" in report
    import torch

    state = torch.load(tmp_path / "look.pt", weights_only=False)
    assert state["fine_tune"]["cut"] == look.CUT and len(state["fine_tune"]["epochs"]) == 3
    # only what the fine-tune trains is kept: the blocks from CUT on and the head
    blocks = {int(k.split(".")[1]) for k in state["tail"] if k.startswith("_blocks.")}
    assert blocks == set(range(look.CUT, 16))
    assert {k.split(".")[0] for k in state["tail"]} == {"_blocks", "_conv_head", "_bn1"}
    with np.load(tmp_path / "val.npz") as z:
        crops = z["crops"]
    seen = FaceVerifier.load(weight_file(VERIFIER_ONNX), look=onnx).look_of_crops(crops)
    # the checkpoint carries the trained blocks: exported again, the same answers
    again = tmp_path / "again.onnx"
    look.main(["--export", str(tmp_path / "look.pt"), "--onnx", str(again)])
    twin = FaceVerifier.load(weight_file(VERIFIER_ONNX), look=again)
    assert np.allclose(twin.look_of_crops(crops), seen, atol=1e-5, equal_nan=True)
    # and they are not the frozen network's
    frozen = look.Look(64).eval()
    with torch.no_grad():
        before = frozen.features(torch.from_numpy(crops[:4]))
        after = look.load_look(tmp_path / "look.pt").features(torch.from_numpy(crops[:4]))
    assert not torch.allclose(before, after)
