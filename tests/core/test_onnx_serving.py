"""Serving without torch: every network from its ONNX file on ONNX Runtime, the keypoints
those of the weights they were made from, ONNX Runtime's telemetry off. (The detectors'
files against their upstream torch reference: tests/lab/test_export_detectors.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from core import runtime
from core.detection.mtcnn import MtcnnFaceDetector
from core.keypoints.landmarks import KeypointPredictor

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_keypoint_release_is_served_from_onnx_files_made_from_its_weights():
    served = KeypointPredictor.load()
    release = served.release
    assert served.backend == "onnxruntime-int8"
    source = json.loads(release.manifest.read_text())["source_weights"]
    pt = release.manifest.with_name(source["file"])
    assert runtime.file_sha256(pt) == source["sha256"]
    for member in release.members:  # each int8 file carries the hash of the .pt it came from
        assert runtime.metadata(member)["source_sha256"] == source["sha256"]


def test_served_keypoints_are_those_of_the_float_model_they_were_made_from():
    """int8 on ONNX Runtime against the release's float weights on torch (training's path):
    the same points within a pixel on a group photo (int8 rounding, docs: model card)."""
    from training.model import load_weights
    from training.predictor import torch_predictor

    served = KeypointPredictor.load()
    model, meta = load_weights(served.release.manifest.with_suffix(".pt"))
    floats = torch_predictor(model, meta, backend="torch")
    image = group_like()
    boxes = [d.box for d in MtcnnFaceDetector().detect(image)]
    ours, theirs = served.predict(image, boxes), floats.predict(image, boxes)
    assert ours.shape == (len(boxes), 68, 2) and len(boxes) >= 5
    assert np.linalg.norm(ours - theirs, axis=-1).mean() < 1.0


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
from core.keypoints.landmarks import KeypointPredictor
from core.detection.mtcnn import load_nets
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
print(json.dumps({{"torch": "torch" in sys.modules, "onnx": "onnx" in sys.modules,
                  "rss_mb": rss / 1024,
                  "faces": [getattr(a, "face_count", None) for a in answers]}}))
"""
    report = json.loads(_run(code, {}))
    assert report["torch"] is False and report["onnx"] is False
    assert report["faces"][:2] == [1, 5] and None not in report["faces"]
    assert report["rss_mb"] < 450, report
