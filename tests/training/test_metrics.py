import numpy as np

from core.keypoints.face68 import OUTER_EYE_CORNERS
from training.metrics import interocular, nme, summarize


def _truth() -> np.ndarray:
    pts = np.zeros((68, 2))
    right, left = OUTER_EYE_CORNERS
    pts[right] = (10, 50)
    pts[left] = (50, 50)  # inter-ocular distance 40
    return pts


def test_nme_is_mean_point_error_over_outer_eye_corner_distance():
    truth = _truth()
    assert interocular(truth) == 40
    pred = truth.copy()
    pred[0] += (3, 4)  # error 5 on one point of 68
    assert np.isclose(nme(pred, truth), 5 / 68 / 40)
    pred = truth + (6, 8)  # every point off by 10
    assert np.isclose(nme(pred, truth), 10 / 40)


def test_nme_is_batched():
    truth = np.stack([_truth(), _truth() * 2])
    pred = truth + (0, 4)
    np.testing.assert_allclose(nme(pred, truth), [4 / 40, 4 / 80])


def test_summary_counts_failures_above_thresholds():
    s = summarize(np.array([0.02, 0.04, 0.09, 0.2]))
    assert s["n"] == 4
    assert np.isclose(s["nme_mean"], 0.0875)
    assert np.isclose(s["nme_median"], 0.065)
    assert s["fail_0.08"] == 0.5 and s["fail_0.10"] == 0.25


def test_a_detection_matches_when_its_centre_is_inside_the_keypoint_box():
    from core.detection.base import Detection
    from core.detection.boxes import FaceBox
    from training.metrics import centre_inside, matching_detection

    truth = _truth()  # keypoint box x 0..50, y 0..50
    assert centre_inside((10, 10, 30, 30), truth)
    assert not centre_inside((40, 40, 80, 80), truth)  # centre (60, 60)

    far, near = Detection(FaceBox(110, 110, 30), 1.0), Detection(FaceBox(10, 10, 30, 10.0), 0.5)
    also = Detection(FaceBox(15, 15, 30), 0.9)
    assert matching_detection([far, near, also], truth) is near
    assert matching_detection([far], truth) is None


def test_speed_times_the_seed_and_the_shipped_model_side_by_side(capsys):
    import json

    from lab import speed

    speed.main(["--repeat", "2", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["shipped_backend"] == "onnxruntime-int8"
    assert out["seed_ms"] > 0 and out["shipped_ms"] > 0 and out["shipped_torch_ms"] > 0
    assert out["shipped_float_ms"] > 0  # the float network timed beside the int8 one
    assert out["ratio"] == out["shipped_ms"] / out["seed_ms"]
