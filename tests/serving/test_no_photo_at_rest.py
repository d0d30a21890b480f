"""No photo at rest: after 80 jobs through real Redis, arq and facemask-worker (the real
model), Redis holds no picture, and a dump of it written to disk holds none either."""

from __future__ import annotations

import asyncio

import pytest

from core.results import MaskedPhoto, Mode
from serving.redis_queue import RedisQueue
from tests.support.chaos import RedisServer, WorkerProcess, small_photo

pytestmark = pytest.mark.slow

JOBS = 80
SIGNATURES = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n"}


def pictures_in(data: bytes) -> int:
    return sum(data.count(signature) for signature in SIGNATURES.values())


def dump(server: RedisServer) -> bytes:
    """Make Redis write its snapshot to disk now, uncompressed, and read it."""
    client = server.client()
    try:
        client.config_set("rdbcompression", "no")  # compression could hide a signature
        client.save()
    finally:
        client.close()
    return (server.workdir / "dump.rdb").read_bytes()


async def test_redis_keeps_no_picture_after_80_jobs(
    redis_and_worker: tuple[RedisServer, WorkerProcess],
) -> None:
    server, _ = redis_and_worker
    picture = small_photo(128)
    # the scan finds a picture when there is one
    client = server.client()
    client.set("control", b"pickled..." + picture)
    assert pictures_in(dump(server)) >= 1
    client.delete("control")
    client.close()

    queue = RedisQueue(server.url, queue_size=JOBS, job_timeout=30)
    await queue.start()
    users = asyncio.Semaphore(8)  # eight people tapping at a time, as a busy bot would see

    async def one(n: int) -> MaskedPhoto:
        async with users:
            return await queue.mask_photo(picture, n % 7 + 1, Mode.WHOLE)

    try:
        results = await asyncio.gather(*(one(n) for n in range(JOBS)))
    finally:
        await queue.close()
    assert all(isinstance(r, MaskedPhoto) and pictures_in(r.image) for r in results)

    client = server.client()
    try:
        left = sorted(key.decode() for key in client.keys("*"))
    finally:
        client.close()
    # inputs go when a job finishes, results when the bot reads them; arq's counters stay
    assert not [k for k in left if k.startswith(("arq:job:", "arq:result:"))], left
    assert pictures_in(dump(server)) == 0
