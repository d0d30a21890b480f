"""The ``facemask`` command line, run as a person runs it: in its own process (small photos,
so that the whole CLI set stays short on two cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import cli
from core.cli import messages

from .conftest import KnownFacePredictor

ROOT = Path(__file__).resolve().parents[2]


def facemask(*args: str, stdin: bytes | None = None, cwd: Path | None = None, timeout=120):
    """``facemask ARGS`` in a fresh interpreter: (status, stdout bytes, stderr text)."""
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return proc.returncode, proc.stdout, proc.stderr.decode()


def last_json(text: bytes | str) -> dict:
    text = text.decode() if isinstance(text, bytes) else text
    return json.loads(text.strip().splitlines()[-1])


def many_photos(folder: Path, picture: np.ndarray, n: int) -> Path:
    """``folder`` made, holding ``n`` copies of ``picture``: p00.jpg, p01.jpg..."""
    folder.mkdir()
    for i in range(n):
        Image.fromarray(picture).save(folder / f"p{i:02d}.jpg")
    return folder


@pytest.fixture(scope="module")
def small(astronaut) -> np.ndarray:
    """The astronaut at 256 px: one face, quick."""
    return np.asarray(Image.fromarray(astronaut).resize((256, 256)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory, small) -> Path:
    """photos/a.jpg, photos/b.png, photos/sub/c.jpg (faces), photos/notes.jpg (not a photo)."""
    root = tmp_path_factory.mktemp("set") / "photos"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(small).save(root / "a.jpg", quality=90)
    Image.fromarray(small[:, ::-1]).save(root / "b.png")
    Image.fromarray(small).save(root / "sub" / "c.jpg", quality=90)
    (root / "notes.jpg").write_bytes(b"shopping list: milk, eggs")
    return root


def test_a_folder_mirrored_under_o_dir_with_a_report(tmp_path, folder):
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    code, stdout, err = facemask("apply", str(folder), "-r", "-o", str(out), "--jobs", "2",
                                 "--mask", "villain", "--report", str(report))  # fmt: skip
    assert code == messages.SOME_FAILED  # notes.jpg failed, the rest were masked
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "a.jpg", "b.png", "sub/c.jpg",
    ]  # fmt: skip
    assert Image.open(out / "b.png").format == "PNG"
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [Path(r["input"]).name for r in lines] == ["a.jpg", "b.png", "notes.jpg", "c.jpg"]
    failed = lines[2]
    assert failed["status"] == "failed" and failed["error"] == "not_an_image"
    assert lines[0]["faces"] == 1 and lines[0]["outputs"][0]["masks"] == [7]
    assert len(lines[0]["boxes"][0]) == 4 and lines[0]["ms"] > 0
    assert "notes.jpg: not a photo or video" in err and "Traceback" not in err
    assert "2 jobs" in err and "3 done, 0 skipped, 1 failed" in err
    # again: everything that exists is skipped, without loading a model
    code, _, err = facemask("apply", str(folder), "-r", "-o", str(out), "--mask", "7")
    assert "0 done, 3 skipped, 1 failed" in err


def test_beside_the_inputs_all_seven_and_never_the_input(tmp_path, small):
    photo = tmp_path / "me.jpg"
    Image.fromarray(small).save(photo, quality=90)
    code, _, err = facemask("apply", str(photo), "--mask", "all", "--jobs", "1")
    assert code == 0, err
    made = sorted(p.name for p in tmp_path.glob("me_*.jpg"))
    slugs = ("surgical", "n95", "n95-valve", "black", "pattern", "sport", "villain")
    assert made == sorted(f"me_{s}.jpg" for s in slugs)
    # a folder run beside the inputs does not take those outputs for inputs
    code, _, err = facemask("apply", str(tmp_path), "--mask", "1")
    assert "0 done, 1 skipped, 0 failed" in err
    before = photo.read_bytes()
    code, _, err = facemask("apply", str(photo), "-o", str(photo))
    assert code == 1 and "would replace the input" in err and photo.read_bytes() == before


def test_format_from_the_extension_or_format_quality_and_stdout(tmp_path, small):
    photo = tmp_path / "in.jpg"
    Image.fromarray(small).save(photo, quality=90)
    for name, fmt in (("o.png", "PNG"), ("o.webp", "WEBP"), ("o.jpeg", "JPEG")):
        code, _, err = facemask("apply", str(photo), "-o", str(tmp_path / name), "-q")
        assert code == 0 and err == "", err
        assert Image.open(tmp_path / name).format == fmt
    code, out, err = facemask("apply", "-", "-o", "-", "--format", "webp", "--quality", "50",
                              stdin=photo.read_bytes())  # fmt: skip
    assert code == 0, err
    from io import BytesIO

    assert Image.open(BytesIO(out)).format == "WEBP"  # stdout holds the picture only
    code, out, err = facemask("apply", str(photo), "-o", "/dev/stdout", "--json")
    assert code == 0 and Image.open(BytesIO(out)).format == "JPEG"  # the summary went to stderr
    assert last_json(err)["faces"] == 1


def test_usage_mistakes_exit_2_before_any_work(tmp_path, small):
    photo = tmp_path / "in.jpg"
    Image.fromarray(small).save(photo)
    assert facemask("apply", str(photo), "--mask", "dragon")[0] == messages.USAGE
    code, _, err = facemask("apply", str(photo), "--bogus")
    assert code == messages.USAGE
    code, _, err = facemask("apply", str(photo), "-o", str(tmp_path / "x.txt"))
    assert code == messages.USAGE and "format" in err
    code, _, err = facemask("apply", str(photo), "-o", "/proc/nope/x.jpg")
    assert code == messages.USAGE and "cannot make the folder" in err
    code, _, err = facemask("apply", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o.jpg"))
    assert code == messages.SOME_FAILED and "no such file" in err and "not an image" not in err


def test_help_version_masks_and_a_closed_pipe():
    code, out, _ = facemask("--help")
    text = out.decode()
    assert code == 0 and "videos" in text and "130" in text
    code, out, _ = facemask("--version")
    assert code == 0 and out.decode().startswith("facemask ")
    code, out, _ = facemask("apply", "--help")
    assert all(o in out.decode() for o in ("--jobs", "--labels", "--min-face", "--threshold"))
    code, out, _ = facemask("masks", "--json")
    assert [m["slug"] for m in last_json(out)["masks"]][-1] == "villain"
    for _ in range(3):  # facemask masks | head -1
        proc = subprocess.run(
            f"{sys.executable} -m core.cli masks | head -1", shell=True, capture_output=True,
            text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert proc.stdout.startswith("1 ") and "Error" not in proc.stderr, proc.stderr


def test_a_weighted_mix_is_reproducible_and_reported_per_face(tmp_path, folder):
    runs = []
    for n in (1, 2):
        report = tmp_path / f"r{n}.jsonl"
        inputs = (str(folder / "a.jpg"), str(folder / "b.png"))
        facemask(
            "apply",
            *inputs,
            "-o",
            str(tmp_path / str(n)),
            "--mask",
            "1:0.5,villain:0.3,4:0.2",
            "--seed",
            "7",
            "--report",
            str(report),
        )
        runs.append([json.loads(line)["outputs"][0]["masks"] for line in report.open()])
    assert runs[0] == runs[1] and all(m[0] in (1, 4, 7) for m in runs[0])


def test_labels_points_polygons_regions_and_coco(tmp_path, folder):
    labels = tmp_path / "labels"
    code, _, err = facemask("apply", str(folder / "a.jpg"), "-o", str(tmp_path / "o.jpg"),
                            "--labels", str(labels))  # fmt: skip
    assert code == 0, err
    doc = json.loads((labels / "a.json").read_text())
    face = doc["faces"][0]
    assert np.asarray(face["points"]).shape == (68, 2) and len(face["polygon"]) > 4
    assert all(v == round(v, 2) for p in face["points"] for v in p)
    region = np.asarray(Image.open(labels / "a_mask.png"))
    assert region.shape == (256, 256) and 0.005 < (region > 127).mean() < 0.5
    coco = json.loads((labels / "coco.json").read_text())
    assert len(coco["images"]) == 1 and coco["annotations"][0]["num_keypoints"] == 68


def test_detection_controls_leave_small_or_unsure_faces_alone(tmp_path, small):
    photo = tmp_path / "in.jpg"
    Image.fromarray(small).save(photo)
    code, _, err = facemask("apply", str(photo), "-o", str(tmp_path / "o.jpg"), "--min-face", "400")
    assert code == 1 and "no face found" in err and "Crop" not in err and "send" not in err
    code, _, _ = facemask("apply", str(photo), "-o", str(tmp_path / "o.jpg"), "--threshold", "0.5",
                          "--detector", "mtcnn")  # fmt: skip
    assert code == 0


def test_a_masked_face_only_centerface_finds_is_masked_under_the_detection_controls(
    tmp_path, astronaut, astronaut_points
):
    # a drawn cloth mask MTCNN finds nothing under; its fallback, CenterFace, finds the face.
    # --min-face and --threshold used to drop the fallback: "no face found" (session 20)
    from core.detection.mtcnn import MtcnnFaceDetector
    from training import damage

    rng = np.random.default_rng(7)
    photo, _ = damage.worn_mask(astronaut, astronaut_points, rng, kind="cloth-plain")
    assert not MtcnnFaceDetector().detect(photo)
    Image.fromarray(photo).save(tmp_path / "in.png")
    for controls in (("--min-face", "40"), ("--threshold", "0.5")):
        out = tmp_path / f"out{controls[0]}.png"
        code, _, err = facemask("apply", str(tmp_path / "in.png"), "-o", str(out), *controls)
        assert code == 0, err
        changed = np.abs(np.asarray(Image.open(out), np.int16) - photo).max(axis=2) > 40
        assert changed[130:200, 190:260].mean() > 0.3  # her lower face, masked anew


def test_two_inputs_that_would_write_one_output_each_keep_their_own(tmp_path, small):
    # a.tiff and a.bmp both become a.png; x.jpg of two folders both OUT/x.jpg. One used to
    # overwrite the other, both reported done (session 20)
    for name in ("a.tiff", "a.bmp"):
        Image.fromarray(small).save(tmp_path / name)
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        Image.fromarray(small).save(tmp_path / folder / "x.jpg")
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    code, _, err = facemask(
        "apply", str(tmp_path / "a.tiff"), str(tmp_path / "a.bmp"), str(tmp_path / "one"),
        str(tmp_path / "two"), "-o", str(out), "--mask", "2", "--labels", str(tmp_path / "l"),
        "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "a_bmp.png",
        "a_tiff.png",
        "x_1.jpg",
        "x_2.jpg",
    ]
    assert "a_tiff.png" in err and "x_2.jpg" in err
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    written = [line["outputs"][0]["path"] for line in lines]
    assert len(set(written)) == 4 and all(line["status"] == "done" for line in lines)
    assert sorted(p.name for p in (tmp_path / "l").glob("*.json")) == [
        "a_bmp.json", "a_tiff.json", "coco.json", "x_1.json", "x_2.json",
    ]  # fmt: skip
    # run again: every input is skipped, its own output found
    code, _, err = facemask(
        "apply", str(tmp_path / "a.tiff"), str(tmp_path / "a.bmp"), "-o", str(out)
    )
    assert code == 0 and "2 skipped" in err


def test_an_input_whose_marked_name_is_another_inputs_fails_rather_than_overwrite(tmp_path, small):
    from core.cli import apply

    for name in ("a.png", "a.jpg", "a_png.png"):
        Image.fromarray(small).save(tmp_path / name)
    args = cli.parser().parse_args(
        ["apply", str(tmp_path), "-o", str(tmp_path / "out"), "--format", "png"]
    )
    tasks = apply.plan(args, apply.batch.mask_plan(args.mask, 0))
    outputs = {
        Path(t.source).name: (t.status, Path(next(iter(t.outputs.values()))).name) for t in tasks
    }
    # a.png and a.jpg both a.png: marked a_png.png and a_jpg.png; a_png.png is an input's own
    assert outputs["a.jpg"] == (None, "a_jpg.png")
    assert outputs["a.png"][1] == outputs["a_png.png"][1] == "a_png.png"
    assert sorted(outputs[n][0] or "" for n in ("a.png", "a_png.png")) == ["", "failed"]
    failed = next(t for t in tasks if t.status == "failed")
    assert failed.error == "same_output" and "rename one" in cli.messages.describe(
        failed.error, failed.message
    )


def test_a_run_again_into_a_folder_inside_its_input_leaves_its_own_outputs_alone(tmp_path, small):
    # it used to mask its outputs again, into photos/out/out (session 20)
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(small).save(photos / "a.jpg")
    Image.fromarray(small).save(photos / "sub" / "b.jpg")
    run = ("apply", str(photos), "-o", str(photos / "out"), "--recursive", "--mask", "1",
           "--labels", str(photos / "labels"))  # fmt: skip
    code, _, err = facemask(*run)
    assert code == 0 and "2 done" in err, err
    code, _, err = facemask(*run)
    assert code == 0 and "0 done, 2 skipped" in err, err
    assert not (photos / "out" / "out").exists() and not (photos / "out" / "labels").exists()


def test_a_resumed_run_keeps_the_whole_set_in_coco_json_and_writes_missing_labels(tmp_path, small):
    # a run again rewrote coco.json with only what it masked itself: a stopped run of
    # thousands of photos, resumed, listed the last few (session 20)
    photos, out, labels = tmp_path / "photos", tmp_path / "out", tmp_path / "labels"
    photos.mkdir()
    Image.fromarray(small).save(photos / "a.jpg")
    code, _, err = facemask("apply", str(photos), "-o", str(out), "--mask", "1")
    assert code == 0, err  # first without labels
    Image.fromarray(small).save(photos / "b.jpg")

    def coco() -> list[str]:
        doc = json.loads((labels / "coco.json").read_text())
        assert len(doc["annotations"]) == len(doc["images"])  # one face each
        return sorted(Path(i["source"]).name for i in doc["images"])

    run = ("apply", str(photos), "-o", str(out), "--mask", "1", "--labels", str(labels))
    code, _, err = facemask(*run)  # a.jpg's output exists, its labels do not: not skipped
    assert code == 0 and "2 done, 0 skipped" in err, err
    assert coco() == ["a.jpg", "b.jpg"]
    Image.fromarray(small).save(photos / "c.jpg")
    code, _, err = facemask(*run)
    assert code == 0 and "1 done, 2 skipped" in err, err
    assert coco() == ["a.jpg", "b.jpg", "c.jpg"]
    code, _, err = facemask(*run)
    assert code == 0 and "0 done, 3 skipped" in err, err
    assert coco() == ["a.jpg", "b.jpg", "c.jpg"]


def test_a_worker_killed_under_a_photo_loses_that_photo_alone_and_the_run_ends(tmp_path, astronaut):
    # the system's out-of-memory killer takes a worker: the run used to wait for its photo
    # for ever (session 20)
    src = many_photos(tmp_path / "many", astronaut, 40)
    report = tmp_path / "report.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "apply", str(src), "-o", str(tmp_path / "out"),
         "--jobs", "2", "--mask", "all", "--report", str(report)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (report.exists() and len(report.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline and proc.poll() is None, "no photo masked"
            time.sleep(0.05)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGKILL)  # a worker, busy with a photo
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 40
    lost = [line for line in lines if line["status"] != "done"]
    assert len(lost) <= 1 and all(line["error"] == "worker_died" for line in lost)
    assert proc.returncode == (1 if lost else 0)
    if lost:
        assert "run again to retry it" in err.decode()
        name = Path(lost[0]["input"]).stem
        assert not list((tmp_path / "out").glob(f"{name}_*")), "its partial outputs left"
    assert sum(line["status"] == "done" for line in lines) == 40 - len(lost)


# ``facemask apply``, its workers' _mask replaced by one that dies on p03.jpg (as the system's
# out-of-memory killer would take it), in a fresh interpreter: forked from a test process
# that has run others, a worker can hang on a lock another thread held
DEADLY = """
import os, signal, sys
from core import cli
from core.cli import apply

