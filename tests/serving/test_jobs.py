"""What the bot and its worker processes send each other through the pool's pipe survives as it
is (Redis has its own wire format: test_wire.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.errors import FaceMaskError, NoFaceFoundError, TruncatedImageError, WeightsError
from core.results import Face, MaskedPhoto, Mode
from serving.jobs import (
    JobFailure,
    MaskJob,
    WorkerBusyError,
    WorkerFailedError,
    WorkerStoppedError,
    read_result,
)


def round_trip(value: object) -> object:
    return pickle.loads(pickle.dumps(value))


def test_a_masked_photo_crosses_as_itself() -> None:
    points = np.arange(136, dtype=np.float32).reshape(68, 2)
    photo = MaskedPhoto(b"\xff\xd8jpeg", "JPEG", 640, 480, (Face((1, 2, 3, 4), points),), 12.5)
    back = round_trip(photo)
    assert isinstance(back, MaskedPhoto) and back.face_count == 1
    assert back.image == photo.image and (back.width, back.height) == (640, 480)
    np.testing.assert_array_equal(back.faces[0].points, points)
    assert read_result(back) is back


def test_errors_travel_as_a_code_and_come_back_as_the_same_class() -> None:
    errors = [NoFaceFoundError(), TruncatedImageError(), WeightsError(), WorkerStoppedError()]
    for error in [*errors, WorkerBusyError("custom words")]:
        failure = round_trip(JobFailure.of(error))
        assert failure == JobFailure(error.code, str(error))
        with pytest.raises(type(error)) as raised:
            read_result(failure)
        assert type(raised.value) is type(error) and str(raised.value) == str(error)
    # a stopped pool is a kind of failure, for callers that only know that
    assert isinstance(WorkerStoppedError(), WorkerFailedError)


def test_an_unknown_code_still_raises_a_face_mask_error() -> None:
    with pytest.raises(FaceMaskError) as raised:
        read_result(JobFailure("from_the_future", "Something new."))
    assert raised.value.code == "from_the_future" and str(raised.value) == "Something new."


def test_anything_else_is_a_worker_failure() -> None:
    with pytest.raises(WorkerFailedError):
        read_result({"ok": True, "image": b"..."})  # what an older worker answered


def test_a_job_logs_without_its_picture() -> None:
    job = MaskJob(b"\x89PNG" + bytes(5000), 3, Mode.WHOLE)
    assert round_trip(job) == job
    text = repr(job)
    assert "5004 bytes" in text and "whole" in text and "PNG" not in text and len(text) < 80
