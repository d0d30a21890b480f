"""The one metric: NME, used for selection, reports and benchmarks alike.

NME = mean over the 68 points of the Euclidean error, divided by the distance between
the ground truth's outer eye corners (points 36 and 45, the inter-ocular distance).
"""

from __future__ import annotations

import numpy as np

LEFT_EYE_CORNER, RIGHT_EYE_CORNER = 36, 45

REGIONS: dict[str, slice] = {
    "jaw": slice(0, 17),
    "brows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "mouth": slice(48, 68),
}


def interocular(truth: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (...) distance between points 36 and 45."""
    return np.linalg.norm(truth[..., RIGHT_EYE_CORNER, :] - truth[..., LEFT_EYE_CORNER, :], axis=-1)


def point_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(..., 68) per-point error divided by the inter-ocular distance."""
    return np.linalg.norm(pred - truth, axis=-1) / interocular(truth)[..., None]


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(..., 68, 2) prediction and ground truth -> (...) normalised mean error."""
    return point_errors(pred, truth).mean(-1)


def centre_inside(box: tuple[float, float, float, float], truth: np.ndarray) -> bool:
    """The detector protocol's match: the box's centre lies inside the truth's keypoint box."""
    lo, hi = truth.min(0), truth.max(0)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(lo[0] <= cx <= hi[0] and lo[1] <= cy <= hi[1])


def matching_box(boxes, truth: np.ndarray) -> tuple[float, float, float, float] | None:
    """The first of the detector's boxes that matches the ground-truth face, if any."""
    return next((box for box in boxes if centre_inside(box, truth)), None)


def matching_detection(detections, truth: np.ndarray):
    """The first detection (anything with a ``box``) that matches the ground-truth face."""
    return next((d for d in detections if centre_inside(d.box, truth)), None)


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