masking = apply._mask

def deadly(task):
    if task.key == "p03.jpg":
        os.kill(os.getpid(), signal.SIGKILL)
    return masking(task)

apply._mask = deadly
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_photo_that_kills_its_worker_every_time_fails_alone(tmp_path, small):
    src = many_photos(tmp_path / "many", small, 8)
    report = tmp_path / "report.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", DEADLY, "apply", str(src), "-o", str(tmp_path / "out"),
         "--jobs", "2", "--report", str(report)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120,
    )  # fmt: skip
    lines = {Path(x["input"]).name: x for x in map(json.loads, report.read_text().splitlines())}
    assert proc.returncode == messages.SOME_FAILED and len(lines) == 8, proc.stderr.decode()
    assert lines.pop("p03.jpg")["error"] == "worker_died"
    assert "run again to retry it" in proc.stderr.decode()
    assert all(line["status"] == "done" for line in lines.values())  # tried again, masked
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(lines)


# ``facemask apply`` in a fresh interpreter, each masker it builds written down with the
# process that built it; "thread" as the second argument: building one starts a thread
COUNTED = """
import os, sys, threading
from core import cli
from core.cli import apply

making = apply.make_masker

def counted(*args):
    with open(sys.argv[1], "a") as log:
        log.write(f"{os.getpid()}\\n")
    if sys.argv[2] == "thread":
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    return making(*args)

apply.make_masker = counted
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.mark.parametrize("case", ["one thread", "two threads", "loading starts a thread"])
def test_workers_share_one_masker_built_before_them_where_each_runs_one_thread(
    tmp_path, small, case
):
    src = many_photos(tmp_path / "many", small, 6)
    built = tmp_path / "built.txt"
    threads = "2" if case == "two threads" else "1"
    starts = "thread" if case == "loading starts a thread" else "-"
    proc = subprocess.Popen(
        [sys.executable, "-c", COUNTED, str(built), starts, "apply", str(src), "-o",
         str(tmp_path / "out"), "--jobs", "2", "--json"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "FACEMASK_THREADS": threads},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert last_json(out)["done"] == 6
    makers = built.read_text().split()
    if case == "one thread":  # built once, by the command itself; its workers inherit it
        assert makers == [str(proc.pid)]
    elif case == "two threads":  # a network's thread pool would not survive the fork
        assert len(makers) == 2 and str(proc.pid) not in makers
    else:  # the command's masker is not handed on: each worker builds its own
        assert makers[0] == str(proc.pid) and len(set(makers[1:]) - {str(proc.pid)}) == 2


def test_ctrl_c_stops_cleanly_and_removes_partial_outputs(tmp_path, small):
    src = many_photos(tmp_path / "many", small, 40)
    out = tmp_path / "out"
    # Ctrl-C as in a terminal: a suite started in the background (``./run test &``) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt for it
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "apply", str(src), "-o", str(out), "--jobs", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline and not (out.exists() and any(out.glob("p*.jpg"))):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == messages.INTERRUPTED, text
    assert "Traceback" not in text and len(text.splitlines()) <= 3
    assert not list(out.glob(".*.part"))


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _gone(pids: list[int], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_run_leaves_no_worker_and_a_terminated_one_no_partial_output(
    tmp_path, astronaut, how
):
    # SIGTERM (a scheduler's time limit) ended the command at once, its partial outputs left
    # and its workers waiting for ever; killed, it left them too (session 20)
    src, out = many_photos(tmp_path / "many", astronaut, 40), tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "apply", str(src), "-o", str(out), "--jobs", "2",
         "--mask", "all"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline and not (out.exists() and any(out.glob("p*.jpg"))):
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    assert _gone(workers), "its workers are still running"
    if how == "SIGTERM":
        text = err.decode()
        assert proc.returncode == messages.TERMINATED, text
        assert "stopped (SIGTERM)" in text and "Traceback" not in text
        assert not list(out.glob(".*.part"))


# ``facemask apply`` in a fresh interpreter, saying after its workers are stopped how many
# of their pools' manager threads still run
WATCHED = """
import sys, threading
from concurrent.futures import process
from core import cli
from core.cli import apply

