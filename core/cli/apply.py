"""``facemask apply INPUT... [-o OUT]``: files, folders, globs and ``-`` (stdin), in parallel.

Planning happens first, in this process, before any model loads: the inputs are expanded
(a folder's photos and videos, ``--recursive`` for its subfolders; a glob; ``-``), every
output is named (beside its input as ``NAME_<mask>.EXT``, or under ``-o DIR`` mirroring the
input tree, or ``-o FILE`` for one input), and an output that exists is skipped unless
``--overwrite``. Then ``--jobs`` worker processes (forked, one model load each) mask the
files, each writing its outputs through a temporary file renamed into place, so that an
interrupted run leaves no half-written picture. Results come back in input order: the
progress bar, ``--report``'s JSON lines and the summary follow it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import core.cli.messages as messages
from core import batch, threads
from core.cli.progress import Progress
from masks import catalog, names

if TYPE_CHECKING:
    from core.api import FaceMasker

log = logging.getLogger(__name__)

#: what a folder's files must end with to be taken as photos or videos
INPUT_EXTENSIONS = {
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".mp4",
    ".mov",
    ".m4v",
    ".webm",
    ".mkv",
    ".avi",
}
_MAGIC = set("*?[")
STDIO = "-"
PR_SET_PDEATHSIG = 1  # Linux prctl(2): a signal this process gets when its parent ends
#: names an earlier run wrote beside its inputs: not inputs of the next run over the folder
OUTPUT_TAGS = tuple(f"_{names.slug(s)}" for s in catalog.masks()) + (f"_{batch.MIX}",)


class UsageError(Exception):
    """A mistake on the command line: said in one sentence, exit status 2."""


# --------------------------------------------------------------------------- planning


@dataclass
class Task:
    index: int
    source: str  # a path, or "-" (stdin)
    key: str  # the input's path relative to its folder or glob: the mirror and the seed
    data: bytes | None = None  # stdin's bytes
    outputs: dict[str, str] = field(default_factory=dict)  # tag -> path (or "-")
    labels: str | None = None  # the path stem of its label files
    explicit: bool = False  # -o named the file: replaced if it exists
    format: str | None = None  # the outputs' format, decided while planning
    status: str | None = None  # decided while planning: "skipped" or "failed"
    error: str | None = None
    message: str | None = None


def _is_magic(text: str) -> bool:
    return any(c in _MAGIC for c in text)


def expand(inputs: list[str], recursive: bool) -> list[tuple[str, str, Path | None]]:
    """(source, key, base folder or None) for every input file, in a stable order; a path that
    does not exist stays in the list (it fails as "missing")."""
    found: list[tuple[str, str, Path | None]] = []
    seen: set[str] = set()

    def add(path: Path, key: str, base: Path | None) -> None:
        real = str(path.resolve()) if path.exists() else str(path)
        if real not in seen:
            seen.add(real)
            found.append((str(path), key, base))

    for item in inputs:
        if item == STDIO:
            if STDIO in seen:
                raise UsageError("'-' (stdin) can be given once")
            seen.add(STDIO)
            found.append((STDIO, "stdin", None))
            continue
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if _folder_input(p, path))
            for p in files:
                add(p, str(p.relative_to(path)), path)
            continue
        if not path.exists() and _is_magic(item):
            parts = path.parts
            fixed = next((i for i, part in enumerate(parts) if _is_magic(part)), len(parts))
            base = Path(*parts[:fixed]) if fixed else Path(".")
            for name in sorted(glob.glob(item, recursive=True)):
                p = Path(name)
                if p.is_file():
                    add(p, str(p.relative_to(base)) if p.is_relative_to(base) else p.name, base)
            continue
        add(path, path.name, None)
    return found


def _folder_input(path: Path, folder: Path) -> bool:
    rel = path.relative_to(folder)
    if any(part.startswith(".") for part in rel.parts) or not path.is_file():
        return False
    return path.suffix.lower() in INPUT_EXTENSIONS and not path.stem.endswith(OUTPUT_TAGS)


def _is_stdout(out: str | None) -> bool:
    if out == STDIO:
        return True
    if out is None:
        return False
    if out in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        return True
    try:
        return os.path.samefile(out, "/dev/stdout") if Path(out).exists() else False
    except OSError:
        return False


def _head(source: str, data: bytes | None) -> bytes:
    if data is not None:
        return data[:16] if data[:3] != b"GIF" else data
    try:
        with open(source, "rb") as f:
            head = f.read(16)
            return head + f.read() if head[:3] == b"GIF" else head
    except OSError:
        return b""


def output_format(head: bytes, args: argparse.Namespace, explicit: str | None) -> str:
    """The format an input's output is written in: --format, else -o FILE's extension, else
    the input's own family (JPEG -> JPEG, WebP -> WebP, other photos -> PNG; a GIF clip ->
    GIF, WebM -> WebM, other videos -> MP4)."""
    from core.video import codec

    video = codec.looks_like_video(head)
    wanted = args.format
    if wanted is not None and (wanted in batch.VIDEO_FORMATS) == video:
        return wanted
    if explicit is not None:
        fmt = batch.EXTENSIONS.get(Path(explicit).suffix.lower())
        if fmt is not None:
            return fmt
    if video:
        return "gif" if head[:3] == b"GIF" else "webm" if head[:4] == b"\x1aE\xdf\xa3" else "mp4"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return "png"


def _tag_name(tag: str) -> str:
    return batch.MIX if tag == batch.MIX else names.slug(catalog.get(int(tag)))


def plan(args: argparse.Namespace, choice: batch.MaskPlan) -> list[Task]:
    found = expand(args.inputs, args.recursive)
    if not found:
        raise UsageError("no photos or videos in " + ", ".join(args.inputs))
    out = args.output
    to_stdout = _is_stdout(out)
    tags = choice.tags
    several_outputs = len(tags) > 1
    many = len(found) > 1 or any(base is not None for _, _, base in found)
    stdin = any(src == STDIO for src, _, _ in found)
    if to_stdout and (many or several_outputs):
        raise UsageError("-o - (stdout) takes one input and one mask")
    if to_stdout and out is not None and sys.stdout.isatty():
        raise UsageError("-o - would write a picture to the terminal; redirect it to a file")
    if stdin and out is None:
        if sys.stdout.isatty():
            raise UsageError("for '-' (stdin), say where the result goes: -o FILE or -o - (stdout)")
        to_stdout = True
    out_dir: Path | None = None
    out_file: Path | None = None
    if out is not None and not to_stdout:
        o = Path(out)
        if o.is_dir() or out.endswith(os.sep) or many:
            if o.exists() and not o.is_dir():
                raise UsageError(f"-o {out}: several outputs need a folder, and this is a file")
            out_dir = o
        else:
            out_file = o
            if Path(out).suffix.lower() not in batch.EXTENSIONS and args.format is None:
                raise UsageError(
                    f"-o {out}: cannot tell the format from its name; end it in .jpg, .png, "
                    ".webp, .mp4, .gif or .webm, or give --format"
                )
    _check_writable(out_dir or (out_file.parent if out_file else None))
    if args.labels:
        _check_writable(Path(args.labels))
    found = _not_ours(found, [out_dir, Path(args.labels) if args.labels else None])

    def name(task: Task, stem: str) -> None:
        """Its outputs (and label files) named after ``stem``, in the mirror of its folder."""
        suffix, rel = batch.SUFFIX[task.format], Path(task.key)
        for tag in tags:
            tagged = f"_{_tag_name(tag)}" if several_outputs else ""
            if to_stdout:
                target = STDIO
            elif out_file is not None:
                target = str(out_file.with_name(out_file.stem + tagged + out_file.suffix))
            elif out_dir is not None:
                target = str(out_dir / rel.parent / (stem + tagged + suffix))
            else:
                target = str(Path(task.source).with_name(f"{stem}_{_tag_name(tag)}{suffix}"))
            task.outputs[tag] = target
        if args.labels:
            task.labels = str(Path(args.labels) / rel.parent / stem)

    tasks = []
    stdin_data = sys.stdin.buffer.read() if stdin else None
    for index, (source, key, _base) in enumerate(found):
        task = Task(index, source, key, stdin_data if source == STDIO else None)
        tasks.append(task)
        if source != STDIO:
            p = Path(source)
            if not p.exists():
                task.status, task.error = "failed", "missing"
                continue
            if not os.access(p, os.R_OK):
                task.status, task.error, task.message = "failed", "unreadable", "permission denied"
                continue
        task.format = output_format(
            _head(source, task.data), args, str(out_file) if out_file else None
        )
        task.explicit = out_file is not None and not to_stdout
        name(task, Path(key).stem)
    for group in _clashes(tasks):
        renamed = _separate(group, name)
        if not args.quiet:
            print(f"facemask: {renamed}", file=sys.stderr)
    _claim_once(tasks)
    for task in tasks:
        if task.status is not None:
            continue
        source = task.source
        if source != STDIO and any(
            t != STDIO and _same_file(t, source) for t in task.outputs.values()
        ):
            task.status, task.error = "failed", "same_as_input"
            continue
        if (
            not args.overwrite
            and not task.explicit
            and not to_stdout
            and all(Path(t).exists() for t in task.outputs.values())
            and _labelled(task)  # a run again with --labels writes what is missing
        ):
            task.status = "skipped"
    return tasks


def _not_ours(
    found: list[tuple[str, str, Path | None]], folders: list[Path | None]
) -> list[tuple[str, str, Path | None]]:
    """The inputs found in folders or by patterns, less those inside our own output or label
    folders: ``facemask apply photos -o photos/masked --recursive`` run again (to resume)
    masked its own outputs again, into photos/masked/masked. A file named by itself stays."""
    ours = [f.resolve() for f in folders if f is not None and f.exists()]
    if not ours:
        return found
    return [
        (source, key, base)
        for source, key, base in found
        if base is None or not any(Path(source).resolve().is_relative_to(f) for f in ours)
    ]


def _clashes(tasks: list[Task]) -> list[list[Task]]:
    """Groups of inputs still to do whose outputs or label files would be the same files
    (``a.tiff`` and ``a.bmp`` both become ``a.png``; ``a.jpg`` and ``a.JPG`` both ``a.jpg``;
    ``x.jpg`` of two folders given, both ``OUT/x.jpg``), in input order."""
    claims: dict[str, list[Task]] = {}
    for task in tasks:
        if task.status is not None:
            continue
        paths = {t for t in task.outputs.values() if t != STDIO}
        if task.labels:
            paths.add(task.labels + ".json")
        for path in paths:
            claims.setdefault(os.path.normcase(os.path.abspath(path)), []).append(task)
    groups: list[list[Task]] = []
    for claim in claims.values():
        if len(claim) > 1 and not any(claim == g for g in groups):
            groups.append(claim)
    return groups


def _separate(group: list[Task], name: Callable[[Task, str], None]) -> str:
    """Each input of a clashing ``group`` its own outputs, its name marked with its own
    extension (``a_tiff.png``, ``a_bmp.png``), or where those are alike with its place among
    them (``x_1.jpg``, ``x_2.jpg``). What was done, for the terminal."""
    marks = [Path(t.key).suffix.lstrip(".") for t in group]
    if not all(marks) or len(set(marks)) < len(marks):
        marks = [str(i + 1) for i in range(len(group))]
    before = next(iter(group[0].outputs.values()))
    for task, mark in zip(group, marks, strict=True):
        name(task, f"{Path(task.key).stem}_{mark}")
    written = ", ".join(f"{t.source} -> {Path(next(iter(t.outputs.values()))).name}" for t in group)
    return f"{len(group)} inputs would all write {before}; each keeps its own: {written}"


def _claim_once(tasks: list[Task]) -> None:
    """An input whose output (or label file) is still another's after :func:`_separate`
    (``a.png`` marked ``a_png.png``, the name of another input's output) fails
    ("same_output") rather than write over it."""
    for claim in _clashes(tasks):
        for task in claim[1:]:
            task.status, task.error = "failed", "same_output"
            task.message = f"its output's name is also {claim[0].source}'s"


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or (
            Path(a).exists() and os.path.samefile(a, b)
        )
    except OSError:
        return False


def _check_writable(folder: Path | None) -> None:
    """The output folder exists (made now) and can be written, before any work is done."""
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot make the folder {folder}: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {folder}: permission denied")


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class Setup:
    """What each worker process needs to build its masker (plain values, pickled once)."""

    choice: batch.MaskPlan
    options: batch.Options
    weights: str | None
    detector: str | None
    threshold: float | None
    min_face: float
    workers: int

    def masker(self):
        return make_masker(self.weights, self.detector, self.threshold, self.min_face, self.workers)


_worker: dict = {}


def make_masker(
    weights: str | None,
    detector_name: str | None,
    threshold: float | None,
    min_face: float,
    workers: int,
):
    """A FaceMasker with the chosen weights and detector, its detections limited by score
    and size; its threads this process's share of the cores among ``workers``."""
    from core.api import FaceMasker
    from core.detection.limits import Limited
    from core.detection.registry import default_detector
    from core.keypoints.landmarks import KeypointPredictor

    threads.configure(workers=workers)
    detector = default_detector(detector_name)
    if threshold is not None or min_face:
        detector = Limited(detector, threshold, min_face)
    predictor = KeypointPredictor.load(weights)
    return FaceMasker(predictor=predictor, detector=detector)


def _init_worker(
    setup: Setup, updates, notices, parent: int, preloaded: FaceMasker | None = None
) -> None:
    """A worker's set-up; ``preloaded``: the parent's masker (:func:`_preload`), handed
    over by the fork itself (a forked process's arguments are not pickled)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's clean stop: just end
    _end_with(parent)
    _worker["setup"], _worker["updates"], _worker["notices"] = setup, updates, notices
    if preloaded is None:
        _worker["masker"] = setup.masker()
    else:
        threads.configure(workers=setup.workers)  # as make_masker would have
        _worker["masker"] = preloaded


def _preload(setup: Setup) -> FaceMasker | None:
    """The workers' masker, built here, once, before they are forked, or None: each worker
    inherits it (its networks and mask pictures shared, copy on write) instead of loading
    its own, ~0.2 s of CPU a worker and ~0.1 s a mask. Only with one thread a worker
    (``--jobs`` at its default: one a core), where loading starts no thread: a forked child
    has none of its parent's threads, and a network that waited on its thread pool's would
    hang. Otherwise, or where it fails here, each worker loads its own as before (and
    reports a failure as before). This process's own thread settings are left as they were."""
    before = _thread_ids()
    if before is None or threads.plan(setup.workers) != 1:
        return None
    try:
        # one thread, as in a worker: OpenCV's pool with more would start threads too
        with threads.planned_for(setup.workers):
            masker = setup.masker()
            # and the run's mask pictures, read and prepared (~0.1 s each) once for all
            style = batch.style_of(setup.options.style, setup.options.pattern_file)
            for mask_id in setup.choice.ids:
                masker.picture(mask_id, style)
    except Exception:  # noqa: BLE001  each worker tries again and reports it
        log.debug("no masker preloaded for the workers", exc_info=True)
        return None
    if _thread_ids() - before:  # (OpenCV's pool, down to one thread, may have ended some)
        log.debug("loading started a thread: each worker loads its own masker")
        return None
    return masker


def _thread_ids() -> set[str] | None:
    """This process's threads, native ones included (Linux), or None where unknown."""
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return None


def _end_with(parent: int) -> None:
    """This worker ends when ``parent`` does, however it ends (killed, it stops no worker):
    Linux's parent-death signal. A worker otherwise waits on its task queue for ever, since
    it holds that pipe's other end itself (a run stopped by ``kill -9`` left two workers of
    ~300 MB each behind)."""
    from core import runtime

    libc = runtime.libc()
    if libc is not None and hasattr(libc, "prctl"):
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before we asked
        os._exit(0)


def _work(task: Task) -> dict:
    # which worker has it, written to the pipe before anything else (a SimpleQueue has no
    # feeder thread to die with it): where this process dies (the system's out-of-memory
    # killer), the parent tells from this that the task is lost, rather than wait for ever
    _worker["notices"].put(task.index)
    return _mask(task)


def _mask(task: Task) -> dict:
    return run_task(_worker["masker"], _worker["setup"], task, _worker["updates"])


def run_task(masker, setup: Setup, task: Task, updates=None) -> dict:
    """Mask one task's input, write its outputs and labels; its report record."""

    def progress(p: float) -> None:
        if updates is not None:
            with contextlib.suppress(Exception):
                updates.put_nowait((task.index, p))

    source: str | bytes = task.data if task.data is not None else task.source
    # the planned format goes to whichever kind the file turns out to be (a photo told to be
    # an MP4 fails as wrong_format)
    fmt = {"photo_format": task.format, "video_format": task.format} if task.format else {}
    options = dataclasses.replace(setup.options, **fmt)
    try:
        result = batch.mask_file(
            masker, source, setup.choice, options, key=task.key, progress=progress
        )
    except Exception as err:  # a bug, not the file: this file fails, the run goes on
        if os.environ.get("FACEMASK_DEBUG"):
            raise
        result = batch.FileResult(
            task.source, "failed", error="internal", message=f"{type(err).__name__}: {err}"
        )
    result.input = task.source
    written: list[dict] = []
    if result.status == "done":
        try:
            for output in result.outputs:
                target = task.outputs[output.tag]
                if target == STDIO:
                    written.append({"path": STDIO, "format": output.format})
                    continue  # the parent writes stdout, after the run
                _write_atomic(Path(target), output.data or b"")
                written.append({"path": target, "format": output.format})
            if task.labels is not None and result.kind == "photo":
                _write_labels(task, result)
        except OSError as err:
            result.status, result.error = "failed", "write_failed"
            result.message = f"{err.filename or ''}: {err.strerror or err}"
            written = [w for w in written if w["path"] == STDIO]
    return record(task, result, written)


def _part_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = _part_name(path)
    try:
        part.write_bytes(data)
        os.replace(part, path)
    except BaseException:  # a full disk: no half-written .part left behind to fill it more
        with contextlib.suppress(OSError):
            part.unlink()
        raise


def _label_file(task: Task, tag: str) -> Path:
    """Where the labels of ``task``'s output for mask ``tag`` go: LABELS/<path>[_<mask>].json
    (beside it, ``_mask.png``)."""
    stem = Path(task.labels)
    name = stem.name + (f"_{_tag_name(tag)}" if len(task.outputs) > 1 else "")
    return stem.with_name(name + ".json")


def _labelled(task: Task) -> bool:
    """Whether every output of ``task`` has its labels (a video has none to have)."""
    if task.labels is None or task.format in batch.VIDEO_FORMATS:
        return True
    return all(_label_file(task, tag).exists() for tag in task.outputs)


def _write_labels(task: Task, result: batch.FileResult) -> None:
    for output in result.outputs:
        base = _label_file(task, output.tag).with_suffix("")
        faces = output.labels or []
        doc = {
            "input": task.source,
            "width": result.width,
            "height": result.height,
            "output": task.outputs[output.tag],
            "faces": faces,
        }
        _write_atomic(base.with_name(base.name + ".json"), (json.dumps(doc) + "\n").encode())
        _write_atomic(base.with_name(base.name + "_mask.png"), output.region or b"")


def record(task: Task, result: batch.FileResult, written: list[dict]) -> dict:
    """One line of --report: what became of one input."""
    line: dict = {
        "input": task.source,
        "status": result.status,
        "error": result.error,
        "message": result.message,
        "kind": result.kind,
    }
    if result.status == "done":
        by_tag = {o.tag: o for o in result.outputs}
        tags = list(task.outputs)
        outs = []
        for tag, w in zip(tags, written):
            o = by_tag.get(tag)
            outs.append({**w, "mask": tag, "masks": list(o.masks) if o else []})
        line.update(width=result.width, height=result.height, outputs=outs)
        if result.kind == "photo":
            line["faces"] = len(result.faces)
            line["boxes"] = [[round(float(v), 2) for v in f.box] for f in result.faces]
            if task.labels is not None:
                line["labels"] = [
                    {"output": task.outputs[o.tag], "faces": o.labels} for o in result.outputs
                ]
        else:
            line["faces"] = result.video["faces_mean"] if result.video else 0
            line.update(result.video or {})
        if any(w["path"] == STDIO for w in written):
            line["stdout"] = [o.data for o in result.outputs]  # taken out before it is printed
    line["ms"] = round(result.ms, 1)
    return line


# --------------------------------------------------------------------------- the run


def jobs_for(args: argparse.Namespace, work: int) -> int:
    wanted = args.jobs or threads.usable_cores()
    return max(1, min(wanted, work))


def run(args: argparse.Namespace) -> int:
    choice = batch.mask_plan(args.mask, args.seed)  # an unknown mask: UnknownMaskError here
    style, pattern_file = args.style, None
    if args.pattern:
        if Path(args.pattern).is_file():
            pattern_file = str(Path(args.pattern).resolve())
        else:
            style = args.pattern
    batch.style_of(style, pattern_file)  # an unknown style or a bad picture: said here, once
    options = batch.Options(
        mode=args.mode.value,
        photo_format=args.format if args.format in batch.PHOTO_FORMATS else None,
        video_format=args.format if args.format in batch.VIDEO_FORMATS else None,
        quality=args.quality,
        keep_metadata=args.keep_metadata,
        labels=args.labels is not None,
        max_seconds=args.max_seconds,
        max_side=args.max_side,
        video_kind=args.kind,
        style=style,
        pattern_file=pattern_file,
    )
    tasks = plan(args, choice)
    work = [t for t in tasks if t.status is None]
    jobs = jobs_for(args, len(work))
    setup = Setup(
        choice,
        options,
        args.weights and str(args.weights),
        args.detector,
        args.threshold,
        args.min_face or 0.0,
        jobs,
    )
    to_stdout = any(STDIO in t.outputs.values() for t in tasks)
    info = sys.stderr  # what a person reads; stdout may carry the picture or --json
    json_out = sys.stderr if to_stdout else sys.stdout
    show_bar = not args.quiet and info.isatty()
    bar = Progress(len(tasks), show_bar, info)
    report = open(args.report, "w", encoding="utf-8") if args.report else None  # noqa: SIM115
    coco = _Coco() if args.labels else None
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    counts = {"done": 0, "skipped": 0, "failed": 0}
    faces = 0.0
    last: dict | None = None
    picture: bytes | None = None
    try:
        # one line a task, in the tasks' order
        for task, line in zip(tasks, _results(tasks, work, setup, jobs, bar)):
            picture = (line.pop("stdout", None) or [None])[0] or picture
            counts[line["status"]] += 1
            faces += float(line.get("faces", 0) or 0)
            if line["status"] == "failed":
                fields = {"reason": line.get("message"), "output": ""}
                bar.write(messages.failed(line["input"], line["error"], line["message"], **fields))
            elif not args.quiet and len(tasks) == 1 and line["status"] == "done":
                bar.write(_done_line(line))
            elif not args.quiet and len(tasks) == 1:
                bar.write(f"facemask: {line['input']}: skipped, its output exists (--overwrite)")
            if report is not None:
                report.write(json.dumps(line, ensure_ascii=False) + "\n")
                report.flush()
            if args.json:
                print(json.dumps(line, ensure_ascii=False), file=json_out, flush=True)
            if coco is not None and line["status"] == "done":
                coco.add(line)
            elif coco is not None and line["status"] == "skipped":
                coco.add_saved(task)  # a resumed run keeps the set whole
            last = line
    except KeyboardInterrupt as stop:
        bar.close()
        _remove_parts(tasks)
        terminated = isinstance(stop, messages.Terminated)  # SIGTERM (core.cli.main)
        print(
            f"facemask: {'stopped (SIGTERM)' if terminated else 'interrupted'} after "
            f"{sum(counts.values())} of {len(tasks)} inputs; partial outputs removed",
            file=info,
        )
        return messages.TERMINATED if terminated else messages.INTERRUPTED
    finally:
        bar.close()
        if report is not None:
            report.close()
    if coco is not None:
        coco.write(Path(args.labels) / "coco.json")
    if picture is not None:
        sys.stdout.buffer.write(picture)
        sys.stdout.flush()
    seconds = time.perf_counter() - started
    summary = {
        **counts,
        "inputs": len(tasks),
        "faces": round(faces, 2),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(_cpu_seconds() - cpu_started, 2),
        "jobs": jobs,
        "seed": choice.seed,
    }
    if len(tasks) == 1 and last is not None:  # one input: its fields, as the old command gave
        summary = {**last, **{k: v for k, v in summary.items() if k not in last}}
        if last.get("outputs"):
            summary["output"] = last["outputs"][0]["path"]
            summary["mask"] = last["outputs"][0]["mask"]
    if not args.quiet:
        rate = counts["done"] / seconds if seconds > 0 else 0.0
        print(
            f"facemask: {counts['done']} done, {counts['skipped']} skipped, "
            f"{counts['failed']} failed; {faces:g} faces; {seconds:.1f} s "
            f"({rate:.1f} files/s, {jobs} job{'s' if jobs > 1 else ''})",
            file=info,
        )
    if args.json:
        print(json.dumps(summary, ensure_ascii=False), file=json_out, flush=True)
    return messages.SOME_FAILED if counts["failed"] else messages.OK


def _done_line(line: dict) -> str:
    outs = ", ".join(o["path"] for o in line.get("outputs", []))
    if line["kind"] == "video":
        size = f"{line['width']}x{line['height']}"
        return (
            f"{outs}: {line['frames']} frames {size} at {line['fps']:g} fps, "
            f"{line['faces']:.2f} faces a frame, {line['ms']:.0f} ms"
        )
    return f"{outs}: {line['faces']} face(s), {line['width']}x{line['height']}, {line['ms']:.0f} ms"


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the workers, once joined)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _results(
    tasks: list[Task], work: list[Task], setup: Setup, jobs: int, bar: Progress
) -> Iterator[dict]:
    """Every task's record, in input order, as the workers finish them."""
    if jobs == 1 or len(work) <= 1:
        masker = setup.masker() if work else None

        class Updates:
            def put_nowait(self, item: tuple[int, float]) -> None:
                bar.partial(*item)

        for task in tasks:
            line = _planned(task) if task.status else run_task(masker, setup, task, Updates())
            bar.advance(task.index)
            yield line
        return
    workers = _Workers(work, setup, jobs, bar)
    try:
        for task in tasks:
            line = _planned(task) if task.status else workers.result(task)
            bar.advance(task.index)
            yield line
        workers.close()
    except BaseException:
        workers.kill()
        raise


