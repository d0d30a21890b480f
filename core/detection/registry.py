"""The detectors by name: a new detector is one new file in core/detection/ plus one line here."""

from __future__ import annotations

from core.detection.base import FaceDetector
from core.detection.centerface import CenterFaceDetector
from core.detection.combined import MtcnnAndCenterFace, MtcnnThenCenterFace
from core.detection.haar import HaarFaceDetector
from core.detection.mtcnn import MtcnnFaceDetector
from core.settings import core_settings

DETECTORS = {
    "mtcnn": MtcnnFaceDetector,
    "haar": HaarFaceDetector,
    "centerface": CenterFaceDetector,
    "mtcnn-then-centerface": MtcnnThenCenterFace,
    "mtcnn-and-centerface": MtcnnAndCenterFace,
}


#: every name :func:`default_detector` takes ("auto" is the product's choice)
DETECTOR_NAMES = ("auto", *sorted(DETECTORS))


def default_detector(name: str | None = None) -> FaceDetector:
    """The detector called ``name``, else the settings' (``FACEMASK_DETECTOR``), else "auto".

    "auto" is MTCNN with CenterFace as its fallback (:class:`MtcnnThenCenterFace`). Their
    weights ship in core/weights; a missing or damaged file is a
    :class:`core.errors.WeightsError` that names it.
    """
    chosen = name or core_settings().detector
    if chosen == "auto":
        return MtcnnThenCenterFace()
    if chosen not in DETECTORS:
        known = ", ".join(DETECTOR_NAMES)
        raise ValueError(f"unknown face detector {chosen!r}: choose one of {known}")
    return DETECTORS[chosen]()
