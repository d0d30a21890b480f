"""The weight files the product ships in ``core/weights``, each checked before it is used.

Every file there is listed in ``core/weights/MANIFEST.json`` with its SHA-256, where it came
from and its licence (THIRD_PARTY.md says the same for people). A file whose bytes differ
from the manifest is refused with its name, never run: a damaged download, a half-written
copy or a swapped file fails loudly at start, not as odd masks later.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from core.errors import WeightsError

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = WEIGHTS_DIR / "MANIFEST.json"


@cache
def manifest() -> dict[str, dict]:
    """File name -> its entry (sha256, source, licence) in ``core/weights/MANIFEST.json``."""
    try:
        entries = json.loads(MANIFEST.read_text())["files"]
    except (OSError, ValueError, KeyError) as err:
        raise WeightsError(f"the weights manifest {MANIFEST} could not be read: {err}") from err
    return {entry["file"]: entry for entry in entries}


def verify_file(path: Path, sha256: str) -> Path:
    """``path`` if its bytes have this SHA-256; else a :class:`WeightsError` naming it."""
    _verify(path.resolve(), sha256)
    return path


@cache
def _verify(path: Path, sha256: str) -> None:  # once per file and process
    from core.runtime import file_sha256

    if not path.is_file():
        raise WeightsError(f"weight file {path} is missing")
    found = file_sha256(path)
    if found != sha256:
        raise WeightsError(
            f"weight file {path.name} is damaged or not ours: SHA-256 {found[:16]}..., "
            f"expected {sha256[:16]}... (reinstall the package or restore the file)"
        )


def weight_file(name: str) -> Path:
    """The shipped file ``name`` in ``core/weights``, checked against the manifest."""
    entry = manifest().get(name)
    if entry is None:
        raise WeightsError(f"{name} is not listed in {MANIFEST.name}")
    return verify_file(WEIGHTS_DIR / name, entry["sha256"])
