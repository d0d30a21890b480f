"""The one metric: NME, used for selection, reports and benchmarks alike.

NME = mean over the 68 points of the Euclidean error, divided by the distance between
the ground truth's outer eye corners (points 36 and 45, the inter-ocular distance).
"""

from __future__ import annotations

import numpy as np

from core.keypoints.face68 import OUTER_EYE_CORNERS


def interocular(truth: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (...) distance between the outer eye corners (points 36 and 45)."""
    right, left = OUTER_EYE_CORNERS
    return np.linalg.norm(truth[..., left, :] - truth[..., right, :], axis=-1)


def point_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(..., 68) per-point error divided by the inter-ocular distance."""
    return np.linalg.norm(pred - truth, axis=-1) / interocular(truth)[..., None]


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(..., 68, 2) prediction and ground truth -> (...) normalised mean error."""
    return point_errors(pred, truth).mean(-1)


def point_inside(x: float, y: float, truth: np.ndarray) -> bool:
    """Whether (x, y) lies inside the truth's keypoint box."""
    lo, hi = truth.min(0), truth.max(0)
    return bool(lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1])


def centre_inside(box: tuple[float, float, float, float], truth: np.ndarray) -> bool:
    """A raw (x0, y0, x1, y1) box's match: its centre lies inside the truth's keypoint box."""
    return point_inside((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, truth)


def matching_detection(detections, truth: np.ndarray):
    """The detector protocol's match: the first detection (``core.detection.base.Detection``) whose
    face box's centre lies inside the ground truth's keypoint box, if any."""
    return next((d for d in detections if point_inside(d.box.cx, d.box.cy, truth)), None)


def summarize(errors: np.ndarray, region_errors: dict[str, np.ndarray] | None = None) -> dict:
    """Mean, median and failure rates (NME above 0.08 and 0.10) of per-face NMEs."""
    errors = np.asarray(errors, float)
    out = {
        "n": int(errors.size),
        "nme_mean": float(errors.mean()) if errors.size else float("nan"),
        "nme_median": float(np.median(errors)) if errors.size else float("nan"),
        "fail_0.08": float((errors > 0.08).mean()) if errors.size else float("nan"),
        "fail_0.10": float((errors > 0.10).mean()) if errors.size else float("nan"),
    }
    if region_errors:
        out["regions"] = {k: float(np.mean(v)) for k, v in region_errors.items()}
    return out
