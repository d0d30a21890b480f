"""The Redis protocol with real parts: a real redis-server, arq, the worker's supervisor and
the bot's RedisQueue (model processes are stand-ins, tests/support/worker_stubs.py).

Garbage in the job queue and in result keys is refused in one log line each and never stops
the worker; a password in REDIS_URL works and never shows in a log; a wrong one is said in
one clear line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
import pytest_asyncio
import redis

from core.results import MaskedPhoto, Mode
from serving import redis_link, wire
from serving.jobs import ARQ_FUNCTION, MaskJob, WorkerFailedError
from serving.pool import WorkerPool
from serving.redis_queue import RedisQueue
from serving.settings import WorkerSettings
from serving.worker import Supervisor
from tests.support import worker_stubs
from tests.support.bot_processes import clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pa55"


class Redis:
    """A redis-server of our own, with a password if given."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        server = shutil.which("redis-server")
        if server is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.port, self.password = free_port(), password
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir),
                "--save", "", "--appendonly", "no"]  # fmt: skip
        if password:
            args += ["--requirepass", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)

    def url(self, password: str | None = None) -> str:
        given = self.password if password is None else password
        auth = f":{given}@" if given else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@contextlib.asynccontextmanager
async def worker_on(url: str) -> AsyncIterator[Supervisor]:
    """facemask-worker's job loop over a pool of stand-in model processes, in this process."""
    settings = WorkerSettings(redis_url=url, workers=1, video_workers=0, job_timeout=10)
    pool = WorkerPool(1, queue_size=2, job_timeout=10, setup=worker_stubs.setup_echo,
                      video_workers=0)  # fmt: skip
    await pool.start()
    supervisor = Supervisor(settings, pool)
    running = asyncio.create_task(supervisor.run())
    beating = asyncio.create_task(supervisor.heartbeat(None))
    try:
        yield supervisor
    finally:
        supervisor.stopping.set()
        await asyncio.wait_for(running, 20)
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await pool.close()


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Redis]:
    server = Redis(tmp_path)
    yield server
    server.stop()


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def as_version(message: bytes, version: int) -> bytes:
    header = msgpack.packb({"wire": wire.FORMAT_NAME, "v": wire.FORMAT_VERSION})
    return msgpack.packb({"wire": wire.FORMAT_NAME, "v": version}) + message[len(header) :]


def job_message(job: object, function: str = ARQ_FUNCTION) -> bytes:
    return wire.serialize({"t": None, "f": function, "a": (job,), "k": {}, "et": 1})


class Exploit:
    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.mark}",))


