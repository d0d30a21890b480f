"""A mix: every face in a photo wears a different mask (issue 26's ``/mask mix``, 🎲).

Faces are taken from left to right; face i wears ``choose(...)[i]``. A mix is all seven
masks in a random order, so up to seven faces all differ; and face i never wears the mask it
wore in the previous mix (``previous``), so a second tap always changes every face. The bot
keeps the previous mix per chat; the command line may keep none.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from masks import catalog


def choose(
    previous: Sequence[int] = (),
    mask_ids: Sequence[int] | None = None,
    rng: random.Random | None = None,
) -> tuple[int, ...]:
    """A random order of ``mask_ids`` (default: every mask's id) in which no position holds
    the id it held in ``previous``."""
    ids = list(mask_ids) if mask_ids is not None else [m.id for m in catalog.masks()]
    rng = rng or random.Random()
    if len(ids) < 2:
        return tuple(ids)
    before = list(previous)[: len(ids)]
    while True:  # a random derangement: about 1 try in e (2.7) succeeds, so this ends fast
        order = ids[:]
        rng.shuffle(order)
        if all(a != b for a, b in zip(order, before, strict=False)):
            return tuple(order)
