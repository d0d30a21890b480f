"""Floors on a detector's scores and face sizes (``facemask apply --threshold``,
``--min-face``): they hold wherever the product's search looks, and MTCNN does not search
under a size floor."""

from __future__ import annotations

import numpy as np

from core.detection.base import Detection, same_face
from core.detection.boxes import CROP_SCALE, box_around
from core.detection.combined import MtcnnThenCenterFace
from core.detection.limits import Limited
from core.detection.mtcnn import MtcnnFaceDetector
from core.detection.turns import anything_at_all, detect_with_turns


class Fixed:
    """A detector that reports faces whose 68-point box is ``share`` of the image's width
    (one at its centre, scored ``score``), and has a ``fallback``."""

    def __init__(self, share: float = 0.0, score: float = 0.9, fallback=None) -> None:
        self.share, self.score, self.fallback = share, score, fallback
        self.sizes: list[int] = []

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        h, w = image_rgb.shape[:2]
        self.sizes.append(w)
        if not self.share:
            return []
        return [Detection(box_around(w / 2, h / 2, self.share * w), self.score)]


def test_the_fallback_is_limited_as_the_detector_is():
    image = np.zeros((400, 400, 3), np.uint8)
    fallback = Fixed(share=0.25, score=0.6)  # a 100-px face
    limited = Limited(Fixed(fallback=fallback), None, 50)
    assert len(limited.fallback.detect(image)) == 1
    assert Limited(Fixed(fallback=fallback), None, 150).fallback.detect(image) == []
    assert Limited(Fixed(fallback=fallback), 0.7).fallback.detect(image) == []
    assert Limited(Fixed()).fallback is None


def test_a_limited_search_asks_the_fallback_where_the_detector_finds_nothing():
    image = np.full((300, 300, 3), 128, np.uint8)
    found = detect_with_turns(Limited(Fixed(fallback=Fixed(share=0.3)), None, 40), image)
    assert len(found) == 1 and abs(found[0].box.side / CROP_SCALE - 90) < 1e-6
    assert detect_with_turns(Limited(Fixed(fallback=Fixed(share=0.3)), None, 100), image) == []


def test_the_quick_look_at_a_big_photo_keeps_the_floor_in_the_photos_pixels():
    # a 1280-px photo is looked at quickly at 640 px; its 128-px face is 64 px there, above
    # a floor of 100 px of the photo (50 of the copy)
    photo = np.zeros((960, 1280, 3), np.uint8)
    detector = Fixed(share=0.1)
    assert anything_at_all(Limited(detector, None, 100), None, photo)
    assert max(detector.sizes) <= 640 * 1.5  # the copy, turned: not the photo
    assert not anything_at_all(Limited(Fixed(share=0.1), None, 140), None, photo)


def test_mtcnn_leaves_out_the_pyramid_under_the_floor_and_finds_the_same_face(astronaut):
    calls = []
    detector = MtcnnFaceDetector()
    pnet = detector._mtcnn.pnet
    detector._mtcnn.pnet = lambda x: (calls.append(x.shape[1:3]), pnet(x))[1]
    try:
        everything = detector.detect(astronaut)
        levels = len(calls)
        calls.clear()
        side = everything[0].box.side / CROP_SCALE  # her face: ~100 px
        floored = detector.no_smaller_than(0.8 * side).detect(astronaut)
        assert len(calls) <= levels - 2  # the finest levels, the costliest, left out
        # the same face; its box from the levels left (the finer ones scored it a little
        # surer, and their box won): on group photos 92-98% of boxes are the very same
        assert len(floored) == 1 and same_face(floored[0], everything[0])
        assert abs(floored[0].box.side / everything[0].box.side - 1) < 0.15
        calls.clear()
        assert detector.no_smaller_than(3 * side).detect(astronaut) == []
    finally:
        detector._mtcnn.pnet = pnet
    assert detector.smallest == 0.0  # the floored copies share its networks, not its floor


def test_a_size_floor_reaches_mtcnn_inside_the_product_detector(astronaut):
    limited = Limited(MtcnnThenCenterFace(), None, 60)
    assert limited.searching.first.smallest == 60
    assert limited.detector.first.smallest == 0.0  # the caller's detector is left as it was
    assert limited.scaled(0.5).searching.first.smallest == 30
    assert limited.fallback.detector is limited.detector.fallback
    assert len(limited.detect(astronaut)) == 1
