"""Serving without torch (issue 18): MTCNN and the keypoint ensemble on ONNX Runtime, their
weights read without torch, the same faces and points as on torch, ONNX Runtime's
telemetry off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.data import astronaut

from core import mtcnn, runtime, torchfile
from core.detect import MtcnnFaceDetector
from core.landmarks import KeypointPredictor, int8_file, read_release, shipped_weights
from core.model import load_weights
from core.mtcnn_torch import TorchNet

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_THRESHOLDS = (0.7, 0.7, 0.8)  # core.detect.MtcnnFaceDetector's
REFERENCE_THRESHOLDS = (0.6, 0.7, 0.7)  # the paper's, more candidates through every stage


def group_like() -> np.ndarray:
    """A 1280x960 group-like photo: the astronaut five times, at three sizes, one of them
    tilted, on a plain wall."""
    canvas = np.full((960, 1280, 3), (176, 170, 160), np.uint8)
    face = astronaut()
    for (x, y), side, angle in [
        ((20, 40), 420, 0),
        ((470, 60), 300, 12),
        ((820, 40), 260, 0),
        ((500, 520), 200, -8),
        ((860, 560), 140, 0),
    ]:
        tile = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        if angle:
            turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
            tile = cv2.warpAffine(tile, turn, (side, side), borderMode=cv2.BORDER_REPLICATE)
        canvas[y : y + side, x : x + side] = tile
    return canvas


PHOTOS = {"astronaut": astronaut, "group": group_like}


@pytest.fixture(scope="module")
def nets() -> dict[str, mtcnn.Mtcnn]:
    thresholds = {"product": PRODUCT_THRESHOLDS, "reference": REFERENCE_THRESHOLDS}
    return {
        f"{backend}-{name}": mtcnn.Mtcnn(thresholds=values, backend=backend)
        for backend in ("onnxruntime", "torch")
        for name, values in thresholds.items()
    }


def test_mtcnn_weights_read_without_torch_equal_torch_load():
    for name in ("pnet", "rnet", "onet"):
        expected = torch.load(mtcnn.weights_dir() / f"{name}.pt", weights_only=True)
        state = mtcnn.read_weights(name)
        assert list(state) == list(expected)
        for key, tensor in expected.items():
            assert state[key].dtype == np.float32 and state[key].shape == tuple(tensor.shape)
            assert np.array_equal(state[key], tensor.numpy()), (name, key)


def test_the_keypoint_release_is_read_without_torch():
    path = shipped_weights()
    blob = torch.load(path, weights_only=True)
    configs, meta = read_release(path)
    assert meta == blob["meta"]
    assert configs == [member["config"] for member in blob["members"]]
    tensors = torchfile.load(path)  # the tensors themselves, float16 as stored
    first = blob["members"][0]["state_dict"]
    for key in list(first)[:20]:
        assert np.array_equal(tensors["members"][0]["state_dict"][key], first[key].numpy())


def test_a_torch_file_cannot_run_code(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Sneaky()}, path)
    with pytest.raises(torchfile.TorchFileError, match="posix.system|os.system"):
        torchfile.load(path)


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("thresholds", ["product", "reference"])
def test_onnx_mtcnn_finds_the_same_faces_as_torch(nets, photo, thresholds):
    image = PHOTOS[photo]()
    ours = nets[f"onnxruntime-{thresholds}"](image)
    reference = nets[f"torch-{thresholds}"](image)
    assert isinstance(nets[f"onnxruntime-{thresholds}"].pnet, mtcnn.OnnxNet)
    assert isinstance(nets[f"torch-{thresholds}"].pnet, TorchNet)
    assert len(reference) >= (1 if photo == "astronaut" else 5)
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference, strict=True):
        assert np.abs(a.box - b.box).max() < 1e-3  # pixels
        assert np.abs(a.points - b.points).max() < 1e-3
        assert abs(a.score - b.score) < 1e-5


def test_the_product_detector_gives_the_same_boxes_on_both(monkeypatch):
    image = group_like()
    on_onnx = MtcnnFaceDetector().detect(image)
    monkeypatch.setenv("FACEMASK_MTCNN_BACKEND", "torch")
    on_torch = MtcnnFaceDetector().detect(image)
    assert isinstance(MtcnnFaceDetector()._mtcnn.pnet, TorchNet)
    assert len(on_onnx) == len(on_torch) >= 5
    for a, b in zip(on_onnx, on_torch, strict=True):
        assert abs(a.box.cx - b.box.cx) < 1e-3 and abs(a.box.cy - b.box.cy) < 1e-3
        assert abs(a.box.side - b.box.side) < 1e-3 and abs(a.box.angle - b.box.angle) < 1e-3


def test_without_onnx_runtime_mtcnn_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(runtime, "available", lambda: False)
    fallback = mtcnn._load_nets.__wrapped__("auto")
    assert all(isinstance(net, TorchNet) for net in fallback)
    faces = mtcnn.Mtcnn(thresholds=PRODUCT_THRESHOLDS, backend="onnxruntime")(astronaut())
    reference = mtcnn.Mtcnn(thresholds=PRODUCT_THRESHOLDS)
    reference.pnet, reference.rnet, reference.onet = fallback
    assert np.abs(reference(astronaut())[0].box - faces[0].box).max() < 1e-3


def test_keypoints_without_torch_are_those_of_the_torch_loaded_model(nets):
    path = shipped_weights()
    served = KeypointPredictor.load()
    assert served.backend == "onnxruntime-int8" and served._model is None  # nothing of torch
    model, meta = load_weights(path)
    through_torch = KeypointPredictor(model, meta, int8=int8_file(path))
    assert through_torch.backend == "onnxruntime-int8"
    image = group_like()
    boxes = [d.box for d in MtcnnFaceDetector().detect(image)]
    ours = served.predict(image, boxes)
    theirs = through_torch.predict(image, boxes)
    assert ours.shape == (len(boxes), 68, 2)
    assert np.abs(ours - theirs).max() < 1e-3
    whole = served.predict_whole_image(astronaut())
    assert np.abs(whole - through_torch.predict_whole_image(astronaut())).max() < 1e-3
    # the torch model is still there for whoever asks (training, facemask-speed)
    assert type(served.model).__name__ == type(model).__name__


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_onnx_runtime_writes_no_telemetry_store_under_home(tmp_path):
    # the control: ONNX Runtime on its own writes its store under a fresh HOME, so the check
    # below can fail (builds without telemetry write nothing: then there is nothing to check)
    bare = tmp_path / "bare-home"
    bare.mkdir()
    code = "import onnxruntime; print('ok')"
    _run(code, {"HOME": str(bare), "ORT_DISABLE_TELEMETRY": "", "XDG_CACHE_HOME": ""})
    if not _files_under(bare):
        pytest.skip("this ONNX Runtime build writes no telemetry store")
    home = tmp_path / "home"
    home.mkdir()
    code = """
