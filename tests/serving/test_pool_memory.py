"""A pool worker gives back what large photos took: its resident memory after 12-megapixel
photos stays near what it was before them (issue 27: <= 450 MB after 500 photos of a real
mix, ``facemask-bench --memory 500 --pool``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from skimage.data import astronaut

from core import imageio
from serving.jobs import ManyMasksJob
from serving.pool import WorkerPool

ALL_SEVEN = (1, 2, 3, 4, 5, 6, 7)

#: what five more photos (0.3-12 megapixels, all seven masks each) may add to a worker's
#: resident memory after its first: ~9 MB as served, 33-58 MB before the heap limits and
#: the detector's arena shrinking (measured on this test's photos)
ADDED_MB = 20


def _resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
async def test_large_photos_leave_little_behind_in_a_pool_worker() -> None:
    sizes = [(4000, 3000), (2048, 1536), (3264, 2448), (640, 480), (4000, 3000)]
    first = imageio.encode(cv2.resize(astronaut(), (1280, 960)), None, "JPEG")
    photos = [imageio.encode(cv2.resize(astronaut(), s), None, "JPEG") for s in sizes]
    pool = WorkerPool(1, job_timeout=120.0)  # the served setup: serving.pool.load_mask_job
    await pool.start()
    try:
        await pool.run(ManyMasksJob(first, ALL_SEVEN))  # the first photo's one-off costs
        before = _resident_mb(pool.pids[0])
        for photo in photos:
            results = await pool.run(ManyMasksJob(photo, ALL_SEVEN))
            assert isinstance(results, list) and len(results) == 7, results
        assert _resident_mb(pool.pids[0]) - before <= ADDED_MB
    finally:
        await pool.close()
