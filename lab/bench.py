"""``facemask-bench``: how long each stage takes on a 1280x960 photo.

Two photos are built from scikit-image's astronaut: one face, and four faces tiled on a
canvas. For each, every stage (decode, detect, landmarks, warp, encode) is timed on its
own, the whole ``FaceMasker.apply`` call end to end, and ``FaceMasker.apply_many`` with all
seven masks (the bot's "All 7"; printed as a ratio to one mask); medians over ``--repeat`` runs
after a warm-up. ``--baseline`` times the first release's pipeline (Haar cascade, model on
torch) in the same run, so the two can be compared on one machine at one moment. With
``--json`` the last line is JSON with ``total_ms_p50`` (the one-face photo's end-to-end
median), every stage's median per photo and a ``memory`` section (below, 100 photos).

``--busy`` times the one-face photo end to end with one core kept busy by another process
(a spinning child that stops by itself), beside the idle time before and after: the thread
counts (``core.threads``) should cost at most 1.6x idle there. ``--memory N`` loads the
model in a fresh process as a worker does (``serving.pool.load_mask_job``), masks N photos
and prints where its resident memory went, step by step, and its peak; ``--memory-torch``
does the same the way workers ran before issue 18 (torch loaded, MTCNN on torch, the torch
keypoint model held). Either runs alone (no stage timings).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import cv2
import numpy as np

from core import imageio
from core.render import warp
from core.results import Mode

WIDTH, HEIGHT = 1280, 960
ALL_SEVEN = (1, 2, 3, 4, 5, 6, 7)  # FaceMasker.apply_many, timed against one mask


def one_face_photo() -> np.ndarray:
    """The astronaut at 960x960, centred on a 1280x960 canvas (face about 170 px wide)."""
    from skimage import data

    face = cv2.resize(data.astronaut(), (HEIGHT, HEIGHT), interpolation=cv2.INTER_CUBIC)
    pad = (WIDTH - HEIGHT) // 2
    return cv2.copyMakeBorder(face, 0, 0, pad, WIDTH - HEIGHT - pad, cv2.BORDER_REPLICATE)


def group_photo(rows: int = 2, cols: int = 2) -> np.ndarray:
    """``rows`` x ``cols`` copies of the astronaut on a 1280x960 canvas."""
    from skimage import data

    cell_w, cell_h = WIDTH // cols, HEIGHT // rows
    face = cv2.resize(data.astronaut(), (cell_h, cell_h), interpolation=cv2.INTER_AREA)
    pad = (cell_w - cell_h) // 2
    cell = cv2.copyMakeBorder(face, 0, 0, pad, cell_w - cell_h - pad, cv2.BORDER_REPLICATE)
    return np.vstack([np.hstack([cell] * cols)] * rows)


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def template_in_box(box: tuple[float, float, float, float]) -> np.ndarray:
    """The mean face placed in a face's box: face-sized points for an untrained model."""
    from masks import catalog

    t = catalog.template().points
    unit = (t - t.min(axis=0)) / np.ptp(t, axis=0)
    x0, y0, x1, y1 = box  # a face's box is its 68-point box (core.results.Face)
    return (unit * [x1 - x0, y1 - y0] + [x0, y0]).astype(np.float32)


