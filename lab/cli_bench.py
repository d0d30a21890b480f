"""``python -m lab.cli_bench``: ``facemask apply`` on a folder of real face photos, beside
MaskTheFace's folder mode on the same photos, on the same machine, in the same run.

The folder is built at run time from the face-keypoints data set's images (YouTube Faces
crops, MIT licensed; ``--data``, default /work/shared/data/face-keypoints) in a temporary
folder, never in the repository. Both tools run as a person runs them, in their own
processes, alternating (``--rounds``): ours with ``--jobs`` (2), MaskTheFace
(``--mtf DIR`` or ``$MASKTHEFACE_DIR``, its venv in DIR/venv) with ``--mask_type surgical``;
MaskTheFace is skipped, with the reason, where it is absent. For each run: wall time, CPU
time (user + system of the tool's processes: the machine may be shared), photos/s and
faces/s, and for ours the resident memory of its process tree sampled every 0.2 s (its peak,
and the peaks of the run's first and last quarters, to show it stays flat; and its peak PSS,
which counts the pages the workers share with their parent once). Then which photos
MaskTheFace masked that ours did not. Each round also runs both tools on the folder's first
``--jobs`` photos alone: the difference is each tool's CPU a photo with its start (imports,
models, workers) left out, both tools loaded once (``per_photo_cpu_ratio``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/face-keypoints")
MTF = Path(os.environ.get("MASKTHEFACE_DIR", "/work/mtf"))


def build_folder(data: Path, n: int, folder: Path) -> list[Path]:
    """The first ``n`` photos of the data set (training, then test), copied into ``folder``."""
    photos = sorted((data / "training").glob("*.jpg")) + sorted((data / "test").glob("*.jpg"))
    if len(photos) < n:
        raise SystemExit(f"only {len(photos)} photos under {data}, {n} asked for")
    folder.mkdir(parents=True)
    for p in photos[:n]:
        shutil.copyfile(p, folder / p.name)
    return photos[:n]


#: long side x short side of the group photos: phone photos sent as files and as photos
GROUP_SIZES = ((1280, 960), (1600, 1200), (2048, 1536), (960, 1280), (1200, 1600))


def group_photo(
    samples, rng, size: tuple[int, int], faces: int, eyes_px: tuple[float, float]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One photo of ``size`` (w, h) holding up to ``faces`` real faces (crops of the data
    set's photos, outer eye corners ``eyes_px`` apart) on a face-free background made of
    another photo's shuffled tiles (``lab.detector_bench``), and each face's 68 points."""
    from lab.detector_bench import paste_free, shuffled_background
    from training.data import read_image
    from training.metrics import interocular

    w, h = size
    bg = read_image(samples[int(rng.integers(len(samples)))].path)
    photo = shuffled_background(bg, rng, (h, w))
    taken = np.zeros((h, w), bool)
    placed: list[np.ndarray] = []
    for _ in range(faces):
        s = samples[int(rng.integers(len(samples)))]
        img, pts = read_image(s.path), s.points
        scale = rng.uniform(*eyes_px) / interocular(pts)
        shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=shrink)
        ih, iw = img.shape[:2]
        if ih >= h or iw >= w:
            continue
        spot = paste_free(photo, taken, img, rng, tries=30)
        if spot is not None:
            placed.append((pts + 0.5) * scale - 0.5 + spot)
    return photo, placed


def group_eyes(size: tuple[int, int], faces: int) -> tuple[float, float]:
    """Eye distances for ``faces`` people in a photo of ``size``: room for them all, as a
    group photo frames them, never under 24 px (faces MaskTheFace can find)."""
    room = min(size) / (2.2 * np.sqrt(faces))  # each crop is ~3-4 eye distances wide
    return max(24.0, room * 0.35), max(30.0, room * 0.8)


