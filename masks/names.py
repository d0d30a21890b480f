"""What a person may call a mask: its number, its emoji, or its name or label in any language
the bot speaks, in any case ("3", "🦹", "villain", "ЗЛОДЕЙ", "«Villain»").

The bot (``/mask villain``, inline queries) and the command line (``facemask apply --mask
villain``) both match names here. The translations are the bot's catalogs' own
(``bot/locales``), copied into ``names.json`` because this package imports nothing of the
project's; a test (tests/core/test_cli_names.py) fails while the two differ, and running it as
``python -m tests.core.test_cli_names`` writes the file again.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from masks import catalog
from masks.catalog import MaskSpec

NAMES_PATH = Path(__file__).resolve().parent / "names.json"


def normal(text: str) -> str:
    """Case, spacing, quotes and ё/е never decide whether a name matches."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u0307", "").replace("ё", "е")  # Turkish İ casefolds to i + dot above
    return " ".join(text.strip(" \t\"'«»“”„.,!?").split())


@lru_cache(maxsize=1)
def translations() -> dict[str, dict[str, str]]:
    """Per language code (not English), each English mask name or label and its translation."""
    return json.loads(NAMES_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _ids_by_name() -> dict[str, int]:
    """Every name a mask answers to, normalised, and its id; the first mask to claim a name
    keeps it (English first, then each language in turn)."""
    names: dict[str, int] = {}
    specs = catalog.masks()
    for spec in specs:
        names[normal(spec.emoji)] = spec.id
    for spec in specs:
        for word in (spec.name, spec.label):
            names.setdefault(normal(word), spec.id)
    for words in translations().values():
        for spec in specs:
            for word in (spec.name, spec.label):
                names.setdefault(normal(words.get(word, word)), spec.id)
    return names


def find(name: str, masks: Iterable[MaskSpec] | None = None) -> MaskSpec | None:
    """The mask ``name`` means among ``masks`` (default: the catalog's), or None."""
    pool = {spec.id: spec for spec in (catalog.masks() if masks is None else masks)}
    wanted = normal(name)
    if wanted.isdigit():
        return pool.get(int(wanted))
    mask_id = _ids_by_name().get(wanted)
    return pool.get(mask_id) if mask_id is not None else None


def slug(spec: MaskSpec) -> str:
    """The mask's label as a file-name part: "surgical", "n95-valve", "villain"."""
    return "-".join(normal(spec.label).replace("_", " ").split())