kill = apply._Workers.kill

def watched(self):
    kill(self)
    left = [t for t in threading.enumerate() if isinstance(t, process._ExecutorManagerThread)]
    print(f"manager threads left: {len(left)}", file=sys.stderr)

apply._Workers.kill = watched
sys.exit(cli.main(sys.argv[1:]))
"""


def test_stopping_the_workers_waits_for_their_pools_manager_thread(tmp_path, small):
    # left running, it closed its wake-up pipe while Python's exit wrote to it: a traceback
    # after "stopped (SIGTERM)", now and then (CPython 3.11; session 20's join joined nothing,
    # the executor forgets its thread in shutdown(wait=False))
    src, out = many_photos(tmp_path / "many", small, 40), tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHED, "apply", str(src), "-o", str(out), "--jobs", "2",
         "--mask", "all"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline and not (out.exists() and any(out.glob("p*.jpg"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    text = err.decode()
    assert proc.returncode == messages.TERMINATED, text
    assert "manager threads left: 0" in text and "Traceback" not in text


def test_a_write_that_fails_leaves_no_partial_file(tmp_path, monkeypatch):
    from core.cli import apply

    def full(src, dst):  # the disk filled up as the output was put in place
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(apply.os, "replace", full)
    with pytest.raises(OSError):
        apply._write_atomic(tmp_path / "out" / "a.jpg", b"x" * 1000)
    assert list((tmp_path / "out").iterdir()) == []


def test_landmarks_json_on_stdout_rounded_to_hundredths(tmp_path, small):
    photo = tmp_path / "in.jpg"
    Image.fromarray(small).save(photo)
    code, out, err = facemask("landmarks", str(photo))
    assert code == 0, err
    points = json.loads(out)["faces"][0]["points"]
    assert all(len(repr(v).split(".")[-1]) <= 2 for p in points for v in p)


def test_gallery_shows_seven_masks_and_the_landmarks(astronaut, astronaut_points):
    from core.api import FaceMasker

    masker = FaceMasker(predictor=KnownFacePredictor([astronaut_points]))
    picture = cli.gallery(masker, astronaut, tile_height=200)
    assert picture.shape[0] == 400 and picture.shape[1] > 4 * 150
    w = picture.shape[1] // 4
    tiles = [
        picture[r * 200 : (r + 1) * 200, c * w : (c + 1) * w] for r in range(2) for c in range(4)
    ]
    for a in range(8):
        for b in range(a + 1, 8):
            assert np.abs(tiles[a].astype(int) - tiles[b]).mean() > 1


def test_every_error_code_has_terminal_words_without_chat_talk():
    from core import errors

    codes = {
        c.code for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.FaceMaskError)
    } - {"error"}  # fmt: skip
    for code in codes:
        text = messages.describe(code, "core's sentence", reason="r", output="o")
        assert "Crop" not in text and "send" not in text.lower(), code


def test_mix_colour_and_pattern_styles_from_the_command_line(tmp_path, small):
    """``--mask mix`` gives two faces different masks; ``--color``/``--pattern`` restyle the
    cloth (the mask's pixels change, the rest of the photo does not); a bad style is usage."""
    two = tmp_path / "two.png"
    Image.fromarray(np.hstack([small, small[:, ::-1]])).save(two)
    report = tmp_path / "r.jsonl"
    code, _, err = facemask("apply", str(two), "--mask", "mix", "--seed", "3",
                            "-o", str(tmp_path / "mix.png"), "--report", str(report))  # fmt: skip
    assert code == 0, err
    (line,) = [json.loads(x) for x in report.open()]
    masks = line["outputs"][0]["masks"]
    assert len(masks) == 2 and masks[0] != masks[1], masks

    outs = {}
    for name, extra in [
        ("plain", ()),
        ("navy", ("--color", "navy")),
        ("stripes", ("--pattern", "stripes")),
        ("own", ("--pattern", str(two))),
    ]:
        out = tmp_path / f"{name}.png"
        code, _, err = facemask("apply", str(small_file(tmp_path, small)), "-o", str(out), *extra)
        assert code == 0, (name, err)
        outs[name] = np.asarray(Image.open(out).convert("RGB")).astype(int)
    bare = np.asarray(Image.fromarray(small).convert("RGB")).astype(int)
    masked = np.abs(outs["plain"] - bare).sum(-1) > 30  # where the plain mask lies
    for name in ("navy", "stripes", "own"):
        changed = np.abs(outs[name] - outs["plain"]).sum(-1) > 30
        assert changed[masked].mean() > 0.2, name  # the cloth is restyled...
        assert changed[~masked].mean() < 0.01, name  # ...and nothing else
    navy = outs["navy"][masked]
    assert navy[:, 2].mean() > navy[:, 0].mean() + 20  # blue cloth

    code, _, err = facemask("apply", str(two), "--color", "no-such-colour")
    assert code == messages.USAGE and "--color" in err
    code, _, err = facemask("apply", str(two), "--pattern", str(tmp_path / "r.jsonl"))
    assert code == messages.USAGE and "pattern" in err


def small_file(tmp_path: Path, small: np.ndarray) -> Path:
    path = tmp_path / "one.png"
    if not path.exists():
        Image.fromarray(small).save(path)
    return path
