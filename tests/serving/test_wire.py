"""The wire format (serving.wire): every job and answer crosses as itself, and anything else,
random bytes included, is refused with a WireFormatError, never run, never misread."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import NoFaceFoundError
from core.results import Face, MaskedPhoto, MaskedVideo, Mode
from serving import wire
from serving.jobs import (
    ARQ_FUNCTION,
    ARQ_MANY_FUNCTION,
    ARQ_STICKER_FUNCTION,
    ARQ_VIDEO_FUNCTION,
    JobFailure,
    ManyMasksJob,
    MaskJob,
    Progress,
    StickerJob,
    VideoJob,
    read_result,
)

POINTS = np.arange(136, dtype=np.float32).reshape(68, 2) / 3
PHOTO = MaskedPhoto(b"\xff\xd8jpeg", "JPEG", 640, 480, (Face((1, 2.5, 3, 4), POINTS),), 12.5)
VIDEO = MaskedVideo(b"mp4", 320, 240, 25.0, 50, 2.0, True, 0.9, 800.0, True, "video_note", False)
JOBS = {
    ARQ_FUNCTION: MaskJob(b"\xff\xd8photo", 3, Mode.WHOLE),
    ARQ_MANY_FUNCTION: ManyMasksJob(b"\x89PNG", (1, 2, 7)),
    ARQ_STICKER_FUNCTION: StickerJob(b"RIFF", 7, Mode.FACES),
    ARQ_VIDEO_FUNCTION: VideoJob(b"\x00\x00\x00 ftyp", 2, Mode.WHOLE, "animation", 12.5),
}


def job_envelope(function: str = ARQ_FUNCTION, job: object = None) -> dict:
    """What arq hands its serializer for a job (arq.jobs.serialize_job)."""
    return {"t": 1, "f": function, "a": (job or JOBS[function],), "k": {}, "et": 1_700_000}


def result_envelope(result: object, success: bool = True) -> dict:
    """... and for a result (arq.jobs.serialize_result)."""
    return {
        **job_envelope(), "s": success, "r": result, "st": 1, "ft": 2, "q": "arq:queue",
        "id": "abc",
    }  # fmt: skip


def with_version(message: bytes, version: object) -> bytes:
    """``message`` as a release speaking format ``version`` would have written it."""
    header = msgpack.packb({"wire": wire.FORMAT_NAME, "v": wire.FORMAT_VERSION})
    assert message.startswith(header)
    return msgpack.packb({"wire": wire.FORMAT_NAME, "v": version}) + message[len(header) :]


@pytest.mark.parametrize("function", sorted(JOBS))
def test_every_job_crosses_as_itself(function: str) -> None:
    envelope = wire.deserialize_job(wire.serialize(job_envelope(function)))
    assert envelope["a"] == [JOBS[function]] and envelope["f"] == function
    assert type(envelope["a"][0].mode) is Mode


@pytest.mark.parametrize(
    "answer",
    [PHOTO, [PHOTO, PHOTO], b"RIFF....WEBP", VIDEO, JobFailure.of(NoFaceFoundError())],
    ids=["photo", "photos", "sticker", "video", "failure"],
)
def test_every_answer_crosses_as_itself(answer: object) -> None:
    success, back = wire.read_result(wire.serialize(result_envelope(answer)))
    assert success
    if isinstance(answer, MaskedPhoto | list):
        photos = answer if isinstance(answer, list) else [answer]
        got = back if isinstance(back, list) else [back]
        for mine, theirs in zip(photos, got, strict=True):
            assert (theirs.image, theirs.format, theirs.width, theirs.height, theirs.ms) == (
                mine.image, mine.format, mine.width, mine.height, mine.ms,
            )  # fmt: skip
            assert theirs.faces[0].box == mine.faces[0].box
            np.testing.assert_array_equal(theirs.faces[0].points, POINTS)
        assert read_result(got[0]).face_count == 1
    else:
        assert back == answer


def test_progress_and_failures_arq_records_cross_as_names_and_sentences() -> None:
    assert wire.read_result(wire.serialize(result_envelope(Progress(0.25)))) == (
        True, Progress(0.25),
    )  # fmt: skip
    success, error = wire.read_result(wire.serialize(result_envelope(TimeoutError("slow"), False)))
    assert not success and isinstance(error, wire.RemoteError)
    assert (error.name, str(error)) == ("TimeoutError", "slow")


def test_a_result_does_not_carry_the_photo_back() -> None:
    message = wire.serialize(result_envelope(PHOTO))
    assert b"\xff\xd8photo" not in message and b"\xff\xd8jpeg" in message


def test_another_version_is_refused_by_name() -> None:
    message = with_version(wire.serialize(job_envelope()), wire.FORMAT_VERSION + 1)
    with pytest.raises(wire.WireVersionError) as refused:
        wire.deserialize_job(message)
    assert refused.value.version == wire.FORMAT_VERSION + 1
    assert f"version {wire.FORMAT_VERSION + 1}" in str(refused.value)


def test_a_pickle_is_refused_and_never_run(tmp_path: Path) -> None:
    mark = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {mark}",))

    for message in (pickle.dumps(job_envelope()), pickle.dumps({"a": Payload()})):
        with pytest.raises(wire.WireFormatError, match="not a facemask message"):
            wire.deserialize(message)
    assert not mark.exists()


def test_wrong_types_are_refused() -> None:
    wrong = [
        job_envelope(ARQ_VIDEO_FUNCTION, JOBS[ARQ_FUNCTION]),  # a photo job where a video goes
        job_envelope(ARQ_FUNCTION, PHOTO),  # an answer where a job goes
        {**job_envelope(), "f": "os.system"},  # a function nobody serves
        {**job_envelope(), "k": {"image": b"x"}},
        {**job_envelope(), "a": (JOBS[ARQ_FUNCTION], JOBS[ARQ_FUNCTION])},
        result_envelope(PHOTO),  # a result where a job goes
    ]
    for envelope in wrong:
        with pytest.raises(wire.WireFormatError):
            wire.deserialize_job(wire.serialize(envelope))
    with pytest.raises(wire.WireFormatError):
        wire.read_result(wire.serialize(job_envelope()))  # a job where its result goes


def test_hand_made_messages_with_bad_fields_are_refused() -> None:
    header = msgpack.packb({"wire": wire.FORMAT_NAME, "v": wire.FORMAT_VERSION})

    def job_with(fields: list) -> bytes:
        job = msgpack.ExtType(1, msgpack.packb(fields))
        return header + msgpack.packb({**job_envelope(), "a": [job]})

    assert wire.deserialize_job(job_with([b"x", 3, "whole"]))["a"] == [MaskJob(b"x", 3, Mode.WHOLE)]
    for fields in (
        [b"x", 3, "sideways"],  # no such mode
        [b"x", True, "whole"],  # a bool is not a mask id
        [b"x", -1, "whole"],
        ["text", 3, "whole"],  # a picture is bytes
        [b"x", 3],  # a field missing
        [b"x", 3, "whole", "extra"],
    ):
        with pytest.raises(wire.WireFormatError):
            wire.deserialize_job(job_with(fields))
    nested = msgpack.ExtType(6, b"")
    for _ in range(50):  # extensions nested deeper than any message of ours
        nested = msgpack.ExtType(5, msgpack.packb([nested]))
    with pytest.raises(wire.WireFormatError):
        wire.deserialize(header + msgpack.packb({**job_envelope(), "a": [nested]}))
    with pytest.raises(wire.WireFormatError, match="unknown extension"):
        wire.deserialize(
            header + msgpack.packb({**job_envelope(), "a": [msgpack.ExtType(99, b"")]})
        )


def test_truncated_trailing_and_oversized_messages_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = wire.serialize(job_envelope())
    for cut in range(len(message)):
        with pytest.raises(wire.WireFormatError):
            wire.deserialize(message[:cut])
    with pytest.raises(wire.WireFormatError, match="after the end"):
        wire.deserialize(message + b"\x00")
    monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", len(message) - 1)
    with pytest.raises(wire.WireFormatError, match="over"):
        wire.deserialize(message)
    with pytest.raises(wire.WireFormatError, match="over"):
        wire.serialize(job_envelope())


def test_what_does_not_go_on_the_wire_is_not_written() -> None:
    with pytest.raises(TypeError):
        wire.serialize({**job_envelope(), "a": (object(),)})


# ----------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_or_read_never_a_crash(data: bytes) -> None:
    for read in (wire.deserialize, wire.deserialize_job, wire.read_result):
        try:
            read(data)
        except wire.WireFormatError:
            pass


@FUZZ
@given(st.sampled_from(sorted(JOBS)), st.data())
def test_damaged_real_messages_are_refused_or_read_never_a_crash(function: str, data) -> None:
    message = bytearray(wire.serialize(job_envelope(function)))
    for _ in range(data.draw(st.integers(1, 4))):
        place = data.draw(st.integers(0, len(message) - 1))
        message[place] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(message)))
    try:
        envelope = wire.deserialize_job(bytes(message[:cut]))
    except wire.WireFormatError:
        return
    # what was read is one of our jobs, of the type its function takes
    assert isinstance(envelope["a"][0], wire.JOB_TYPES[envelope["f"]])


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(plain, st.integers(-3, 3))
def test_well_formed_msgpack_of_any_shape_is_refused_or_read(body: object, version: int) -> None:
    header = msgpack.packb({"wire": wire.FORMAT_NAME, "v": version})
    message = header + msgpack.packb(body)
    try:
        envelope = wire.deserialize_job(message)
    except wire.WireFormatError:
        return
    raise AssertionError(f"read {envelope!r}")  # no random shape is a valid job