def group_photos(samples, n: int, seed: int = 0, faces: tuple[int, int] = (2, 12)):
    """(photo, each face's 68 points) for ``n`` group photos as :func:`build_groups` makes
    them: sizes from ``GROUP_SIZES`` in turn, ``faces`` people each."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        size = GROUP_SIZES[k % len(GROUP_SIZES)]
        count = int(rng.integers(faces[0], faces[1] + 1))
        yield group_photo(samples, rng, size, count, group_eyes(size, count))


def build_groups(data: Path, n: int, folder: Path, seed: int = 0,
                 faces: tuple[int, int] = (2, 12)) -> list[Path]:  # fmt: skip
    """``n`` group photos (JPEG, sizes from ``GROUP_SIZES``, ``faces`` people each) of the
    validation people's faces, never trained on, written into ``folder``."""
    from training.data import load_splits

    folder.mkdir(parents=True)
    paths = []
    for k, (photo, _) in enumerate(group_photos(load_splits(data).val, n, seed, faces)):
        path = folder / f"group{k:03d}.jpg"
        cv2.imwrite(str(path), photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def _tree_memory(pid: int) -> tuple[int, int]:
    """Resident bytes of a process and all its descendants, and their proportional share
    (PSS: a page shared by n of them counted 1/n in each, as forked workers share their
    parent's networks), from each one's /proc/PID/smaps_rollup (Linux)."""
    rss = pss = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name == "Rss":
                    rss += int(value.split()[0]) * 1024
                elif name == "Pss":
                    pss += int(value.split()[0]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return rss, pss


def timed(cmd: list[str], cwd: Path, sample: bool = False) -> dict:
    """Run ``cmd``; its wall and CPU seconds and, with ``sample``, its tree's RSS over time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[int, int]] = []  # (RSS, PSS) of the tree

    def watch() -> None:
        while proc.poll() is None:
            samples.append(_tree_memory(proc.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    if sample:
        watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if sample:
        watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rc": proc.returncode}
    if proc.returncode != 0:
        out["stderr_tail"] = err.decode(errors="replace")[-800:]
    if samples:
        rss = [r for r, _ in samples]
        q = max(1, len(rss) // 4)
        out["peak_rss_mb"] = round(max(rss) / 2**20)
        out["peak_pss_mb"] = round(max(p for _, p in samples) / 2**20)
        out["peak_rss_first_quarter_mb"] = round(max(rss[:q]) / 2**20)
        out["peak_rss_last_quarter_mb"] = round(max(rss[-q:]) / 2**20)
    return out


def run_ours(folder: Path, out: Path, jobs: int, report: Path, root: Path = ROOT) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "core.cli", "apply", str(folder), "-o", str(out),
           "--jobs", str(jobs), "--mask", "1", "--quiet", "--report", str(report)]  # fmt: skip
    result = timed(cmd, root, sample=True)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    result["masked"] = {Path(r["input"]).stem for r in lines if r["status"] == "done"}
    result["faces"] = sum(r.get("faces", 0) for r in lines if r["status"] == "done")
    result["boxes"] = {Path(r["input"]).name: r.get("boxes", []) for r in lines}
    return result


def run_mtf(mtf: Path, folder: Path) -> dict:
    masked = Path(str(folder) + "_masked")
    shutil.rmtree(masked, ignore_errors=True)
    cmd = [str(mtf / "venv" / "bin" / "python"), "mask_the_face.py", "--path", str(folder),
           "--mask_type", "surgical"]  # fmt: skip
    result = timed(cmd, mtf)
    files = list(masked.glob("*")) if masked.exists() else []
    # it writes NAME_surgical.jpg per masked face set (one file a photo)
    result["masked"] = {f.stem.rsplit("_surgical", 1)[0] for f in files}
    result["faces"] = len(files)  # at least one face a file; it does not count them
    return result


# MaskTheFace masks every face its detector returns (dlib's HOG, the photo upsampled once:
# utils/aux_functions.py, mask_image); this asks the same detector, in its own venv.
_MTF_PROBE = """
import json, sys, pathlib, cv2, dlib
detect = dlib.get_frontal_face_detector()
out = {}
for p in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    image = cv2.imread(str(p))
    if image is not None:
        out[p.name] = [[r.left(), r.top(), r.right(), r.bottom()] for r in detect(image, 1)]
print(json.dumps(out))
"""


def mtf_faces(mtf: Path, folder: Path) -> dict[str, list[list[int]]]:
    """Each photo's faces as MaskTheFace finds (and masks) them: (x0, y0, x1, y1) boxes."""
    python = str(mtf / "venv" / "bin" / "python")
    done = subprocess.run([python, "-c", _MTF_PROBE, str(folder)], capture_output=True, check=True)
    return json.loads(done.stdout)


def faces_check(theirs: dict[str, list], ours: dict[str, list]) -> dict:
    """Every face MaskTheFace masks that we do not: one of its boxes whose centre lies in
    none of our faces' boxes (slightly widened: its boxes sit lower, over the mouth)."""
    missed = []
    for name, boxes in theirs.items():
        for x0, y0, x1, y1 in boxes:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            inside = any(
                a - 0.15 * (c - a) <= cx <= c + 0.15 * (c - a)
                and b - 0.15 * (d - b) <= cy <= d + 0.15 * (d - b)
                for a, b, c, d in ours.get(name, [])
            )
            if not inside:
                missed.append(f"{name} ({x0}, {y0}, {x1}, {y1})")
    total = sum(len(b) for b in theirs.values())
    return {"masktheface_faces": total, "ours_faces": sum(len(b) for b in ours.values()),
            "missed": missed, "missed_count": len(missed)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=1000)
    p.add_argument("--group", action="store_true",
                   help="group photos (1280x960 to 2048x1536, --faces people each) of the "
                   "validation people's faces, not the data set's single-face crops")  # fmt: skip
    p.add_argument("--faces", type=int, nargs=2, default=(2, 12), metavar=("MIN", "MAX"),
                   help="--group: people a photo")  # fmt: skip
    p.add_argument("--folder", type=Path, help="these photos instead (every file in it)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="ours then MaskTheFace, this often")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--mtf", type=Path, default=MTF, help="MaskTheFace's folder ($MASKTHEFACE_DIR)")
    p.add_argument("--compare", type=Path, metavar="CHECKOUT",
                   help="also run facemask from this checkout (a git worktree of an older "
                   "commit), in every round beside ours")  # fmt: skip
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    mtf_reason = None
    if not (args.mtf / "mask_the_face.py").exists():
        mtf_reason = f"MaskTheFace not found at {args.mtf} (--mtf or MASKTHEFACE_DIR)"
    elif not (args.mtf / "venv" / "bin" / "python").exists():
        mtf_reason = f"no venv at {args.mtf / 'venv'}"
    with tempfile.TemporaryDirectory(prefix="facemask-cli-bench-") as tmp:
        folder = Path(tmp) / "photos"
        if args.folder is not None:
            folder.mkdir()
            for p in sorted(args.folder.iterdir())[: args.photos]:
                shutil.copyfile(p, folder / p.name)
            args.photos = len(list(folder.iterdir()))
        elif args.group:
            build_groups(args.data, args.photos, folder, faces=tuple(args.faces))
        else:
            build_folder(args.data, args.photos, folder)
        probe = None
        if mtf_reason is None and (args.group or args.folder is not None):
            probe = mtf_faces(args.mtf, folder)  # untimed: which faces it masks
        # the first --jobs photos alone: what each tool costs to start (imports, models, its
        # workers) and to mask them; the difference from the whole folder is per photo
        few = Path(tmp) / "few"
        few.mkdir()
        for photo in sorted(folder.iterdir())[: max(1, args.jobs)]:
            shutil.copyfile(photo, few / photo.name)

        def ours_and_start(root: Path) -> dict:
            """facemask from checkout ``root`` on the folder, ``few_cpu_s`` its CPU on the
            first photos alone."""
            out, report = Path(tmp) / "out", Path(tmp) / "report.jsonl"
            run = run_ours(folder, out, args.jobs, report, root)
            run["few_cpu_s"] = _start_cpu(run_ours(few, out, args.jobs, report, root))
            return run

        runs: dict[str, list[dict]] = {"facemask": [], "masktheface": [], "compare": []}
        for r in range(args.rounds):
            if args.compare is not None:
                other = ours_and_start(args.compare.resolve())
                runs["compare"].append(other)
                print(f"round {r + 1} facemask from {args.compare}: {_line(other, args.photos)}",
                      file=sys.stderr)  # fmt: skip
            ours = ours_and_start(ROOT)
            runs["facemask"].append(ours)
            print(f"round {r + 1} facemask --jobs {args.jobs}: {_line(ours, args.photos)}",
                  file=sys.stderr)  # fmt: skip
            if mtf_reason is None:
                theirs = run_mtf(args.mtf, folder)
                theirs["few_cpu_s"] = _start_cpu(run_mtf(args.mtf, few))
                runs["masktheface"].append(theirs)
                print(f"round {r + 1} MaskTheFace: {_line(theirs, args.photos)}", file=sys.stderr)
    summary = _summary(runs, args, mtf_reason)
    if probe is not None:
        summary["faces_check"] = faces_check(probe, runs["facemask"][-1]["boxes"])
    print(json.dumps(summary, indent=None if args.json else 1))
    return 0


def _start_cpu(run: dict) -> float | None:
    """The CPU of a run on the first photos alone; None where it crashed (rc 1 is ours for
    "some photo failed", a photo with no face)."""
    return run["cpu_s"] if run["rc"] in (0, 1) else None


def _per_photo(runs: list[dict], n: int, few: int) -> list[float | None]:
    """Each run's CPU a photo with its start left out, or None where that cannot be told
    (no photos beyond the first ``few``, the short run crashed, or the noise made it <= 0)."""
    out: list[float | None] = []
    for r in runs:
        value = None
        if n > few and r["few_cpu_s"] is not None:
            value = (r["cpu_s"] - r["few_cpu_s"]) / (n - few)
        out.append(value if value is not None and value > 0 else None)
    return out


def _line(run: dict, n: int) -> str:
    return (
        f"{run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU, {n / run['wall_s']:.1f} photos/s, "
        f"{len(run['masked'])} photos masked, rc {run['rc']}"
        + (f", peak {run['peak_rss_mb']} MB" if "peak_rss_mb" in run else "")
    )


def _summary(runs: dict, args: argparse.Namespace, mtf_reason: str | None) -> dict:
    n = args.photos
    ours = min(runs["facemask"], key=lambda r: r["wall_s"])
    out: dict = {
        "photos": n,
        "jobs": args.jobs,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "facemask": {
            "wall_s": [r["wall_s"] for r in runs["facemask"]],
            "cpu_s": [r["cpu_s"] for r in runs["facemask"]],
            "photos_per_s": round(n / ours["wall_s"], 2),
            "faces_per_s": round(ours["faces"] / ours["wall_s"], 2),
            "photos_masked": len(ours["masked"]),
            "faces": ours["faces"],
            "peak_rss_mb": ours.get("peak_rss_mb"),
            "peak_pss_mb": ours.get("peak_pss_mb"),
            "peak_rss_first_quarter_mb": ours.get("peak_rss_first_quarter_mb"),
            "peak_rss_last_quarter_mb": ours.get("peak_rss_last_quarter_mb"),
        },
    }
    if runs["compare"]:
        other = min(runs["compare"], key=lambda r: r["wall_s"])
        out["compare"] = {
            "checkout": str(args.compare),
            "wall_s": [r["wall_s"] for r in runs["compare"]],
            "cpu_s": [r["cpu_s"] for r in runs["compare"]],
            "faces": other["faces"],
            "peak_rss_mb": other.get("peak_rss_mb"),
            "peak_pss_mb": other.get("peak_pss_mb"),
        }
    # each tool loaded once, as the speed issue's own baseline timed them: the CPU of the
    # whole folder less that of its first --jobs photos alone, over the photos left
    few = min(max(1, args.jobs), n)
    each = {tool: _per_photo(tool_runs, n, few) for tool, tool_runs in runs.items() if tool_runs}
    out["per_photo_cpu_s"] = {
        **{tool: [None if v is None else round(v, 4) for v in values]
           for tool, values in each.items()},
        "start_cpu_s": {tool: [r["few_cpu_s"] for r in tool_runs]
                        for tool, tool_runs in runs.items() if tool_runs},
    }  # fmt: skip
    if mtf_reason is not None:
        out["masktheface"] = {"skipped": mtf_reason}
        return out
    theirs = min(runs["masktheface"], key=lambda r: r["wall_s"])
    missed = sorted(theirs["masked"] - ours["masked"])
    out["masktheface"] = {
        "wall_s": [r["wall_s"] for r in runs["masktheface"]],
        "cpu_s": [r["cpu_s"] for r in runs["masktheface"]],
        "photos_per_s": round(n / theirs["wall_s"], 2),
        "photos_masked": len(theirs["masked"]),
    }
    out["wall_ratio"] = round(ours["wall_s"] / theirs["wall_s"], 3)
    out["cpu_ratio"] = round(ours["cpu_s"] / max(theirs["cpu_s"], 1e-9), 3)
    ours_each = [v for v in each["facemask"] if v is not None]
    theirs_each = [v for v in each["masktheface"] if v is not None]
    if ours_each and theirs_each:
        out["per_photo_cpu_ratio"] = round(
            float(np.median(ours_each)) / float(np.median(theirs_each)), 3
        )
    out["masked_by_masktheface_not_by_us"] = missed[:50]
    out["missed_count"] = len(missed)
    return out


if __name__ == "__main__":
    sys.exit(main())
