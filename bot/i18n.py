"""The bot's languages: gettext catalogs compiled from ``bot/locales`` and who speaks what.

English is the source language: the sentences in :mod:`bot.texts` are the message ids. Every
other shipped language has ``bot/locales/<code>/LC_MESSAGES/facemask.po``, compiled once into
the ``facemask.mo`` beside it (``./run catalogs``, with Babel, a development tool; a test
fails while a ``.mo`` differs from its ``.po``), which the bot reads with the standard
library's gettext at start (:func:`load_all`).

A chat's language is its /settings choice, else the person's Telegram ``language_code``, else
English (:func:`resolve`).
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telegram import Update

    from bot.state import ChatState

logger = logging.getLogger(__name__)

DOMAIN = "facemask"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"

#: every shipped language by its catalog's code, named in itself (the /settings menu)
LANGUAGES = {
    "en": "English",
    "ru": "Русский",
    "es": "Español",
    "pt_BR": "Português (Brasil)",
    "de": "Deutsch",
    "uk": "Українська",
    "tr": "Türkçe",
    "id": "Bahasa Indonesia",
}
#: Telegram language codes that mean a shipped language by another name: ours is Brazilian
#: Portuguese, and some Android phones still send Indonesian's old code "in"
_ALIASES = {"pt": "pt_BR", "in": "id"}


class CatalogError(RuntimeError):
    """A message catalog that cannot be read; the bot does not start with a broken language."""


@dataclass(frozen=True)
class Plural:
    """A sentence with a number in it, in English's two forms (other languages have their own)."""

    singular: str
    plural: str


class Translator:
    """One language's sentences: ``t(texts.TOO_MANY, seconds=5)``, ``t.plural(texts.FACES, 3)``."""

    def __init__(self, language: str, catalog: gettext.NullTranslations) -> None:
        self.language = language
        self._catalog = catalog

    def __call__(self, message: str, /, **fields: object) -> str:
        text = self._catalog.gettext(message)
        return text.format(**fields) if fields else text

    def plural(self, message: Plural, n: int, /, **fields: object) -> str:
        text = self._catalog.ngettext(message.singular, message.plural, n)
        return text.format(**fields) if fields else text

    def __repr__(self) -> str:
        return f"Translator({self.language!r})"


ENGLISH = Translator(DEFAULT_LANGUAGE, gettext.NullTranslations())


def catalog_path(language: str) -> Path:
    """The language's translations as people edit them (``.po``)."""
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compiled_path(language: str) -> Path:
    """The same compiled (``.mo``), as the bot reads it."""
    return catalog_path(language).with_suffix(".mo")


@functools.cache
def translator(language: str) -> Translator:
    """The translator for a shipped language; English for anything else."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return ENGLISH
    return Translator(language, read_catalog(compiled_path(language)))


def read_catalog(path: Path) -> gettext.GNUTranslations:
    """A compiled catalog (``.mo``)."""
    try:
        with path.open("rb") as mo:
            return gettext.GNUTranslations(mo)
    except Exception as error:  # missing file, not a catalog, a malformed plural expression
        raise CatalogError(f"cannot read the message catalog {path}: {error}") from error


def compile_po(path: Path) -> bytes:
    """A ``.po`` file compiled, as ``pybabel compile`` would (fuzzy entries left out).
    Needs Babel (the ``lab`` extra): the bot itself reads the compiled files."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    try:
        with path.open("rb") as po:
            catalog = read_po(po, domain=DOMAIN, abort_invalid=True)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        return compiled.getvalue()
    except Exception as error:  # missing file, bad syntax
        raise CatalogError(f"cannot read the message catalog {path}: {error}") from error


def load_all() -> dict[str, Translator]:
    """Every language, compiled now: a broken catalog stops the start, not a chat later."""
    translators = {language: translator(language) for language in LANGUAGES}
    logger.info("languages: %s", ", ".join(translators))
    return translators


def resolve(chat_language: str | None, user_language: str | None) -> str:
    """The chat's choice, else the person's Telegram language (``"pt-br"`` -> pt_BR), else en."""
    if chat_language in LANGUAGES:
        return chat_language
    return from_telegram(user_language)


def from_telegram(code: str | None) -> str:
    """A Telegram ``language_code`` (IETF: ``"ru"``, ``"pt-br"``, ``"en-US"``) as ours."""
    if not code:
        return DEFAULT_LANGUAGE
    parts = code.replace("_", "-").split("-")
    primary = parts[0].lower()
    if len(parts) > 1:
        full = f"{primary}_{parts[1].upper()}"
        if full in LANGUAGES:
            return full
    if primary in LANGUAGES:
        return primary
    return _ALIASES.get(primary, DEFAULT_LANGUAGE)


def telegram_code(language: str) -> str:
    """The two-letter code Telegram's setMyCommands/setMyDescription take (pt_BR -> pt)."""
    return language.split("_")[0]


def language_of(update: Update, chat: ChatState | None) -> str:
    chosen = chat.settings.language if chat is not None else None
    user = update.effective_user
    return resolve(chosen, user.language_code if user else None)


def for_update(update: Update, chat: ChatState | None) -> Translator:
    """The translator for whoever this update is from, in this chat."""
    return translator(language_of(update, chat))