async def test_garbage_in_the_queue_is_refused_and_the_next_real_job_is_served(
    server: Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    mark = tmp_path / "pickle-ran"
    garbage = {
        "random": os.urandom(300),
        "truncated": job_message(MaskJob(b"ok", 1))[:-3],
        "pickle": pickle.dumps({"t": 1, "f": ARQ_FUNCTION, "a": (Exploit(mark),), "k": {}}),
        "version": as_version(job_message(MaskJob(b"ok", 1)), wire.FORMAT_VERSION + 1),
        "type": job_message(MaskedPhoto(b"x", "JPEG", 1, 1, (), 1.0)),  # an answer, not a job
    }
    client = server.client()
    now_ms = int(time.time() * 1000)
    for name, data in garbage.items():
        client.set(f"arq:job:{name}", data)
        client.zadd("arq:queue", {name: now_ms})
    client.set("arq:job:empty", b"")  # arq's own answer to these two: "job ... expired"
    client.zadd("arq:queue", {b"\xff\xfe not text": now_ms, "no-such-job": now_ms, "empty": now_ms})

    queue = RedisQueue(server.url(), queue_size=20, job_timeout=10)
    async with worker_on(server.url()) as supervisor:
        await queue.start()
        try:
            photo = await queue.mask_photo(b"ok", 2, Mode.FACES)
            assert isinstance(photo, MaskedPhoto)
            deadline = time.monotonic() + 10
            while client.zcard("arq:queue"):  # every piece of garbage has been dealt with
                assert time.monotonic() < deadline, client.zrange("arq:queue", 0, -1)
                await asyncio.sleep(0.05)
            again = await queue.mask_photo(b"ok", 3, Mode.WHOLE)  # and it keeps serving
            assert isinstance(again, MaskedPhoto)
        finally:
            await queue.close()
        assert not supervisor.outage.active

    assert not mark.exists()  # the pickle was never run
    refusals = lines(caplog, "refused job")
    for name in garbage:  # one line each, saying why
        assert len([line for line in refusals if f"job {name}:" in line]) == 1, refusals
    assert "wire format version" in next(line for line in refusals if "job version:" in line)
    assert len(lines(caplog, "refused a job id that is not text")) == 1
    assert (
        len(lines(caplog, "job no-such-job expired"))
        == len(lines(caplog, "job empty expired"))
        == 1
    )
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    # each refusal is recorded as the job's failure, readable by a bot of this version
    success, refusal = wire.read_result(client.get("arq:result:version"))
    assert not success and refusal.name == "WireVersionError"
    client.close()


async def test_a_worker_of_another_version_is_refused_by_the_bot_in_one_line(
    server: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """No worker runs: the test writes the answers another release's worker would."""
    queue = RedisQueue(server.url(), queue_size=4, job_timeout=5)
    await queue.start()
    client = server.client()
    try:
        answers = {
            "version": as_version(
                wire.serialize(
                    {
                        "t": 1,
                        "f": ARQ_FUNCTION,
                        "a": (),
                        "k": {},
                        "et": 1,
                        "s": True,
                        "r": MaskedPhoto(b"x", "JPEG", 1, 1, (), 1.0),
                        "st": 1,
                        "ft": 1,
                        "q": "arq:queue",
                        "id": "x",
                    }  # fmt: skip
                ),
                wire.FORMAT_VERSION + 1,
            ),
            "garbage": os.urandom(100),
            "pickle": pickle.dumps({"s": True, "r": b"sticker"}),
        }
        for why, answer in answers.items():
            asking = asyncio.create_task(queue.mask_photo(b"ok", 1, Mode.FACES))
            deadline = time.monotonic() + 5
            while not (queued := client.zrange("arq:queue", 0, -1)):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            [job_id] = queued
            client.set(b"arq:result:" + job_id, answer)
            client.zrem("arq:queue", job_id)
            with pytest.raises(WorkerFailedError):
                await asyncio.wait_for(asking, 5)
            refused = lines(caplog, f"refused the answer to job {job_id.decode()}")
            assert len(refused) == 1, (why, refused)
            if why == "version":
                assert f"version {wire.FORMAT_VERSION + 1}" in refused[0]
            assert not client.exists(b"arq:result:" + job_id)  # read once, then gone
    finally:
        await queue.close()
        client.close()
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_job_runs_through_a_redis_with_a_password_that_no_log_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = Redis(tmp_path, password=PASSWORD)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):  # it is really needed
            redis.Redis(host="127.0.0.1", port=server.port).ping()
        queue = RedisQueue(server.url(), queue_size=4, job_timeout=10)
        async with worker_on(server.url()):
            await queue.start()
            try:
                assert isinstance(await queue.mask_photo(b"ok", 1, Mode.FACES), MaskedPhoto)
            finally:
                await queue.close()
    finally:
        server.stop()
    assert lines(caplog, "sending jobs through Redis at redis://:***@127.0.0.1")
    assert PASSWORD not in caplog.text


def test_a_wrong_password_stops_facemask_worker_in_one_clear_line(tmp_path: Path) -> None:
    server = Redis(tmp_path, password=PASSWORD)
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "serving.worker"],
            env=clean_env(PYTHONPATH=str(ROOT), REDIS_URL=server.url("not-" + PASSWORD)),
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        server.stop()
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 30  # before loading any model
    said = [line for line in done.stderr.splitlines() if "password" in line]
    assert len(said) == 1 and "Redis refused the password in REDIS_URL" in said[0], done.stderr
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr


async def test_the_bot_waits_for_redis_at_start_one_line_per_try(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_link, "START_BACKOFF_FIRST", 0.2)
    server = Redis(tmp_path, password=PASSWORD)
    try:
        # a wrong password: said plainly, every try, without the password
        wrong = RedisQueue(server.url("wrong-" + PASSWORD), queue_size=4, job_timeout=5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(wrong.start(), 1.0)
        tries = lines(caplog, "the bot's job queue waits for Redis")
        assert len(tries) >= 2 and all("refused the password" in t for t in tries), tries
        assert "next try at" in tries[0] and PASSWORD not in caplog.text
    finally:
        server.stop()

    # Redis not there yet: the queue waits, then starts once it answers
    caplog.clear()
    port = free_port()
    queue = RedisQueue(f"redis://127.0.0.1:{port}/0", queue_size=4, job_timeout=5)
    starting = asyncio.create_task(queue.start())
    await asyncio.sleep(1.0)
    assert not starting.done()
    tries = lines(caplog, "the bot's job queue waits for Redis")
    assert len(tries) >= 2 and "ConnectionError" in tries[0], tries
    late = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
         "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.wait_for(starting, 10)
        assert await queue.healthy()
    finally:
        await queue.close()
        late.kill()
        late.wait(10)
    assert not [r for r in caplog.records if r.exc_info]
