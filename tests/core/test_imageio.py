"""Decoding whatever a person may send, and encoding back in the same format family."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from core import imageio
from core.errors import (
    EmptyImageError,
    FaceMaskError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
)


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming ``width`` x ``height``, with almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def jpeg(astronaut) -> bytes:
    return encoded(Image.fromarray(astronaut), "JPEG", quality=95)


def test_jpeg_decodes_to_rgb(jpeg, astronaut):
    d = imageio.decode(jpeg)
    assert d.rgb.shape == astronaut.shape and d.rgb.dtype == np.uint8
    assert d.format == "JPEG" and d.alpha is None
    assert np.abs(d.rgb.astype(int) - astronaut).mean() < 3


def test_path_bytes_and_array_agree(tmp_path, astronaut):
    png = encoded(Image.fromarray(astronaut), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(png)
    for source in (png, path, str(path), bytearray(png), astronaut):
        assert np.array_equal(imageio.decode(source).rgb, astronaut)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyImageError),
        (b"GIF89a but then nothing", TruncatedImageError),
        (b"%PDF-1.4 this is a document", NotAnImageError),
        ("\u00e9t\u00e9 \u2013 plain text".encode(), NotAnImageError),
    ],
)
def test_bad_bytes_give_typed_errors(data, error):
    with pytest.raises(error) as caught:
        imageio.decode(data)
    assert isinstance(caught.value, FaceMaskError)
    assert str(caught.value).endswith(".") and "Traceback" not in str(caught.value)


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_truncated_jpeg_and_png(astronaut, keep):
    for fmt in ("JPEG", "PNG"):
        data = encoded(Image.fromarray(astronaut), fmt)
        with pytest.raises(TruncatedImageError):
            imageio.decode(data[: int(len(data) * keep)])


def test_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(NotAnImageError):
        imageio.decode(tmp_path / "nope.jpg")


def test_decompression_bomb_refused_before_decoding():
    # The file holds 4 KB of pixel data: decoding it would fail as truncated, so only a
    # check of the header's size can give ImageTooLargeError, and it does so at once.
    for w, h in ((100_000, 100_000), (7_000, 7_000), (60_000, 1_000)):
        started = time.perf_counter()
        with pytest.raises(ImageTooLargeError) as caught:
            imageio.decode(png_header_only(w, h))
        assert time.perf_counter() - started < 0.5
        assert "megapixels" in str(caught.value)


def test_tiny_images_are_refused(astronaut):
    for w, h in ((20, 20), (500, 8), (1, 1)):
        with pytest.raises(ImageTooSmallError):
            imageio.decode(encoded(Image.fromarray(astronaut[:h, :w]), "PNG"))
    with pytest.raises(ImageTooSmallError):
        imageio.decode(astronaut[:10, :10])


def test_exif_orientation_is_honoured(astronaut):
    img = Image.fromarray(astronaut[:, :300])  # 300 wide, 512 high
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    d = imageio.decode(encoded(img, "JPEG", quality=95, exif=exif))
    assert d.rgb.shape[:2] == (300, 512)
    upright = np.rot90(astronaut[:, :300], k=-1)
    assert np.abs(d.rgb.astype(int) - upright).mean() < 4


def test_cmyk_jpeg(astronaut):
    d = imageio.decode(encoded(Image.fromarray(astronaut).convert("CMYK"), "JPEG", quality=95))
    assert d.rgb.shape == astronaut.shape and d.format == "JPEG"
    assert np.abs(d.rgb.astype(int) - astronaut).mean() < 8


def test_greyscale_and_16_bit(astronaut):
    grey = astronaut.mean(axis=2).astype(np.uint8)
    d = imageio.decode(encoded(Image.fromarray(grey), "PNG"))
    assert d.rgb.shape == astronaut.shape and np.array_equal(d.rgb[..., 1], grey)
    deep = Image.fromarray(grey.astype(np.uint16) * 257)
    d16 = imageio.decode(encoded(deep, "PNG"))
    assert d16.rgb.dtype == np.uint8 and np.abs(d16.rgb[..., 0].astype(int) - grey).max() <= 1
    d_arr = imageio.decode(grey.astype(np.uint16) * 257)
    assert np.abs(d_arr.rgb[..., 2].astype(int) - grey).max() <= 1


def test_alpha_is_kept(astronaut):
    alpha = np.tile(np.linspace(0, 255, 512).astype(np.uint8), (512, 1))
    d = imageio.decode(encoded(Image.fromarray(np.dstack([astronaut, alpha])), "PNG"))
    assert d.format == "PNG" and np.array_equal(d.alpha, alpha)
    out = Image.open(io.BytesIO(imageio.encode_like(d, d.rgb)))
    assert out.format == "PNG" and out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_animated_gif_gives_its_first_frame(astronaut):
    first = Image.fromarray(astronaut).quantize(64)
    second = Image.fromarray(255 - astronaut).quantize(64)
    data = encoded(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    d = imageio.decode(data)
    assert d.source_format == "GIF" and d.format == "PNG"
    assert np.abs(d.rgb.astype(int) - astronaut).mean() < 12  # the first frame, not the inverse


def test_encode_keeps_the_format_family(astronaut):
    for fmt, family in (("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "WEBP"), ("BMP", "PNG")):
        d = imageio.decode(encoded(Image.fromarray(astronaut), fmt))
        assert d.format == family
        assert Image.open(io.BytesIO(imageio.encode_like(d, d.rgb))).format == family


def test_bad_arrays():
    with pytest.raises(NotAnImageError):
        imageio.decode(np.zeros((64, 64, 2), np.uint8))
    with pytest.raises(NotAnImageError):
        imageio.decode(np.zeros((0, 0, 3), np.uint8))
    d = imageio.decode(np.full((64, 64), 0.5, np.float32))
    assert d.rgb.shape == (64, 64, 3) and d.rgb[0, 0, 0] == 128


def test_damaged_files_only_ever_raise_typed_errors(astronaut):
    """Hundreds of randomly damaged files: each decodes or raises a FaceMaskError, nothing else."""
    small = Image.fromarray(astronaut[::4, ::4])
    sources = [encoded(small, fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")]
    rng = np.random.default_rng(0)
    for n in range(300):
        data = bytearray(sources[n % len(sources)])
        for _ in range(rng.integers(1, 20)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        if rng.random() < 0.3:
            data = data[: rng.integers(1, len(data))]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow warns about the damage it skips
                imageio.decode(bytes(data))
        except FaceMaskError:
            pass