def bench_photo(
    masker, jpeg: bytes, mask_id: int, repeat: int, trained: bool = True
) -> dict[str, float]:
    decoded = imageio.decode(jpeg)
    rgb = decoded.rgb
    boxes = [d.box for d in masker.detector.detect(rgb)]  # all of them cost landmark time
    faces = masker.find_faces(rgb, Mode.FACES)  # the ones that get a mask
    points = np.asarray([f.points for f in faces]).reshape(-1, 68, 2)
    if not trained:  # random points would time the warp on a random-sized region
        points = np.asarray([template_in_box(f.box) for f in faces]).reshape(-1, 68, 2)
    picture = masker.picture(mask_id)
    masked = warp.apply_masks(rgb, picture, list(points))
    stages = {
        "decode": median_ms(lambda: imageio.decode(jpeg), repeat),
        "detect": median_ms(lambda: masker.detector.detect(rgb), repeat),
        "landmarks": median_ms(lambda: masker.predictor.predict(rgb, boxes), repeat),
        "warp": median_ms(lambda: warp.apply_masks(rgb, picture, list(points)), repeat),
        "encode": median_ms(lambda: imageio.encode_like(decoded, masked), repeat),
        "total": median_ms(lambda: masker.apply(jpeg, mask_id, Mode.FACES), repeat),
        # the bot's "All 7": faces found and read once, seven masks drawn and encoded
        "all_seven": median_ms(lambda: masker.apply_many(jpeg, ALL_SEVEN, Mode.FACES), repeat),
    }
    timings = {k: round(v, 2) for k, v in stages.items()}
    ratio = round(stages["all_seven"] / stages["total"], 2)
    return {"detections": len(boxes), "faces": len(faces), **timings, "all_seven_ratio": ratio}


def make_masker(args, detector: str, backend: str):
    from core.api import MAX_SHAPE_ERROR, FaceMasker
    from core.detection.registry import default_detector
    from core.errors import WeightsError
    from training.predictor import load_predictor, torch_predictor, untrained

    try:
        predictor = load_predictor(args.weights, threads=args.threads)
        if backend == "torch":  # the release's float network, eager on torch
            from training.model import load_weights

            source = predictor.release.manifest.with_suffix(".pt")
            predictor = torch_predictor(load_weights(source)[0], backend="torch")
        weights = "shipped" if args.weights is None else str(args.weights)
    except WeightsError as err:
        # Untrained weights cost exactly the same time; only the points are meaningless.
        print(
            f"facemask-bench: {err}; timing an untrained model instead "
            "(the warp stage then uses the mean face placed in each detector box)"
        )
        predictor = untrained()
        weights = "untrained"
    # Random points are never face-shaped: keep every detection when the model is untrained.
    masker = FaceMasker(
        predictor=predictor,
        detector=default_detector(detector),
        max_shape_error=MAX_SHAPE_ERROR if weights != "untrained" else None,
    )
    return masker, weights


# ------------------------------------------------------------------------------ busy machine

#: the busy-core process spins at most this long, so that it stops even if the bench dies
SPIN_LIMIT_S = 120.0


def _spin(seconds: float) -> None:
    """Keep one core busy for ``seconds`` (runs in its own process)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def busy_times(masker, jpeg: bytes, mask_id: int, repeat: int) -> dict[str, float]:
    """Median ms of ``masker.apply`` on ``jpeg``: idle (before and after) and with one core
    kept busy by another process."""
    run = lambda: masker.apply(jpeg, mask_id, Mode.FACES)  # noqa: E731
    idle = [median_ms(run, repeat)]
    spinner = multiprocessing.get_context("spawn").Process(
        target=_spin, args=(SPIN_LIMIT_S,), name="facemask-bench-spin", daemon=True
    )
    spinner.start()
    try:
        time.sleep(0.5)  # until it spins (a fresh interpreter starts first)
        busy = median_ms(run, repeat)
    finally:
        spinner.terminate()
        spinner.join(5)
    idle.append(median_ms(run, repeat))
    idle_ms = statistics.mean(idle)
    return {
        "idle_ms": round(idle_ms, 2),
        "idle_before_ms": round(idle[0], 2),
        "idle_after_ms": round(idle[1], 2),
        "busy_ms": round(busy, 2),
        "ratio": round(busy / idle_ms, 2),
    }


# ------------------------------------------------------------------------------ memory


def _status_mb(field: str, pid: int | str = "self") -> float:
    """A field of /proc/PID/status (VmRSS: resident now, VmHWM: its peak) in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _worker_life(conn: Connection, jpegs: list[bytes], photos: int, workers: int, on_torch: bool):
    """A worker's life in a fresh process: what each step adds to its resident memory."""
    steps: list[tuple[str, float]] = []

    def step(name: str) -> None:
        steps.append((name, _status_mb("VmRSS")))

    step("python, numpy, OpenCV, Pillow")
    from core import runtime, threads
    from core.api import FaceMasker

    threads.configure(workers=workers)  # as serving.pool.load_mask_job does
    step("core's modules (PyAV, ...)")
    if on_torch:
        import torch  # noqa: F401

        step("torch")
    runtime.ort()
    step("ONNX Runtime")
    from core.keypoints.landmarks import KeypointPredictor

    predictor = KeypointPredictor.load()
    if on_torch:  # as workers ran before issue 18: the torch model beside the int8 sessions
        from training.model import load_weights

        load_weights(predictor.release.manifest.with_suffix(".pt"))
    step("keypoint model (int8 ensemble)")
    from core.detection.registry import default_detector

    detector = default_detector()
    step(f"face detector ({type(detector).__name__})")
    masker = FaceMasker(predictor, detector)
    for mask_id in ALL_SEVEN:
        masker.picture(mask_id)
    step("mask pictures (7)")
    started = time.perf_counter()
    for k in range(photos):
        masker.apply(jpegs[k % len(jpegs)], ALL_SEVEN[k % len(ALL_SEVEN)], Mode.FACES)
    ms = (time.perf_counter() - started) * 1000 / max(1, photos)
    step(f"{photos} photos")
    conn.send(
        {
            "steps": [
                {"step": name, "rss_mb": round(mb, 1), "added_mb": round(mb - before, 1)}
                for (name, mb), (_, before) in zip(steps, [steps[0], *steps[:-1]])
            ],
            "photos": photos,
            "ms_per_photo": round(ms, 1),
            "rss_mb": round(steps[-1][1], 1),
            "peak_rss_mb": round(_status_mb("VmHWM"), 1),
            "threads": threads.count(),
            "torch_loaded": "torch" in sys.modules,
            "detector": type(detector).__name__,
            "mtcnn": type(getattr(detector, "first", detector)._mtcnn.pnet).__name__,
            "keypoints": predictor.backend,
        }
    )


