"""Styles (issue 26): a colour, a pattern or an own picture on the cloth, through the one warp.

The astronaut's known landmarks stand in for the model; what is checked is what a person
sees: the cloth takes the colour while its folds stay, valves stay as drawn, an own picture's
colours show under the mask, a mix puts a different mask on each face.
"""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
import pytest
from PIL import Image

from core import imageio
from core.api import FaceMasker, load_picture
from core.detection.base import Detection
from core.detection.boxes import FaceBox
from core.render import style as style_module
from core.render.style import (
    PatternAnimatedError,
    PatternNotAnImageError,
    PatternTooLargeError,
    PatternTooSmallError,
    Style,
    UnknownStyleError,
    cloth_region,
)
from core.results import Mode
from masks import catalog, mix, patterns

from .conftest import KnownFacePredictor


class NoDetector:
    def detect(self, image_rgb):
        return []


@pytest.fixture(scope="module")
def masker(astronaut_points) -> FaceMasker:
    return FaceMasker(predictor=KnownFacePredictor([astronaut_points]), detector=NoDetector())


def masked(masker: FaceMasker, photo: np.ndarray, mask_id=1, style=None) -> np.ndarray:
    rgb = masker.mask_pixels(imageio.encode(photo, None, "PNG"), mask_id, Mode.WHOLE, style)[1]
    return rgb.astype(np.float32)


