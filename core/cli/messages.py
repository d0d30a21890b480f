"""What the terminal says: every error code of :mod:`core.errors` (and the command line's own)
worded for a person at a shell: what failed, then what to do. The chat words the same codes
for a chat (bot/texts.py); core's own sentences are the fallback for a code not listed here.

Exit statuses, in one place (``--help`` and README list them from here).
"""

from __future__ import annotations

OK = 0
SOME_FAILED = 1
USAGE = 2
INTERRUPTED = 130
BROKEN_PIPE = 141  # the reader of our output went away (``| head``), as for any Unix tool
TERMINATED = 143  # SIGTERM (a job scheduler's time limit, ``timeout``): stopped as for Ctrl-C


class Terminated(KeyboardInterrupt):
    """SIGTERM, stopping a command as Ctrl-C does (partial outputs removed, workers stopped),
    with its own exit status (``TERMINATED``)."""


EXIT_CODES = (
    (OK, "every input was masked (or skipped: its output already existed)"),
    (SOME_FAILED, "some inputs failed (each is named on stderr and in --report)"),
    (USAGE, "the command line is wrong (an unknown option or mask, an output it cannot write)"),
    (INTERRUPTED, "interrupted (Ctrl-C); partial outputs are removed"),
    (TERMINATED, "stopped by SIGTERM; partial outputs are removed"),
)

FORMATS_PHOTO = "JPEG, PNG, WebP, GIF, BMP or TIFF"
FORMATS_VIDEO = "MP4, MOV, WebM or GIF"

#: code -> what failed; what to do
TERMINAL = {
    # the input
    "missing": "no such file or folder",
    "unreadable": "cannot be read ({reason}); check its permissions",
    "not_an_image": f"not a photo or video this tool reads (photos: {FORMATS_PHOTO}; "
    f"videos: {FORMATS_VIDEO})",
    "empty": "the file is empty (0 bytes)",
    "truncated": "the image is cut off or damaged; copy it again from where it came from",
    "too_large": "the image is over 40 megapixels; scale it down first",
    "too_small": "the image is under 32 px on a side, too small to find a face in",
    "no_face": "no face found; try --mode whole (the whole picture is one face), "
    "or a lower --threshold or --min-face",
    "not_a_video": f"not a video this tool reads ({FORMATS_VIDEO})",
    "video_truncated": "the video is cut off or damaged; copy it again from where it came from",
    "no_video_stream": "the file has sound but no picture",
    "no_frames": "the video has no frames",
    "too_long": "the video is longer than --max-seconds allows; raise it or leave it out",
    "video_too_large": "the video's picture is over 4K (4096x2304); scale it down first",
    "no_face_in_video": "no face in any frame; try --mode whole (the whole frame is one face)",
    "cancelled": "stopped",
    # choices
    "unknown_mask": "{message} (facemask masks lists them)",
    "unknown_mode": "unknown --mode: use faces or whole",
    "unknown_style": "unknown --color or --pattern: a colour (navy, red, #0473e2...) or a "
    "pattern (stripes, dots, checks, camo, hearts, stars, plaid, gradient), or a picture file",
    "pattern_not_image": "the --pattern file is not a picture (JPEG, PNG or WebP)",
    "pattern_too_small": "the --pattern picture is under 64 px on a side",
    "pattern_too_large": "the --pattern picture is over 25 megapixels; scale it down first",
    "pattern_animated": "the --pattern picture is animated; use a still picture",
    "weights": "the keypoint model's weights could not be loaded; check --weights",
    # outputs
    "same_as_input": "the output would replace the input; choose another -o",
    "same_output": "{message}; rename one of them",
    "worker_died": "the worker masking it stopped (killed by the system: out of memory?); "
    "the other inputs went on; run again to retry it",
    "wrong_format": "{message}",
    "write_failed": "could not write {output} ({reason})",
    "internal": "unexpected {message} (a bug: --debug shows where; please report it)",
}


def describe(code: str | None, message: str | None = None, **fields: object) -> str:
    """The terminal's sentence for an error ``code``; ``message`` is core's own wording."""
    template = TERMINAL.get(code or "", "{message}")
    try:
        return template.format(message=message or code, **fields)
    except (KeyError, IndexError):  # a field the caller did not have: core's words will do
        return message or str(code)


def failed(path: str, code: str | None, message: str | None = None, **fields: object) -> str:
    """``facemask: photos/a.jpg: no face found; try ...``"""
    return f"facemask: {path}: {describe(code, message, **fields)}"


def exit_codes_help() -> str:
    return "exit status: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES)
