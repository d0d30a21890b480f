"""Issue 26's video sticker on the wire: a video job's ``sticker`` flag as an optional tail, and
its answer, a MaskedVideo of kind "sticker", both read back as written."""

from __future__ import annotations

import msgpack
import pytest

from core.results import MaskedVideo, Mode
from serving import wire
from serving.jobs import ARQ_VIDEO_FUNCTION, VideoJob


def envelope(job: object) -> dict:
    return {"t": 1, "f": ARQ_VIDEO_FUNCTION, "a": (job,), "k": {}, "et": 1}


def job_fields(message: bytes) -> list:
    body = msgpack.Unpacker()
    body.feed(message)
    body.unpack()  # the header
    return msgpack.unpackb(body.unpack()["a"][0].data)


def test_a_video_sticker_job_crosses_as_itself_and_a_plain_video_job_as_before() -> None:
    job = VideoJob(b"mp4", 4, Mode.WHOLE, "video_note", 9.5, sticker=True)
    message = wire.serialize(envelope(job))
    assert wire.deserialize_job(message)["a"] == [job]
    assert job_fields(message)[5:] == [True] and "as a sticker" in repr(job)

    plain = VideoJob(b"mp4", 4, Mode.FACES, "animation", 2.0)
    message = wire.serialize(envelope(plain))
    assert wire.deserialize_job(message)["a"] == [plain]
    assert len(job_fields(message)) == 5  # what an older worker reads
    assert not wire.deserialize_job(message)["a"][0].sticker


def test_the_sticker_answer_reads_back_as_the_same_masked_video() -> None:
    made = MaskedVideo(b"\x1aE\xdf\xa3webm", 512, 416, 30.0, 90, 3.0, False, 1.0, 900.0,
                       False, "sticker", True)  # fmt: skip
    result = {"t": 1, "f": ARQ_VIDEO_FUNCTION, "a": [], "k": {}, "et": 1, "s": True, "r": made,
              "st": 1, "ft": 2, "q": "arq:queue"}  # fmt: skip
    assert wire.read_result(wire.serialize(result)) == (True, made)


def test_a_sticker_flag_that_is_not_true_or_false_is_refused() -> None:
    fields = [b"mp4", 1, "faces", "video", 3.0, "yes"]
    ext = msgpack.ExtType(4, msgpack.packb(fields, use_bin_type=True))
    header = msgpack.packb({"wire": wire.FORMAT_NAME, "v": wire.FORMAT_VERSION})
    body = msgpack.packb(envelope(ext), use_bin_type=True)
    with pytest.raises(wire.WireFormatError):
        wire.deserialize_job(header + body)


class StickerMasker:
    """Records which of the masker's video methods a job reached."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def video_sticker(self, source, mask_id, mode, *, progress=None, cancel=None):
        self.calls.append("video_sticker")
        progress(0.5)
        return MaskedVideo(b"webm", 512, 512, 30.0, 90, 3.0, False, 1.0, 1.0, kind="sticker")

    def apply_video(self, *args, **kwargs):
        self.calls.append("apply_video")
        return MaskedVideo(b"mp4", 64, 64, 30.0, 9, 0.3, False, 1.0, 1.0)


def test_a_sticker_job_is_made_by_video_sticker_with_progress():
    from serving.pool import run_mask_job

    masker, seen = StickerMasker(), []
    job = VideoJob(b"mp4", 1, Mode.FACES, "video_note", 3.0, sticker=True)
    made = run_mask_job(masker, job, seen.append)
    assert made.kind == "sticker" and masker.calls == ["video_sticker"] and seen == [0.5]
    run_mask_job(masker, VideoJob(b"mp4", 1))
    assert masker.calls == ["video_sticker", "apply_video"]
