"""The message catalogs: complete, in step with bot/texts.py, and within Telegram's limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from telegram.constants import (
    BotCommandLimit,
    BotDescriptionLimit,
    CallbackQueryLimit,
    InlineKeyboardButtonLimit,
    MessageLimit,
)

from bot import groups, i18n, keyboards, settings_menu, texts
from bot.state import ChatSettings
from core.results import Mode
from masks import catalog

TRANSLATED = [language for language in i18n.LANGUAGES if language != i18n.DEFAULT_LANGUAGE]
FIELD = re.compile(r"\{(\w*)\}")
KEYWORDS = {"N_": None, "N_plural": (1, 2)}  # as README's pybabel extract line says
BOT = "facemask_test_bot"


def extracted() -> set[str | tuple[str, str]]:
    """The sentences in bot/texts.py now, as pybabel extract reads them."""
    path = Path(texts.__file__)
    return {message for _, message, _, _ in extract_from_file("python", path, KEYWORDS)}


def catalog_of(language: str) -> Catalog:
    with i18n.catalog_path(language).open("rb") as po:
        return read_po(po)


def fields(text: str) -> list[str]:
    return sorted(FIELD.findall(text))


def test_every_shipped_language_has_a_catalog_and_nothing_else_does() -> None:
    on_disk = {p.parent.parent.name for p in i18n.LOCALES_DIR.glob("*/LC_MESSAGES/*.po")}
    assert on_disk == set(TRANSLATED)
    assert len(i18n.LANGUAGES) >= 8


def test_the_template_is_in_step_with_texts_py() -> None:
    with (i18n.LOCALES_DIR / "facemask.pot").open("rb") as pot:
        template = {message.id for message in read_po(pot) if message.id}
    assert template == extracted(), "run pybabel extract and update (README: Languages)"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_has_every_message_with_its_placeholders(language: str) -> None:
    po = catalog_of(language)
    messages = {message.id: message for message in po if message.id}
    assert set(messages) == extracted()  # nothing missing, nothing obsolete
    for msgid, message in messages.items():
        assert not message.fuzzy, msgid
        if isinstance(msgid, tuple):
            forms = list(message.string)
            assert len(forms) == po.num_plurals, (msgid, forms)
            assert all(form and fields(form) == fields(msgid[1]) for form in forms), forms
        else:
            assert message.string, f"{language}: no translation for {msgid!r}"
            assert fields(message.string) == fields(msgid), (msgid, message.string)
            # emoji and the bullets a message starts with stay
            if not msgid[0].isalnum() and msgid[0] not in "«":
                assert message.string[0] == msgid[0], (msgid, message.string)


def test_no_sentence_is_another_languages() -> None:
    """A sentence pasted into the wrong catalog keeps its placeholders: catch it here."""
    seen: dict[str, str] = {}
    for language in TRANSLATED:
        for message in catalog_of(language):
            text = message.string if isinstance(message.string, str) else message.string[-1]
            if message.id and len(text) > 30:  # short ones ("N95", "Sport") may be the same
                assert text != (message.id if isinstance(message.id, str) else message.id[1])
                assert seen.setdefault(text, language) == language, (text, seen[text], language)


def test_plural_forms_compile_and_pick_the_right_words() -> None:
    faces = {language: i18n.translator(language) for language in i18n.LANGUAGES}
    for language, t in faces.items():
        for n in [*range(0, 30), 101, 111, 1_000_000]:
            assert str(n) in t.plural(texts.FACES, n, count=n), language
    ru, uk = faces["ru"], faces["uk"]
    assert [ru.plural(texts.FACES, n, count=n) for n in (1, 3, 5, 11, 21, 22)] == [
        "1 лицо", "3 лица", "5 лиц", "11 лиц", "21 лицо", "22 лица",
    ]  # fmt: skip
    assert [uk.plural(texts.FACES, n, count=n) for n in (1, 3, 5, 21)] == [
        "1 обличчя", "3 обличчя", "5 облич", "21 обличчя",
    ]  # fmt: skip
    assert faces["en"].plural(texts.FACES, 1, count=1) == "1 face"
    assert faces["de"].plural(texts.FACES, 2, count=2) == "2 Gesichter"


def every_text(t: i18n.Translator) -> dict[str, str]:
    """Everything the bot can say in a chat, as sent, by what it is."""
    masks = catalog.masks()
    help_lines = groups.group_lines(t, "a" * 32, sees_all=True, auto=True)
    help_lines += groups.group_lines(t, "a" * 32, sees_all=False, auto=False)
    sent = {
        name: t(value)
        for name, value in vars(texts).items()
        if name.isupper() and isinstance(value, str)
    }
    sent.update(
        TOO_MANY=t(texts.TOO_MANY, seconds=3600),
        TOO_BIG=t(texts.TOO_BIG, limit=20),
        group_help="\n".join([t(texts.WELCOME), "", *help_lines]),
        unknown=groups.unknown_mask_text("x" * 5000, masks, t),
        masks_list=texts.masks_list(masks, t),
    )
    sent.update({f"error {code}": t(message) for code, message in texts.ERRORS.items()})
    return sent


@pytest.mark.parametrize("language", list(i18n.LANGUAGES))
def test_no_message_exceeds_telegrams_limits(language: str) -> None:
    t = i18n.translator(language)
    for name, text in every_text(t).items():
        assert 0 < len(text) <= MessageLimit.MAX_TEXT_LENGTH, name
    for sentence in texts.ALERTS:  # answerCallbackQuery
        alert = t(sentence, seconds=3600) if "{seconds}" in sentence else t(sentence)
        assert len(alert) <= CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH, alert
    longest = max(catalog.masks(), key=lambda mask: len(t(mask.name)))
    captions = [t(texts.MASKS_CAPTION), texts.caption(longest, 1_000, t)]
    assert all(len(c) <= MessageLimit.CAPTION_LENGTH for c in captions)
    for description in texts.COMMANDS.values():
        assert BotCommandLimit.MIN_DESCRIPTION <= len(t(description))
        assert len(t(description)) <= BotCommandLimit.MAX_DESCRIPTION
    assert len(t(texts.DESCRIPTION)) <= BotDescriptionLimit.MAX_DESCRIPTION_LENGTH
    short = t(texts.SHORT_DESCRIPTION)
    assert len(short) <= BotDescriptionLimit.MAX_SHORT_DESCRIPTION_LENGTH, len(short)


def test_button_data_fits_in_64_bytes() -> None:
    t = i18n.translator("pt_BR")
    markups = [keyboards.mask_keyboard(catalog.masks(), 2**31 - 1, Mode.WHOLE, t)]
    for group in (False, True):
        markups.append(settings_menu.menu_keyboard(t, ChatSettings(), group))
    markups.append(settings_menu.language_keyboard(t, "pt_BR"))
    data = [b.callback_data for m in markups for row in m.inline_keyboard for b in row]
    assert len(data) > 20
    assert all(0 < len(d.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA for d in data)


def test_mask_words_are_the_catalogs_names_and_each_means_one_mask() -> None:
    masks = catalog.masks()
    assert {w for mask in masks for w in (mask.name, mask.label)} == set(texts.MASK_WORDS)
    for language in i18n.LANGUAGES:
        t = i18n.translator(language)
        for mask in masks:
            for word in (t(mask.name), t(mask.label), t(mask.label).upper(), str(mask.id)):
                assert groups.find_mask(word, masks) is mask, (language, word)
    assert groups.find_mask("ЗЛОДЕЙ", masks) is catalog.get(7)
    assert groups.find_mask("черная", masks) is catalog.get(4)  # ё typed as е
    assert groups.find_mask("iki ventilli spor maske", masks) is catalog.get(6)  # Turkish İ
    assert groups.find_mask("«Villain»", masks) is catalog.get(7)
    for unknown in ("dragon", "8", "0", "", "villain mask"):
        assert groups.find_mask(unknown, masks) is None, unknown


@pytest.mark.parametrize(
    ("caption", "argument"),
    [
        ("/mask 3", "3"),
        (f"/mask@{BOT} 7", "7"),
        (f"/mask@{BOT.upper()}   Kötü adam  ", "Kötü adam"),
        ("me! /mask villain\nsecond line", "villain"),
        ("/mask", None),
        (f"/mask@{BOT}", None),
        ("/mask@other_bot 3", None),
        ("/mask@other_bot 3 and /mask 5", "5"),
        ("/masks 3", None),
        ("email a/mask 3", None),
        (None, None),
    ],
)
def test_a_mask_named_in_the_command(caption: str | None, argument: str | None) -> None:
    assert groups.direct_argument(caption, BOT) == argument


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("ru", "ru"),
        ("pt-br", "pt_BR"),
        ("pt-BR", "pt_BR"),
        ("pt", "pt_BR"),
        ("de-AT", "de"),
        ("uk", "uk"),
        ("in", "id"),
        ("id", "id"),
        ("tr", "tr"),
        ("en-US", "en"),
        ("fr", "en"),
        ("zh-hans", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_telegrams_language_codes(code: str | None, language: str) -> None:
    assert i18n.from_telegram(code) == language
    assert i18n.resolve("uk", code) == "uk"  # the chat's choice wins
    assert i18n.resolve(None, code) == language
    assert i18n.resolve("klingon", code) == language  # a language no longer shipped


def test_a_broken_catalog_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "facemask.po"
    broken.write_text('msgid "a"\nmsgstr "b"\nnot a catalog line\n', encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match="facemask.po"):
        i18n.compile_po(broken)
    with pytest.raises(i18n.CatalogError, match="nothing.mo"):
        i18n.read_catalog(tmp_path / "nothing.mo")
    (tmp_path / "bad.mo").write_bytes(b"not a catalog")
    with pytest.raises(i18n.CatalogError, match="bad.mo"):
        i18n.read_catalog(tmp_path / "bad.mo")


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_each_compiled_catalog_is_its_po_compiled_now(language: str) -> None:
    """The bot reads the .mo files: one left behind after a .po edit fails here
    (./run catalogs compiles them)."""
    assert i18n.compiled_path(language).read_bytes() == i18n.compile_po(
        i18n.catalog_path(language)
    ), "run ./run catalogs"
