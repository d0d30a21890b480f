"""Every error a user can meet in a chat has the bot's own sentence in bot/texts.py."""

from __future__ import annotations

import inspect

from bot import texts
from core import errors
from core.errors import FaceMaskError
from serving import jobs

#: what masking a photo can fail with (core.imageio, core.api, the weights); the video codes
#: join this list when the bot takes videos
PHOTO_CODES = {
    "not_an_image", "empty", "truncated", "too_large", "too_small", "no_face", "unknown_mask",
    "weights",
}  # fmt: skip


def error_classes(module: object) -> list[type[FaceMaskError]]:
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, FaceMaskError)
        and value is not FaceMaskError
    ]


def test_every_error_a_chat_can_meet_has_a_sentence() -> None:
    classes = [c for c in error_classes(errors) if c.code in PHOTO_CODES]
    assert {c.code for c in classes} == PHOTO_CODES  # the codes are still core's
    classes += error_classes(jobs)  # every worker error can reach a chat
    missing = sorted({c.code for c in classes} - set(texts.ERRORS))
    assert missing == [], f"add a sentence to bot/texts.py ERRORS for {missing}"
    # the bot's sentence, whatever words travelled with the error
    assert all(texts.error_text(c("internal details")) == texts.ERRORS[c.code] for c in classes)


def test_a_code_without_a_sentence_shows_the_errors_own() -> None:
    error = FaceMaskError("A sentence from somewhere else.")
    error.code = "from_the_future"
    assert texts.error_text(error) == "A sentence from somewhere else."