def hue_degrees(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor((rgb.reshape(-1, 1, 3)).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
    return hsv[:, 0, 0].astype(np.float32) * 360 / 256


def png(rgb: np.ndarray, format: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=format, **kwargs)
    return out.getvalue()


# ----------------------------------------------------------------------------- parsing


def test_parse_reads_hex_names_and_patterns():
    assert Style.parse("#0473e2").colour == pytest.approx((4 / 255, 115 / 255, 226 / 255))
    assert Style.parse("0473E2").colour == Style.parse("#0473e2").colour
    assert Style.parse("navy").colour == patterns.colour(patterns.PALETTE["navy"])
    assert Style.parse(" Stripes ").pattern == "stripes"
    for name in patterns.PATTERN_NAMES:
        assert Style.parse(name).pattern == name
    for bad in ("", "#12345", "#ggg000", "tartan", "navy blue"):
        with pytest.raises(UnknownStyleError) as refused:
            Style.parse(bad)
        assert refused.value.code == "unknown_style"


def test_every_pattern_is_drawn_once_per_size_and_kept():
    for name in patterns.PATTERN_NAMES:
        picture = patterns.draw(name, 160, 120, 125.0)
        assert picture.shape == (120, 160, 3) and picture.dtype == np.float32
        assert 0 <= picture.min() and picture.max() <= 1
        assert picture.std() > 0.02, f"{name} is flat"
        assert patterns.draw(name, 160, 120, 125.0) is picture  # kept, not drawn again
    assert patterns.cached_bytes() >= 8 * 160 * 120 * 3 * 4


# ----------------------------------------------------------------------------- on the cloth


def test_a_colour_changes_the_hue_and_keeps_the_shading(masker, astronaut):
    plain = masked(masker, astronaut)
    red = masked(masker, astronaut, style="red")
    under = np.abs(plain - astronaut.astype(np.float32)).sum(axis=2) > 60  # the mask's pixels
    cloth = under & (np.abs(red - plain).sum(axis=2) > 30)
    assert cloth.sum() > 0.8 * under.sum() > 2000  # nearly all of the surgical mask is cloth
    plain_hue = np.median(hue_degrees(plain[cloth]))
    red_hue = hue_degrees(red[cloth])
    assert 170 < plain_hue < 230  # the surgical mask is light blue
    assert np.mean((red_hue < 25) | (red_hue > 335)) > 0.9  # ... and now red
    # the folds and the face's light and shade: the styled cloth is bright where the plain one is
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    correlation = np.corrcoef(plain[cloth] @ luma, red[cloth] @ luma)[0, 1]
    assert correlation > 0.8


def test_valves_and_filters_keep_their_colour():
    spec = catalog.get(3)
    rgba = cv2.cvtColor(cv2.imread(str(spec.path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    rgba = rgba.astype(np.float32) / 255
    region = cloth_region(rgba, spec.recolour)
    cx, cy, _, _ = spec.recolour.keep[0]
    assert region[round(cy), round(cx)] == 0  # the valve
    assert region[300, 512] > 0.99  # the cup above it
    styled = style_module.restyle_picture(rgba, spec.recolour, Style.parse("red"), 800.0)
    assert np.allclose(styled[round(cy), round(cx)], rgba[round(cy), round(cx)])
    assert styled[300, 512, 0] > 2 * styled[300, 512, 2]  # red where it was white
    assert np.array_equal(styled[..., 3], rgba[..., 3])  # the outline is the mask's own


def test_every_mask_has_cloth_to_style():
    for spec in catalog.masks():
        rgba = cv2.cvtColor(cv2.imread(str(spec.path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
        region = cloth_region(rgba.astype(np.float32) / 255, spec.recolour)
        opaque = (rgba[..., 3] > 128).sum()
        assert 0.35 * opaque < (region > 0.5).sum() < opaque, spec.name


def test_a_styled_picture_is_prepared_once_and_kept(masker):
    first = masker.picture(1, "stripes")
    assert masker.picture(1, Style.parse("stripes")) is first
    assert masker.picture(1) is not first and masker.picture(1, "") is masker.picture(1)
    assert masker.styled_bytes() > 0


def test_an_own_picture_is_printed_on_the_mask(masker, astronaut):
    half = np.zeros((200, 300, 3), np.uint8)
    half[:, :150] = (250, 20, 20)
    half[:, 150:] = (20, 200, 40)
    own = Style.from_picture(png(half))
    assert own.key.startswith("own:") and Style.from_picture(png(half)).key == own.key
    plain = masked(masker, astronaut, 4)
    printed = masked(masker, astronaut, 4, own)
    under = np.abs(printed - plain).sum(axis=2) > 60
    assert under.sum() > 2000
    xs = np.nonzero(under)[1]
    left, right = under.copy(), under.copy()
    left[:, np.median(xs).astype(int) :] = False
    right[:, : np.median(xs).astype(int)] = False
    r_left, g_left = printed[left][:, 0].mean(), printed[left][:, 1].mean()
    r_right, g_right = printed[right][:, 0].mean(), printed[right][:, 1].mean()
    assert r_left > 1.5 * g_left and g_right > 1.5 * r_right  # red on the left, green on the right


def test_pictures_that_cannot_be_printed_say_why(monkeypatch):
    with pytest.raises(PatternNotAnImageError):
        Style.from_picture(b"hello, this is text")
    with pytest.raises(PatternTooSmallError):
        Style.from_picture(png(np.zeros((40, 300, 3), np.uint8)))
    monkeypatch.setattr(style_module, "MAX_PICTURE_PIXELS", 100 * 100)
    with pytest.raises(PatternTooLargeError):
        Style.from_picture(png(np.zeros((120, 120, 3), np.uint8)))
    frames = [Image.new("RGB", (100, 100), colour) for colour in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(PatternAnimatedError):
        Style.from_picture(gif.getvalue())


# ----------------------------------------------------------------------------- a mix


def test_mix_never_repeats_a_face_mask_in_a_row():
    rng = random.Random(5)
    previous: tuple[int, ...] = ()
    for _ in range(200):
        order = mix.choose(previous, rng=rng)
        assert sorted(order) == [1, 2, 3, 4, 5, 6, 7]
        assert all(a != b for a, b in zip(order, previous, strict=False))
        previous = order


def test_a_mix_puts_a_different_mask_on_each_face(astronaut, astronaut_points):
    # two astronauts side by side; the detector and the points are known
    photo = np.hstack([astronaut, astronaut])
    right = astronaut_points + np.float32([512, 0])
    face = FaceBox(223.5, 130.0, 150.0)

    class TwoFaces:
        def detect(self, image_rgb):
            moved = FaceBox(face.cx + 512, face.cy, face.side)
            return [Detection(face, 5.0), Detection(moved, 5.0)]

    masker = FaceMasker(KnownFacePredictor([astronaut_points, right]), TwoFaces(), gate=None)
    jpeg = imageio.encode(photo, None, "PNG")
    one = masker.mask_pixels(jpeg, (4, 2), Mode.FACES)[1]
    black = masker.mask_pixels(jpeg, 4, Mode.FACES)[1]
    white = masker.mask_pixels(jpeg, 2, Mode.FACES)[1]
    assert np.array_equal(one[:, :512], black[:, :512])  # the left face: the first mask
    assert np.array_equal(one[:, 512:], white[:, 512:])  # the right one: the second
    assert not np.array_equal(black[:, 512:], white[:, 512:])


def test_load_picture_in_a_style_keeps_the_outline():
    spec = catalog.get(6)
    plain, styled = load_picture(spec), load_picture(spec, Style.parse("camo"))
    assert np.array_equal(plain.levels[0][..., 3], styled.levels[0][..., 3])
    assert not np.allclose(plain.levels[0][..., :3], styled.levels[0][..., :3])