class _Workers:
    """The ``--jobs`` worker processes of a run; each task's record when asked, in any order.

    A ``concurrent.futures`` pool, not a ``multiprocessing.Pool``: a worker killed under a
    task (the system's out-of-memory killer) left a Pool waiting for its result for ever, and
    one killed between two tasks held its task queue's lock, so that no other worker got
    one. An executor says that a worker died (``BrokenProcessPool``, every task not finished
    failing with it); then each task that was being masked (the workers' notices, ``_work``)
    is tried again alone, so that only one that kills its worker again fails
    ("worker_died"), and the rest go on in a fresh pool (docs/cli.md)."""

    def __init__(self, work: list[Task], setup: Setup, jobs: int, bar: Progress) -> None:
        self.ctx = worker_context()
        forks = self.ctx.get_start_method() == "fork"
        self.preloaded = _preload(setup) if forks else None  # every pool of this run's
        self.setup, self.jobs, self.bar = setup, jobs, bar
        self.tasks = {task.index: task for task in work}
        self.records: dict[int, dict] = {}
        self.futures: dict[int, Future] = {}
        self.barren = 0  # pools in a row that broke with no task taken
        self.executor = self._start(work, jobs)

    def _start(self, work: list[Task], workers: int) -> ProcessPoolExecutor:
        # queues of its own: a worker killed while writing to one holds its lock for good
        self.updates, self.notices = self.ctx.Queue(), self.ctx.SimpleQueue()
        before = {child.pid for child in multiprocessing.active_children()}
        executor = ProcessPoolExecutor(
            workers, mp_context=self.ctx, initializer=_init_worker,
            initargs=(self.setup, self.updates, self.notices, os.getpid(), self.preloaded),
        )  # fmt: skip
        self.taken: set[int] = set()
        for task in work:
            self.futures[task.index] = executor.submit(_work, task)
        # its processes (forked as the first task went in), and no one else's, to stop
        self.processes = [c for c in multiprocessing.active_children() if c.pid not in before]
        return executor

    def result(self, task: Task) -> dict:
        while task.index not in self.records:
            try:
                self.records[task.index] = self._waited(task)
            except BrokenProcessPool:
                self._recover()
        _drain(self.updates, self.bar)
        return self.records.pop(task.index)

    def _waited(self, task: Task) -> dict:
        """``task``'s record, the workers' progress shown while it is masked;
        ``BrokenProcessPool`` where a worker of its pool died."""
        while True:
            try:
                return self.futures[task.index].result(timeout=0.2)
            except FuturesTimeout:
                _drain(self.updates, self.bar)

    def _recover(self) -> None:
        while not self.notices.empty():
            self.taken.add(self.notices.get())
        unfinished = []
        for index, future in self.futures.items():
            if index in self.records or future.cancelled():
                continue
            if future.done() and future.exception() is None:
                self.records[index] = future.result()  # finished before the worker died
            else:
                unfinished.append(self.tasks[index])
        self.kill()
        suspects = [task for task in unfinished if task.index in self.taken]
        # no task was being masked (a worker died between two): once, the rest go on in a
        # fresh pool; twice in a row, the workers cannot start at all
        self.barren = 0 if suspects else self.barren + 1
        if self.barren > 1:
            for task in unfinished:
                self.records[task.index] = _died(task)
            return
        for task in suspects:
            self.records[task.index] = self._alone(task)
        rest = [task for task in unfinished if task not in suspects]
        self.executor = self._start(rest, self.jobs)

    def _alone(self, task: Task) -> dict:
        """``task`` in a pool of one: its record, or "worker_died" where it kills it again."""
        self.executor = self._start([task], 1)
        try:
            record = self._waited(task)
        except BrokenProcessPool:
            record = _died(task)
        self.kill()  # nothing else is queued there
        return record

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def kill(self) -> None:
        """Stop at once: what is queued is dropped, the workers terminated (Ctrl-C, a worker
        dead)."""
        # the pool's manager thread, which ends once its workers have: waited for below, or
        # it can close its wake-up pipe while Python's exit writes to it (a traceback after
        # Ctrl-C or SIGTERM; CPython 3.11). The executor forgets it in shutdown(wait=False),
        # so it is taken first (an attribute of CPython's executor; None elsewhere).
        manager = getattr(self.executor, "_executor_manager_thread", None)
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(5)
        if manager is not None:
            manager.join(5)


