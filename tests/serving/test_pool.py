"""serving.pool's embedded pool with real worker processes (stub jobs instead of the model)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from core.errors import NoFaceFoundError, WeightsError
from core.results import MaskedPhoto
from serving.jobs import (
    JobFailure,
    JobResult,
    MaskJob,
    WorkerBusyError,
    WorkerFailedError,
    WorkerStoppedError,
    WorkerTimeoutError,
)
from serving.pool import WorkerPool
from tests.support import worker_stubs


def job(command: str) -> MaskJob:
    """A job whose "image" tells the stub worker what to do (see tests/support/worker_stubs)."""
    return MaskJob(command.encode(), mask_id=1)


def pid_of(result: JobResult) -> int:
    assert isinstance(result, MaskedPhoto), result
    return int(result.image)


def code_of(result: JobResult) -> str | None:
    return result.code if isinstance(result, JobFailure) else None


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(1, queue_size=2, job_timeout=2.0, setup=worker_stubs.setup_echo)
    await pool.start()
    yield pool
    await pool.close()


async def test_pool_runs_jobs_in_another_process(pool: WorkerPool) -> None:
    result = await pool.run(job("ok"))
    assert pid_of(result) in pool.pids and pid_of(result) != os.getpid()
    assert result.face_count == 1 and result.faces[0].points.shape == (68, 2)
    assert await pool.run(job("no_face")) == JobFailure.of(NoFaceFoundError())


async def test_full_queue_says_busy(pool: WorkerPool) -> None:
    running = asyncio.create_task(pool.run(job("sleep 0.5")))
    await asyncio.sleep(0.2)  # taken by the worker
    jobs = [running, *(asyncio.create_task(pool.run(job("sleep 0.1"))) for _ in range(3))]
    results = await asyncio.gather(*jobs)
    # one running, two waiting, the fourth turned away
    assert [isinstance(r, MaskedPhoto) for r in results].count(True) == 3
    assert [code_of(r) for r in results].count(WorkerBusyError.code) == 1


async def test_stuck_job_times_out_and_its_worker_is_replaced(pool: WorkerPool) -> None:
    [stuck_pid] = pool.pids
    assert code_of(await pool.run(job("sleep 30"))) == WorkerTimeoutError.code
    assert stuck_pid not in pool.pids
    assert isinstance(await pool.run(job("ok")), MaskedPhoto)


async def test_dead_worker_is_replaced_and_its_job_retried(
    pool: WorkerPool, tmp_path: Path
) -> None:
    [first_pid] = pool.pids
    result = await pool.run(job(f"die_once {tmp_path / 'mark'}"))
    assert pid_of(result) != first_pid
    # a job that kills every worker it touches gets an answer after one retry
    assert code_of(await pool.run(job("die"))) == WorkerFailedError.code
    assert isinstance(await pool.run(job("ok")), MaskedPhoto)  # and the pool is whole again


async def test_worker_that_cannot_load_answers_with_the_reason() -> None:
    for setup, expected in [
        (worker_stubs.setup_broken, WorkerFailedError()),
        (worker_stubs.setup_without_weights, WeightsError()),
    ]:
        pool = WorkerPool(1, setup=setup)
        await pool.start()
        try:
            result = await pool.run(job("ok"))
            assert result == JobFailure(expected.code, str(expected))
            assert "/srv/secret" not in result.message  # paths are for the log only
        finally:
            await pool.close()


async def test_closing_answers_waiting_jobs() -> None:
    pool = WorkerPool(1, queue_size=4, setup=worker_stubs.setup_echo)
    await pool.start()
    jobs = [asyncio.create_task(pool.run(job("sleep 5"))) for _ in range(3)]
    await asyncio.sleep(0.3)
    await pool.close()
    results = await asyncio.wait_for(asyncio.gather(*jobs), 10)
    assert all(code_of(r) == WorkerStoppedError.code for r in results)
    assert code_of(await pool.run(job("ok"))) == WorkerStoppedError.code
