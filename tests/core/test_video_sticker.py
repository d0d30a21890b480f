"""A video's largest face as a Telegram video sticker (core.video.sticker), read back as a
Telegram client reads it: VP9 with its alpha plane (libvpx's decoder), 512 px, <= 3 s,
<= 30 fps, no sound, <= 256 KB; the head opaque and masked, the corners transparent."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from core.api import FaceMasker
from core.errors import NoFaceInVideoError
from core.results import MaskedVideo
from core.video import sticker
from tests.support import clips


@pytest.fixture(scope="module")
def masker() -> FaceMasker:
    return FaceMasker()


@pytest.fixture(scope="module")
def note() -> bytes:
    """A round video note's square: 4 s at 30 fps, with sound (the sticker has none)."""
    return clips.encode(clips.face_frames(120, (320, 320)), fps=30, audio=True)


@pytest.fixture(scope="module")
def made(masker, note) -> MaskedVideo:
    return masker.video_sticker(note, 1)


def decoded(data: bytes) -> tuple[list[np.ndarray], dict]:
    """Every frame as RGBA through libvpx (FFmpeg's own VP9 decoder drops the alpha), and the
    container's facts."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        facts = {
            "format": container.format.name,
            "codec": video.codec_context.name,
            "audio": len(container.streams.audio),
            "duration_s": container.duration / av.time_base,
            "alpha_mode": video.metadata.get("alpha_mode"),
        }
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames = [
            frame.to_ndarray(format="rgba")
            for packet in container.demux(video)
            for frame in decoder.decode(packet)
        ]
    return frames, facts


def test_a_telegram_video_sticker_webm_vp9_512_px_3_s_no_sound_within_256_kb(made):
    frames, facts = decoded(made.data)
    assert "webm" in facts["format"] and facts["codec"] == "vp9" and facts["audio"] == 0
    assert facts["alpha_mode"] == "1"
    assert len(made.data) <= sticker.MAX_BYTES
    assert facts["duration_s"] <= 3.0 and made.duration_s <= 3.0
    assert len(frames) == made.frames == 90 and made.fps <= 30  # 30 fps, the first 3 s
    height, width = frames[0].shape[:2]
    assert (width, height) == (made.width, made.height)
    assert max(width, height) == 512 and min(width, height) <= 512 and made.kind == "sticker"


def test_the_corners_are_transparent_and_the_masked_head_opaque(made):
    frames, _ = decoded(made.data)
    for rgba in frames[::15]:
        alpha = rgba[..., 3]
        h, w = alpha.shape
        corners = [alpha[:8, :8], alpha[:8, -8:], alpha[-8:, :8], alpha[-8:, -8:]]
        assert max(int(c.max()) for c in corners) <= 8
        assert 0.2 < (alpha > 128).mean() < 0.9  # a head with an outline, not the whole frame
        ys, xs = np.nonzero(alpha > 128)  # the head moves inside the sticker: find it
        x, y0, y1 = int(xs.mean()), int(ys.min()), int(ys.max())
        y = (y0 + y1) // 2
        assert alpha[y - 10 : y + 10, x - 10 : x + 10].min() >= 240
        # the surgical mask's light blue over the lower face (skin is redder than blue)
        low = y0 + int((y1 - y0) * 0.72)
        below = rgba[low : low + 20, x - 20 : x + 20, :3].astype(int)
        assert (below[..., 2] - below[..., 0]).mean() > 25


def test_a_60_fps_video_is_thinned_to_30(masker):
    clip = clips.encode(clips.face_frames(60, (240, 180)), fps=60)  # 1 s
    made = masker.video_sticker(clip, None)
    assert made.frames == 30 and made.fps <= 30.0


def test_over_256_kb_it_is_encoded_again_at_a_lower_bitrate(masker, note, monkeypatch, caplog):
    monkeypatch.setattr(sticker, "FIRST_SHARE", 4.0)  # the first try far over the limit
    with caplog.at_level("INFO", logger="core.video.sticker"):
        made = masker.video_sticker(note, 2)
    assert len(made.data) <= sticker.MAX_BYTES
    assert any("encoding again" in record.getMessage() for record in caplog.records)


def test_no_face_in_any_frame_is_the_typed_error(masker):
    ramp = np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (120, 1, 3))
    with pytest.raises(NoFaceInVideoError):
        masker.video_sticker(clips.encode([ramp] * 10), 1)


def test_frames_whose_half_height_is_odd_convert_exactly():
    rgb = np.zeros((410, 512, 3), np.uint8)
    rgb[..., 2], rgb[:, :100, 0] = 200, 180
    alpha = np.zeros((410, 512), np.uint8)
    alpha[100:300] = 255
    back = sticker._yuva(rgb, alpha).to_ndarray(format="rgba").astype(int)
    assert np.abs(back[..., 3] - alpha).max() == 0
    assert np.abs(back[5:-5, 110:-5, :3] - rgb[5:-5, 110:-5]).max() <= 3
