"""Every weight file the product ships is listed with its SHA-256, source and licence, and
a damaged one is refused with its name, never run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core import runtime, weightfiles
from core.detection import centerface, mtcnn
from core.errors import WeightsError
from core.keypoints import landmarks
from core.keypoints.landmarks import KeypointPredictor, read_manifest, shipped_release


def test_every_shipped_file_is_listed_with_its_hash_source_and_licence():
    entries = weightfiles.manifest()
    assert set(entries) == {"mtcnn-pnet.onnx", "mtcnn-rnet.onnx", "mtcnn-onet.onnx",
                            "centerface.onnx", "verifier-face64-r8.onnx",
                            "look-lite0-r12.onnx"}  # fmt: skip
    for name, entry in entries.items():
        assert runtime.file_sha256(weightfiles.WEIGHTS_DIR / name) == entry["sha256"], name
        assert "MIT" in entry["licence"] and entry["source"], name
    release = read_manifest(shipped_release())  # checks each member's hash
    listed = {*entries, *(m.name for m in release.members), release.manifest.name}
    on_disk = {p.name for p in weightfiles.WEIGHTS_DIR.iterdir()}
    # training's float weights and the documents are the only files not served
    assert on_disk - listed == {
        f"{release.name}.pt",
        "verifier-face64-r8.pt",
        "look-lite0-r12.pt",
        "MODEL_CARD.md",
        "MANIFEST.json",
    }


def _damaged_copy(tmp_path, name):
    folder = tmp_path / "weights"
    shutil.copytree(weightfiles.WEIGHTS_DIR, folder)
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    return folder


def test_a_damaged_detector_file_is_refused_with_its_name(tmp_path, monkeypatch):
    folder = _damaged_copy(tmp_path, "centerface.onnx")
    monkeypatch.setattr(weightfiles, "WEIGHTS_DIR", folder)
    with pytest.raises(WeightsError, match="centerface.onnx is damaged or not ours"):
        centerface.CenterFace()
    folder = _damaged_copy(tmp_path / "2", "mtcnn-rnet.onnx")
    monkeypatch.setattr(weightfiles, "WEIGHTS_DIR", folder)
    with pytest.raises(WeightsError, match="mtcnn-rnet.onnx is damaged"):
        mtcnn.OnnxNet("rnet")


def test_a_damaged_or_foreign_keypoint_release_is_refused(tmp_path):
    release = read_manifest(shipped_release())
    folder = _damaged_copy(tmp_path, release.members[1].name)
    with pytest.raises(WeightsError, match=f"{release.members[1].name} is damaged"):
        KeypointPredictor.load(folder / release.manifest.name)
    with pytest.raises(WeightsError, match="training checkpoint"):
        KeypointPredictor.load(folder / f"{release.name}.pt")
    manifest = json.loads(release.manifest.read_text())
    manifest["input"]["mean"] = [0, 0, 0]
    (folder / "other.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="normalisation"):
        KeypointPredictor.load(folder / "other.json")
    (folder / "other.json").write_text(json.dumps({"format": "facemask-keypoints/99"}))
    with pytest.raises(WeightsError, match="not a keypoint release"):
        KeypointPredictor.load(folder / "other.json")


def test_the_release_reads_its_input_size_and_members_from_the_manifest():
    predictor = KeypointPredictor.load(threads=2)
    release = predictor.release
    assert predictor.size == release.input_size == 192 and len(release.members) == 2
    points, spread = predictor.forward(np.zeros((1, 3, 192, 192), np.float32))
    assert points.shape == (1, 68, 2) and spread.shape == (1,)
    assert landmarks.RELEASE_FORMAT == json.loads(release.manifest.read_text())["format"]
