"""training.verifier: trains on crops, resumes from its last epoch, exports what serving runs."""

from __future__ import annotations

import json

import numpy as np

from core.keypoints.verifier import SIZE, FaceVerifier
from training import verifier


def _crops(path, n: int, seed: int) -> None:
    """Faces bright in the middle, non-faces dark there: something a network can learn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    crops = rng.integers(0, 60, (n, SIZE, SIZE, 3)).astype(np.uint8)
    crops[labels == 1, 16:48, 16:48] += 150
    groups = np.array([f"person{i % 7}" for i in range(n)])
    np.savez(
        path, crops=crops, labels=labels.astype(np.uint8), kinds=labels.astype(str), groups=groups
    )


def test_trains_resumes_and_exports_a_verifier_serving_runs(tmp_path):
    _crops(tmp_path / "train.npz", 256, 0)
    _crops(tmp_path / "val.npz", 32, 1)
    data = ["--train", str(tmp_path / "train.npz"), "--val", str(tmp_path / "val.npz")]
    common = [
        *data,
        "--out",
        str(tmp_path / "run"),
        "--batch",
        "32",
        "--width",
        "4",
        "--threads",
        "1",
    ]
    verifier.main([*common, "--epochs", "1"])
    verifier.main([*common, "--epochs", "3", "--resume"])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]  # the resumed run went on, not over
    assert history[-1]["auc"] > 0.9, history[-1]
    onnx = tmp_path / "v.onnx"
    verifier.main(["--export", str(tmp_path / "run" / "best.pt"), "--onnx", str(onnx)])
    with np.load(tmp_path / "val.npz") as z:
        crops, labels = z["crops"], z["labels"]
    sure = FaceVerifier.load(onnx).of_crops(crops)
    assert sure.shape == (32,) and sure[labels == 1].mean() > sure[labels == 0].mean()
