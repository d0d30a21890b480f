"""Issue 26's job fields on the wire: a style, an own picture and a mix, as an optional tail."""

from __future__ import annotations

import msgpack
import pytest

from core.results import Mode
from serving import wire
from serving.jobs import ARQ_FUNCTION, ARQ_STICKER_FUNCTION, MaskJob, StickerJob


def envelope(function: str, job: object) -> dict:
    return {"t": 1, "f": function, "a": (job,), "k": {}, "et": 1}


@pytest.mark.parametrize(
    ("function", "job"),
    [
        (ARQ_FUNCTION, MaskJob(b"jpeg", 3, Mode.FACES, "navy")),
        (ARQ_FUNCTION, MaskJob(b"jpeg", 3, Mode.WHOLE, "own", b"\x89PNG picture")),
        (ARQ_FUNCTION, MaskJob(b"jpeg", 5, Mode.FACES, mix=(5, 2, 7, 1, 3, 6, 4))),
        (ARQ_STICKER_FUNCTION, StickerJob(b"jpeg", 7, Mode.FACES, "#0473e2")),
    ],
)
def test_styled_jobs_cross_as_themselves(function: str, job: object) -> None:
    assert wire.deserialize_job(wire.serialize(envelope(function, job)))["a"] == [job]


def test_a_plain_job_is_written_as_before_so_an_older_worker_reads_it() -> None:
    message = wire.serialize(envelope(ARQ_FUNCTION, MaskJob(b"jpeg", 3)))
    body = msgpack.Unpacker()
    body.feed(message)
    body.unpack()  # the header
    job = body.unpack()["a"][0]
    assert len(msgpack.unpackb(job.data)) == 3  # the three fields of the first format
    assert "navy" not in repr(MaskJob(b"jpeg", 3)) and "navy" in repr(
        MaskJob(b"j", 3, style="navy")
    )
    assert "secret" not in repr(MaskJob(b"j", 3, style="own", pattern=b"secret"))


def test_a_styled_job_with_bad_fields_is_refused() -> None:
    header = msgpack.packb({"wire": wire.FORMAT_NAME, "v": wire.FORMAT_VERSION})
    for fields in (
        [b"x", 3, "faces", "navy"],  # a tail cut short
        [b"x", 3, "faces", 7, b"", []],  # a style is text
        [b"x", 3, "faces", "x" * 100, b"", []],  # no style id is that long
        [b"x", 3, "faces", "navy", b"", [True]],  # a mix holds mask ids
    ):
        job = msgpack.ExtType(1, msgpack.packb(fields))
        message = header + msgpack.packb({**envelope(ARQ_FUNCTION, None), "a": [job]})
        with pytest.raises(wire.WireFormatError):
            wire.deserialize_job(message)
