"""``facemask apply`` on videos: mixed with photos in one run, GIF and WebM out, no bot limits."""

from __future__ import annotations

import json

import av
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