def worker_context() -> multiprocessing.context.BaseContext:
    """How the workers start: forked where the system can (Linux), so that each inherits
    the modules this process imported (numpy, OpenCV, Pillow, PyAV, core: ~0.45 s of CPU a
    process, as much as masking two photos) instead of importing them again; spawned
    elsewhere. Nothing here has started a thread or loaded a network yet: each worker loads
    its own (``_init_worker``)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    import core.api  # noqa: F401  (imported once, here, for every worker)

    return multiprocessing.get_context("fork")


def _drain(updates, bar: Progress) -> None:
    while True:
        try:
            index, p = updates.get_nowait()
        except Exception:
            return
        bar.partial(index, p)


def _died(task: Task) -> dict:
    """The record of a task whose worker died under it; its partial outputs removed."""
    _remove_parts([task])
    task.status, task.error = "failed", "worker_died"
    return _planned(task)


def _planned(task: Task) -> dict:
    line = {
        "input": task.source,
        "status": task.status,
        "error": task.error,
        "message": task.message,
        "kind": None,
        "ms": 0.0,
    }
    if task.status == "skipped":
        line["outputs"] = [{"path": p, "mask": t} for t, p in task.outputs.items()]
    return line


def _remove_parts(tasks: list[Task]) -> None:
    for task in tasks:
        for target in task.outputs.values():
            if target != STDIO:
                with contextlib.suppress(OSError):
                    _part_name(Path(target)).unlink()
        if task.labels:
            stem = Path(task.labels)
            for part in stem.parent.glob(f".{stem.name}*.part") if stem.parent.exists() else ():
                with contextlib.suppress(OSError):
                    part.unlink()


class _Coco:
    """The set's labels as one COCO-style file: images, one annotation per masked face (the
    mask's polygon, its box, the 68 points as keypoints), one category per mask."""

    def __init__(self) -> None:
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, line: dict) -> None:
        for entry in line.get("labels") or []:
            image_id = len(self.images) + 1
            self.images.append(
                {
                    "id": image_id,
                    "file_name": entry["output"],
                    "source": line["input"],
                    "width": line["width"],
                    "height": line["height"],
                }
            )
            for face in entry["faces"] or []:
                xs = [p[0] for p in face["polygon"]] or [0]
                ys = [p[1] for p in face["polygon"]] or [0]
                keypoints = [v for x, y in face["points"] for v in (x, y, 2)]
                self.annotations.append(
                    {
                        "id": len(self.annotations) + 1,
                        "image_id": image_id,
                        "category_id": face["mask"],
                        "segmentation": [[v for p in face["polygon"] for v in p]],
                        "area": face["area"],
                        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                        "iscrowd": 0,
                        "face_box": face["box"],
                        "keypoints": keypoints,
                        "num_keypoints": len(face["points"]),
                    }
                )

    def add_saved(self, task: Task) -> None:
        """A skipped input's labels, as an earlier run wrote them (``_write_labels``)."""
        for tag in task.outputs:
            try:
                doc = json.loads(_label_file(task, tag).read_text(encoding="utf-8"))
                entry = {"output": doc["output"], "faces": doc["faces"]}
                self.add({"input": doc["input"], "width": doc["width"], "height": doc["height"],
                          "labels": [entry]})  # fmt: skip
            except (OSError, ValueError, KeyError):  # none written (a video), or not ours
                continue

    def write(self, path: Path) -> None:
        points = [str(i) for i in range(68)]
        categories = [
            {"id": s.id, "name": names.slug(s), "supercategory": "face_mask", "keypoints": points}
            for s in catalog.masks()
        ]
        doc = {
            "info": {"description": "facemask apply --labels"},
            "images": self.images,
            "annotations": self.annotations,
            "categories": categories,
        }
        _write_atomic(path, (json.dumps(doc) + "\n").encode())


__all__ = ["UsageError", "plan", "run", "run_task"]