def worker_memory(jpegs: list[bytes], photos: int, workers: int = 1, on_torch: bool = False):
    """Resident memory of a fresh worker-like process, step by step, after ``photos``
    photos (the two bench photos in turn, the seven masks in turn), and its peak."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=_worker_life, args=(theirs, jpegs, photos, workers, on_torch), daemon=True
    )
    child.start()
    theirs.close()
    try:
        report = ours.recv()
    except EOFError:
        raise RuntimeError(f"the worker-like process died (exit code {child.exitcode})") from None
    finally:
        child.join(30)
    report["workers"] = workers
    return report


def print_memory(report: dict) -> None:
    how = "before issue 18 (torch)" if report["torch_loaded"] else "as served"
    print(f"worker-like process, {how}: threads {report['threads']}, MTCNN {report['mtcnn']}, "
          f"keypoints {report['keypoints']}, torch loaded: {report['torch_loaded']}")  # fmt: skip
    for s in report["steps"]:
        print(f"  {s['step']:<32} {s['added_mb']:>+8.1f} MB  -> {s['rss_mb']:>7.1f} MB resident")
    print(f"after {report['photos']} photos ({report['ms_per_photo']:.0f} ms each): "
          f"{report['rss_mb']:.0f} MB resident, peak {report['peak_rss_mb']:.0f} MB "
          "(target: <= 450 MB)")  # fmt: skip


# ------------------------------------------------------------------------------ a pool worker

#: (width, height) of the pool bench's photos: 0.3 to 12 megapixels, as phones and Telegram
#: send them (Telegram's photos <= 1280 px; files full size)
MIX_SIZES = ((640, 480), (1280, 960), (960, 1280), (1600, 1200), (2048, 1536),
             (3264, 2448), (4000, 3000))  # fmt: skip
#: people a photo in the mix: mostly few, some groups, one crowd
MIX_FACES = (1, 1, 2, 3, 4, 6, 9, 14, 24)


def mixed_photos(data: Path, count: int, seed: int = 0) -> list[bytes]:
    """``count`` JPEGs of real faces (the validation people's, ``lab.cli_bench.group_photo``)
    at every size of ``MIX_SIZES`` with 1-24 people (``MIX_FACES``)."""
    from lab.cli_bench import group_eyes, group_photo
    from training.data import load_splits

    samples = load_splits(data).val
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        size = MIX_SIZES[k % len(MIX_SIZES)]
        faces = MIX_FACES[int(rng.integers(len(MIX_FACES)))]
        photo, _ = group_photo(samples, rng, size, faces, group_eyes(size, faces))
        out.append(imageio.encode(photo, None, "JPEG"))
    return out


def load_plain_job() -> Callable:
    """A pool worker's job as set up before its heap was limited and trimmed
    (``serving.pool.limit_heap``, ``trim_after``): the comparison for ``--pool --plain``."""
    import functools

    from core import threads
    from core.api import FaceMasker
    from serving.pool import run_mask_job

    threads.configure(workers=1)
    return functools.partial(run_mask_job, FaceMasker())


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _serve_mix(jpegs: list[bytes], photos: int, every: int, plain: bool = False) -> dict:
    from serving.jobs import JobFailure, ManyMasksJob, MaskJob
    from serving.pool import WorkerPool

    # the bot's own setup (serving.pool.load_mask_job), or the one before its heap limits
    pool = WorkerPool(1, job_timeout=120.0, setup=load_plain_job if plain else None)
    await pool.start()
    try:
        pid = pool.pids[0]
        trace = [{"photos": 0, "rss_mb": round(_status_mb("VmRSS", pid), 1)}]
        failures: dict[str, int] = {}
        started, cpu_before = time.perf_counter(), _cpu_s(pid)
        for k in range(photos):
            jpeg = jpegs[k % len(jpegs)]
            # every tenth the bot's "All 7", the others one mask each, the seven in turn
            job = (ManyMasksJob(jpeg, ALL_SEVEN) if k % 10 == 9
                   else MaskJob(jpeg, ALL_SEVEN[k % len(ALL_SEVEN)]))  # fmt: skip
            result = await pool.run(job)
            if isinstance(result, JobFailure):
                failures[result.code] = failures.get(result.code, 0) + 1
            if (k + 1) % every == 0 or k + 1 == photos:
                trace.append({"photos": k + 1, "rss_mb": round(_status_mb("VmRSS", pid), 1)})
        seconds = time.perf_counter() - started
        cpu = _cpu_s(pid) - cpu_before
        return {"pid": pid, "trace": trace, "rss_mb": trace[-1]["rss_mb"],
                "peak_rss_mb": round(_status_mb("VmHWM", pid), 1), "failures": failures,
                "s_per_photo": round(seconds / max(1, photos), 3),
                "cpu_s_per_photo": round(cpu / max(1, photos), 3)}  # fmt: skip
    finally:
        await pool.close()


def pool_memory(data: Path, photos: int, distinct: int = 50, plain: bool = False) -> dict:
    """Resident memory of a real pool worker (``serving.pool.WorkerPool``, the process that
    serves the bot's jobs) after ``photos`` jobs of ``distinct`` mixed photos in turn
    (``mixed_photos``), read from /proc; every 50 photos on the way."""
    import asyncio

    jpegs = mixed_photos(data, distinct)
    report = asyncio.run(_serve_mix(jpegs, photos, every=50, plain=plain))
    mp = [round(p, 1) for p in sorted({_megapixels(j) for j in jpegs})]
    report.update(photos=photos, distinct=distinct, megapixels=[mp[0], mp[-1]], plain=plain,
                  faces=[min(MIX_FACES), max(MIX_FACES)])  # fmt: skip
    return report


def _megapixels(jpeg: bytes) -> float:
    decoded = imageio.decode(jpeg)
    return decoded.width * decoded.height / 1e6


def print_pool_memory(report: dict) -> None:
    low, high = report["megapixels"]
    setup = "before the heap limits (--plain)" if report["plain"] else "as served"
    print(f"pool worker (pid {report['pid']}, {setup}), {report['photos']} photos "
          f"({report['distinct']} distinct, {low}-{high} MP, {report['faces'][0]}-"
          f"{report['faces'][1]} faces; every tenth all seven masks), "
          f"{report['s_per_photo']:.2f} s wall, {report['cpu_s_per_photo']:.2f} s CPU each; "
          f"failures {report['failures'] or 'none'}"
          )  # fmt: skip
    trace = ", ".join(f"{t['photos']}: {t['rss_mb']:.0f}" for t in report["trace"])
    print(f"  resident after {trace} MB")
    print(f"after {report['photos']} photos: {report['rss_mb']:.0f} MB resident, peak "
          f"{report['peak_rss_mb']:.0f} MB (target: <= 450 MB)")  # fmt: skip


def faceless_photos() -> list[tuple[str, np.ndarray]]:
    """1280x960 photos without a human face (scikit-image's coffee, rocket, coins)."""
    from skimage import data

    pictures = [("coffee", data.coffee()), ("rocket", data.rocket()),
                ("coins", cv2.cvtColor(data.coins(), cv2.COLOR_GRAY2RGB))]  # fmt: skip
    return [(n, cv2.resize(p, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)) for n, p in pictures]


def bench_faceless(masker, mask_id: int, repeat: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU ms until ``FaceMasker.apply`` answers "no face" (target 200)."""
    from core.errors import NoFaceFoundError

    out = {}
    for name, photo in faceless_photos():
        jpeg = imageio.encode(photo, None, "JPEG")
        walls, cpus = [], []
        for k in range(repeat + 1):
            w, c = time.perf_counter(), time.process_time()
            try:
                masker.apply(jpeg, mask_id, Mode.FACES)
                found = True
            except NoFaceFoundError:
                found = False
            if k:  # the first is the warm-up
                walls.append((time.perf_counter() - w) * 1000)
                cpus.append((time.process_time() - c) * 1000)
        out[name] = {"wall_ms": round(statistics.median(walls), 1),
                     "cpu_ms": round(statistics.median(cpus), 1), "face_found": found}  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if "--video" in given:  # moving pictures have their own bench (lab/video_bench.py)
        from lab.video_bench import main as video_main

        return video_main([a for a in given if a != "--video"])
    p = argparse.ArgumentParser(prog="facemask-bench", description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=30, help="timed runs per stage (median reported)")
    p.add_argument("--mask", type=int, default=1)
    p.add_argument("--weights", type=Path, default=None, help="keypoint weights (default: shipped)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--detector", choices=["mtcnn", "haar"], default="mtcnn")
    p.add_argument("--backend", choices=["onnxruntime", "torch"], default="onnxruntime")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also time the first release's pipeline (Haar cascade, model on torch) in this run",
    )
    p.add_argument("--json", action="store_true", help="last line: JSON with total_ms_p50")
    p.add_argument(
        "--busy",
        action="store_true",
        help="time a photo with one core kept busy by another process, beside the idle time",
    )
    p.add_argument(
        "--memory",
        type=int,
        metavar="PHOTOS",
        default=None,
        help="resident memory of a worker-like process, step by step and after PHOTOS photos "
        "(--json alone measures 100)",
    )
    p.add_argument(
        "--memory-torch",
        action="store_true",
        help="--memory as workers ran before issue 18: torch loaded, MTCNN on torch",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="--memory: worker processes sharing the cores"
    )
    p.add_argument("--pool", action="store_true",
                   help="--memory in a real pool worker (serving.pool), fed photos of real faces "
                   "at 0.3-12 MP with 1-24 people (--data)")  # fmt: skip
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/face-keypoints"),
                   help="--pool: the face-keypoints data set")  # fmt: skip
    p.add_argument("--plain", action="store_true",
                   help="--pool: without serving.pool's heap limits, to compare")  # fmt: skip
    p.add_argument("--faceless", action="store_true",
                   help="time photos without a face until the answer 'no face'")  # fmt: skip
    args = p.parse_args(argv)

    if args.pool:
        summary = {"load_before": load_average()}
        summary["pool"] = pool_memory(args.data, args.memory or 500, plain=args.plain)
        summary["load_after"] = load_average()
        print_pool_memory(summary["pool"])
        if args.json:
            print(json.dumps(summary))
        return 0
    if args.faceless:
        masker, _ = make_masker(args, args.detector, args.backend)
        result = bench_faceless(masker, args.mask, args.repeat)
        for name, r in result.items():
            print(f"{WIDTH}x{HEIGHT} {name}, no human face: {r['wall_ms']:.1f} ms wall, "
                  f"{r['cpu_ms']:.1f} ms CPU (median of {args.repeat}; target <= 200 ms); "
                  f"a face found: {r['face_found']}")  # fmt: skip
        if args.json:
            print(json.dumps({"faceless": result, "load": load_average()}))
        return 0
    photos = [("one_face", one_face_photo()), ("four_faces", group_photo())]
    jpegs = {name: imageio.encode(photo, None, "JPEG") for name, photo in photos}
    if args.busy or args.memory is not None or args.memory_torch:
        return busy_and_memory(args, jpegs)

    setups = [(args.detector, args.backend)]
    if args.baseline:
        setups.append(("haar", "torch"))
    stages = ["decode", "detect", "landmarks", "warp", "encode", "total", "all_seven"]
    runs = []
    for detector, backend in setups:
        masker, weights = make_masker(args, detector, backend)
        results = {
            name: bench_photo(masker, jpeg, args.mask, args.repeat, weights != "untrained")
            for name, jpeg in jpegs.items()
        }
        setup = f"{detector} + {masker.predictor.backend}"
        runs.append((setup, results))
        print(f"{WIDTH}x{HEIGHT} JPEG, mask {args.mask}, median of {args.repeat} runs (ms), "
              f"{os.cpu_count()} CPUs, weights: {weights}, detector+runtime: {setup}")  # fmt: skip
        print(f"{'photo':<11} {'boxes':>5} {'faces':>5} " + " ".join(f"{s:>9}" for s in stages))
        for name, r in results.items():
            row = " ".join(f"{r[s]:>9.1f}" for s in stages)
            print(f"{name:<11} {r['detections']:>5} {r['faces']:>5} {row}")
        for name, r in results.items():  # the target: all seven <= 2.5x one mask
            print(f"{name}: all seven masks {r['all_seven']:.1f} ms = {r['all_seven_ratio']:.2f}x "
                  f"one mask ({r['total']:.1f} ms)")  # fmt: skip
    if args.json:
        setup, results = runs[0]
        summary = {
            "total_ms_p50": results["one_face"]["total"],
            "setup": setup,
            "photos": results,
            "size": [WIDTH, HEIGHT],
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "weights": weights,
        }
        if args.baseline:
            summary["baseline"] = {"setup": runs[1][0], "photos": runs[1][1]}
        summary["memory"] = worker_memory(list(jpegs.values()), 100, args.workers)
        print_memory(summary["memory"])
        print(json.dumps(summary))
    return 0


def load_average() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def busy_and_memory(args, jpegs: dict[str, bytes]) -> int:
    """``--busy`` and/or ``--memory``: each measured alone."""
    from core import threads

    summary: dict = {"cpus": os.cpu_count(), "load_before": load_average()}
    if args.busy:
        masker, weights = make_masker(args, args.detector, args.backend)
        result = busy_times(masker, jpegs["one_face"], args.mask, args.repeat)
        result.update(threads=threads.count(), usable_cores=threads.usable_cores())
        summary["busy"] = result
        print(f"{WIDTH}x{HEIGHT} JPEG, one face, mask {args.mask}, median of {args.repeat} runs, "
              f"{result['threads']} thread(s) per library on {result['usable_cores']} usable "
              f"core(s), load average {summary['load_before']}")  # fmt: skip
        print(f"idle {result['idle_ms']:.1f} ms (before {result['idle_before_ms']:.1f}, after "
              f"{result['idle_after_ms']:.1f}), one core busy {result['busy_ms']:.1f} ms: "
              f"{result['ratio']:.2f}x idle (target <= 1.6x)")  # fmt: skip
    if args.memory is not None or args.memory_torch:
        photos = args.memory if args.memory is not None else 100
        report = worker_memory(list(jpegs.values()), photos, args.workers, args.memory_torch)
        summary["memory"] = report
        print_memory(report)
    summary["load_after"] = load_average()
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