import os
os.environ.pop("ORT_DISABLE_TELEMETRY", None)
from core.landmarks import KeypointPredictor
from core.mtcnn import load_nets
from skimage.data import astronaut
KeypointPredictor.load().predict_whole_image(astronaut())
load_nets()
print("ok")
"""
    assert _run(code, {"HOME": str(home), "XDG_CACHE_HOME": ""}) == "ok"
    assert _files_under(home) == []


def test_a_serving_worker_never_imports_torch_and_stays_small(tmp_path):
    """serving.pool's worker set-up, then photos of one and five faces in all seven masks:
    torch never loaded, under 450 MB resident (issue 18; facemask-bench --memory 500
    measures the long run)."""
    for name, make in PHOTOS.items():
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), make()[..., ::-1])
    code = f"""
import json, sys
from pathlib import Path
from serving.jobs import MaskJob
from serving.pool import load_mask_job
job = load_mask_job(workers=1)
photos = [Path({str(tmp_path)!r}, n + ".jpg").read_bytes() for n in ("astronaut", "group")]
answers = [job(MaskJob(photos[k % 2], 1 + k % 7)) for k in range(14)]
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
print(json.dumps({{"torch": "torch" in sys.modules, "rss_mb": rss / 1024,
                  "faces": [getattr(a, "face_count", None) for a in answers]}}))
"""
    report = json.loads(_run(code, {}))
    assert report["torch"] is False
    assert report["faces"][:2] == [1, 5] and None not in report["faces"]
    assert report["rss_mb"] < 450, report
