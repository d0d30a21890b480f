"""``facemask apply`` on videos: mixed with photos in one run, GIF and WebM out, no bot limits."""

from __future__ import annotations

import json

import av
import numpy as np
from PIL import Image

from .test_cli import facemask
from .test_video import encode, face_frames


def test_a_photo_and_a_clip_in_one_run_as_webm_and_gif(tmp_path, astronaut):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(encode(face_frames(8), audio="aac"))
    photo = tmp_path / "p.jpg"
    Image.fromarray(astronaut).resize((200, 200)).save(photo)
    report = tmp_path / "r.jsonl"
    code, _, err = facemask("apply", str(clip), str(photo), "-o", str(tmp_path / "out"),
                            "--format", "webm", "--report", str(report), "--jobs", "1")  # fmt: skip
    assert code == 0, err
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["kind"] for r in lines] == ["video", "photo"]
    with av.open(str(tmp_path / "out" / "clip.webm")) as webm:
        assert webm.streams.video[0].codec_context.name == "vp9"
        assert len(webm.streams.audio) == 1  # the sound, as Opus
    assert Image.open(tmp_path / "out" / "p.jpg").format == "JPEG"  # --format is for videos
    code, _, err = facemask(
        "apply", str(clip), "-o", str(tmp_path / "c.gif"), "--max-seconds", "60"
    )
    assert code == 0, err
    assert getattr(Image.open(tmp_path / "c.gif"), "n_frames", 1) == 8
    code, _, err = facemask(
        "apply", str(clip), "-o", str(tmp_path / "c2.gif"), "--max-seconds", "0.1"
    )
    assert code == 1 and "longer than --max-seconds" in err


def _frames(path) -> np.ndarray:
    with av.open(str(path)) as video:
        return np.stack([f.to_ndarray(format="rgb24") for f in video.decode(video=0)])


def test_a_colour_and_a_pattern_reach_every_frame_of_a_video(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(encode(face_frames(6)))
    outs = {}
    for name, style in (
        ("plain", []),
        ("red", ["--color", "red"]),
        ("dots", ["--pattern", "dots"]),
    ):
        outs[name] = tmp_path / f"{name}.mp4"
        code, _, err = facemask("apply", str(clip), "-o", str(outs[name]), "--mask", "1", *style)
        assert code == 0, err
    plain, red, dots = (_frames(outs[n]) for n in ("plain", "red", "dots"))
    assert plain.shape == red.shape == dots.shape and len(plain) == 6
    for frame in range(len(plain)):
        # the mask's cloth: where the red mask differs from the plain (light blue) one
        cloth = np.abs(red[frame].astype(int) - plain[frame]).sum(axis=2) > 60
        assert cloth.sum() > 500, frame  # every frame's face wears it
        r, g, b = red[frame][cloth].astype(float).mean(axis=0)
        pr, pg, pb = plain[frame][cloth].astype(float).mean(axis=0)
        assert r > b + 40 and pb > pr, (frame, (r, g, b), (pr, pg, pb))
        # the pattern: the same cloth, spotted (its pixels far less even than the plain mask's)
        assert dots[frame][cloth].std(axis=0).mean() > 1.5 * plain[frame][cloth].std(axis=0).mean()


def test_an_unknown_colour_for_a_video_is_said_before_any_work(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(encode(face_frames(3)))
    code, _, err = facemask("apply", str(clip), "-o", str(tmp_path / "o.mp4"), "--color", "nope")
    assert code != 0 and "unknown --color or --pattern" in err
    assert not (tmp_path / "o.mp4").exists()
