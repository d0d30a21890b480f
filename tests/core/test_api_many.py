"""FaceMasker.apply_many and FaceMasker.sticker with the real model on the astronaut."""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from core import imageio
from core.api import FaceMasker
from core.errors import NoFaceFoundError, UnknownMaskError
from core.keypoints import face68
from core.render import sticker
from core.results import Mode

ALL = (1, 2, 3, 4, 5, 6, 7)


@pytest.fixture(scope="module")
def masker() -> FaceMasker:
    from core.keypoints.landmarks import KeypointPredictor

    return FaceMasker(predictor=KeypointPredictor.load())


@pytest.fixture(scope="module")
def jpeg(astronaut: np.ndarray) -> bytes:
    return imageio.encode(astronaut, None, "JPEG")


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGBA"))


def test_all_seven_equal_seven_single_calls_and_read_the_face_once(
    masker: FaceMasker, jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    predict = masker.predictor.predict
    monkeypatch.setattr(
        masker.predictor, "predict", lambda *a, **k: calls.append(1) or predict(*a, **k)
    )
    many = masker.apply_many(jpeg, ALL, Mode.FACES)
    assert len(calls) == 1  # faces found and read once for all seven
    assert [r.face_count for r in many] == [1] * 7
    singles = [masker.apply(jpeg, mask_id, Mode.FACES) for mask_id in ALL]
    for one, single in zip(many, singles, strict=True):
        assert (one.width, one.height, one.format) == (512, 512, "JPEG")
        np.testing.assert_array_equal(one.faces[0].points, single.faces[0].points)
        # the same drawing: JPEG of the same pixels
        assert np.abs(pixels(one.image).astype(int) - pixels(single.image)).max() <= 1
    assert len({r.image for r in many}) == 7  # seven different masks


def test_all_seven_costs_little_more_than_one(masker: FaceMasker, jpeg: bytes) -> None:
    """Printed, not asserted (the machine is shared); lab/bench.py reports it as well."""
    masker.apply_many(jpeg, ALL)  # every mask picture loaded
    started = time.perf_counter()
    masker.apply(jpeg, 1)
    one = time.perf_counter() - started
    started = time.perf_counter()
    masker.apply_many(jpeg, ALL)
    seven = time.perf_counter() - started
    print(f"astronaut 512x512: one mask {one * 1000:.0f} ms, all seven {seven * 1000:.0f} ms "
          f"({seven / one:.2f}x)")  # fmt: skip


def test_unknown_masks_and_no_face_are_typed_errors(masker: FaceMasker, jpeg: bytes) -> None:
    with pytest.raises(UnknownMaskError):
        masker.apply_many(jpeg, (1, 8))
    blank = imageio.encode(np.full((200, 300, 3), 128, np.uint8), None, "PNG")
    with pytest.raises(NoFaceFoundError):
        masker.apply_many(blank, ALL)
    with pytest.raises(NoFaceFoundError):
        masker.sticker(blank, Mode.FACES, 1)
    assert len(masker.apply_many(blank, (2, 3), Mode.WHOLE)) == 2  # the whole photo is a face


def test_sticker_is_the_masked_head_on_transparency(
    masker: FaceMasker, jpeg: bytes, astronaut: np.ndarray
) -> None:
    data = masker.sticker(jpeg, Mode.FACES, 7)
    assert len(data) <= 512 * 1024 and data[8:12] == b"WEBP"
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "WEBP" and picture.mode == "RGBA"
        assert max(picture.size) == 512 and min(picture.size) <= 512
    rgba = pixels(data)
    h, w = rgba.shape[:2]
    alpha = rgba[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # transparent corners
    assert alpha[h // 2, w // 2] == 255  # an opaque face
    # a white outline: just outside the opaque head, the pixels are white and opaque
    ring = (alpha > 200) & (rgba[..., :3].min(axis=2) > 235)
    assert ring.sum() > 0.02 * h * w
    # the masked mouth is in it: the villain respirator is dark where the lips were
    bare = masker.sticker(jpeg, Mode.FACES)  # no mask: the bare face
    mouth = pixels(bare)[int(h * 0.72), w // 2, :3].astype(int)
    masked = rgba[int(h * 0.72), w // 2, :3].astype(int)
    assert np.abs(mouth - masked).sum() > 60


def test_head_outline_covers_jaw_and_forehead(astronaut_points: np.ndarray) -> None:
    polygon = sticker.head_outline(astronaut_points).astype(np.float32)
    for index in [*face68.JAW, *face68.BROWS, *face68.MOUTH]:
        x, y = astronaut_points[index]
        assert cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0, index
    brows_top = astronaut_points[list(face68.BROWS)][:, 1].min()
    assert polygon[:, 1].min() < brows_top - 20  # a forehead above the brows
