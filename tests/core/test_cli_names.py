"""masks/names.json holds the bot's translations of the mask names (so the command line
matches names without importing the bot): it must say what the catalogs say.

``python -m tests.core.test_cli_names`` writes it again from the catalogs."""

from __future__ import annotations

import json

from masks import catalog, names


def from_catalogs() -> dict[str, dict[str, str]]:
    from bot import i18n

    return {
        language: {
            w: i18n.translator(language)(w) for m in catalog.masks() for w in (m.name, m.label)
        }
        for language in i18n.LANGUAGES
        if language != i18n.DEFAULT_LANGUAGE
    }


def test_names_json_says_what_the_catalogs_say():
    assert names.translations() == from_catalogs(), "run: python -m tests.core.test_cli_names"


def test_a_mask_by_number_emoji_or_name_in_any_language():
    assert names.find("villain").id == 7 and names.find("ЗЛОДЕЙ").id == 7
    assert names.find("🦹").id == 7 and names.find(" 3 ").id == 3
    assert names.find("dragon") is None and names.find("8") is None


if __name__ == "__main__":
    text = json.dumps(from_catalogs(), ensure_ascii=False, indent=1) + "\n"
    names.NAMES_PATH.write_text(text, encoding="utf-8")
