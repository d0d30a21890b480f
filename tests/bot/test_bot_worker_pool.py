"""serving.worker's embedded pool with real worker processes (stub jobs instead of the model)."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import worker_stubs

from core.errors import FaceMaskError, NoFaceFoundError, TruncatedImageError, WeightsError
from serving.worker import (
    MaskedPhoto,
    WorkerBusyError,
    WorkerFailedError,
    WorkerPool,
    WorkerTimeoutError,
    error_from_data,
    failure,
    read_result,
)


@pytest_asyncio.fixture(loop_scope="session")
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(1, queue_size=2, job_timeout=2.0, setup=worker_stubs.setup_echo)
    await pool.start()
    yield pool
    await pool.close()


def test_errors_travel_as_data_and_come_back_as_the_same_class() -> None:
    for error in (NoFaceFoundError(), TruncatedImageError(), WorkerBusyError("custom words")):
        data = pickle.loads(pickle.dumps(failure(error)))
        assert set(data) == {"ok", "code", "message"}
        back = error_from_data(data["code"], data["message"])
        assert type(back) is type(error) and str(back) == str(error)
        assert type(pickle.loads(pickle.dumps(error))) is type(error)  # and they pickle, too
    unknown = error_from_data("from_the_future", "Something new.")
    assert isinstance(unknown, FaceMaskError) and unknown.code == "from_the_future"
    with pytest.raises(NoFaceFoundError):
        read_result(failure(NoFaceFoundError()))


async def test_pool_runs_jobs_in_another_process(pool: WorkerPool) -> None:
    data = await pool.run("ok")
    assert data["pid"] in pool.pids and data["pid"] != __import__("os").getpid()
    assert read_result(data) == MaskedPhoto(b"image", "JPEG", 4, 3, 1, 1.0)
    assert (await pool.run("no_face"))["code"] == "no_face"


async def test_full_queue_says_busy(pool: WorkerPool) -> None:
    running = asyncio.create_task(pool.run("sleep", 0.5))
    await asyncio.sleep(0.2)  # taken by the worker
    jobs = [running, *(asyncio.create_task(pool.run("sleep", 0.1)) for _ in range(3))]
    results = await asyncio.gather(*jobs)
    # one running, two waiting, the fourth turned away
    assert [r["ok"] for r in results].count(True) == 3
    assert [r.get("code") for r in results].count(WorkerBusyError.code) == 1


async def test_stuck_job_times_out_and_its_worker_is_replaced(pool: WorkerPool) -> None:
    [stuck_pid] = pool.pids
    data = await pool.run("sleep", 30)
    assert data["code"] == WorkerTimeoutError.code
    assert stuck_pid not in pool.pids
    assert (await pool.run("ok"))["ok"]


async def test_dead_worker_is_replaced_and_its_job_retried(
    pool: WorkerPool, tmp_path: Path
) -> None:
    [first_pid] = pool.pids
    data = await pool.run("die_once", str(tmp_path / "mark"))
    assert data["ok"] and data["pid"] != first_pid
    # a job that kills every worker it touches gets an answer after one retry
    data = await pool.run("die")
    assert data["code"] == WorkerFailedError.code
    assert (await pool.run("ok"))["ok"]  # and the pool is whole again


async def test_worker_that_cannot_load_answers_with_the_reason() -> None:
    for setup, expected in [
        (worker_stubs.setup_broken, WorkerFailedError()),
        (worker_stubs.setup_without_weights, WeightsError()),
    ]:
        pool = WorkerPool(1, setup=setup)
        await pool.start()
        try:
            data = await pool.run("ok")
            assert (data["code"], data["message"]) == (expected.code, str(expected))
            assert "/srv/secret" not in data["message"]  # paths are for the log only
        finally:
            await pool.close()


async def test_closing_answers_waiting_jobs() -> None:
    pool = WorkerPool(1, queue_size=4, setup=worker_stubs.setup_echo)
    await pool.start()
    jobs = [asyncio.create_task(pool.run("sleep", 5)) for _ in range(3)]
    await asyncio.sleep(0.3)
    await pool.close()
    results = await asyncio.wait_for(asyncio.gather(*jobs), 10)
    assert all(r["code"] == WorkerFailedError.code for r in results)
    assert (await pool.run("ok"))["code"] == WorkerFailedError.code
