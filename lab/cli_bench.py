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
and the peaks of the run's first and last quarters, to show it stays flat). Then which photos
MaskTheFace masked that ours did not.
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


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def timed(cmd: list[str], cwd: Path, sample: bool = False) -> dict:
    """Run ``cmd``; its wall and CPU seconds and, with ``sample``, its tree's RSS over time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int]] = []

    def watch() -> None:
        while proc.poll() is None:
            samples.append((time.perf_counter() - started, _tree_rss(proc.pid)))
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
        rss = [r for _, r in samples]
        q = max(1, len(rss) // 4)
        out["peak_rss_mb"] = round(max(rss) / 2**20)
        out["peak_rss_first_quarter_mb"] = round(max(rss[:q]) / 2**20)
        out["peak_rss_last_quarter_mb"] = round(max(rss[-q:]) / 2**20)
    return out


def run_ours(folder: Path, out: Path, jobs: int, report: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "core.cli", "apply", str(folder), "-o", str(out),
           "--jobs", str(jobs), "--mask", "1", "--quiet", "--report", str(report)]  # fmt: skip
    result = timed(cmd, ROOT, sample=True)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    result["masked"] = {Path(r["input"]).stem for r in lines if r["status"] == "done"}
    result["faces"] = sum(r.get("faces", 0) for r in lines if r["status"] == "done")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="ours then MaskTheFace, this often")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--mtf", type=Path, default=MTF, help="MaskTheFace's folder ($MASKTHEFACE_DIR)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    mtf_reason = None
    if not (args.mtf / "mask_the_face.py").exists():
        mtf_reason = f"MaskTheFace not found at {args.mtf} (--mtf or MASKTHEFACE_DIR)"
    elif not (args.mtf / "venv" / "bin" / "python").exists():
        mtf_reason = f"no venv at {args.mtf / 'venv'}"
    with tempfile.TemporaryDirectory(prefix="facemask-cli-bench-") as tmp:
        folder = Path(tmp) / "photos"
        build_folder(args.data, args.photos, folder)
        runs: dict[str, list[dict]] = {"facemask": [], "masktheface": []}
        for r in range(args.rounds):
            ours = run_ours(folder, Path(tmp) / "out", args.jobs, Path(tmp) / "report.jsonl")
            runs["facemask"].append(ours)
            print(f"round {r + 1} facemask --jobs {args.jobs}: {_line(ours, args.photos)}",
                  file=sys.stderr)  # fmt: skip
            if mtf_reason is None:
                theirs = run_mtf(args.mtf, folder)
                runs["masktheface"].append(theirs)
                print(f"round {r + 1} MaskTheFace: {_line(theirs, args.photos)}", file=sys.stderr)
    summary = _summary(runs, args, mtf_reason)
    print(json.dumps(summary, indent=None if args.json else 1))
    return 0


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
            "peak_rss_first_quarter_mb": ours.get("peak_rss_first_quarter_mb"),
            "peak_rss_last_quarter_mb": ours.get("peak_rss_last_quarter_mb"),
        },
    }
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
    out["masked_by_masktheface_not_by_us"] = missed[:50]
    out["missed_count"] = len(missed)
    return out


if __name__ == "__main__":
    sys.exit(main())
