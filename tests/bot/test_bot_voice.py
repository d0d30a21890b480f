"""One voice per edge: every sentence a chat sees comes from bot/texts.py (translated).

Two checks, both on the source: no module of bot/ says a sentence of its own (a string with
words in it passed to reply_text, send_message, answer, edit_message_text, a button, a caption
or a title), and every error code that core or serving can raise towards the bot has its
sentence in texts (otherwise ``texts.error_text`` would show a chat core's own
English sentence, which is written for a terminal).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot import texts
from core.errors import FaceMaskError

ROOT = Path(__file__).resolve().parents[2]
#: the homes of the bot's words: texts.py for chats (with the locales)
HOMES = {"bot/texts.py"}
#: the call that says something -> the position of what it says (None: keywords only)
SAYING = {
    "reply_text": 0,
    "reply_html": 0,
    "reply_markdown": 0,
    "edit_text": 0,
    "edit_message_text": 0,
    "answer": 0,  # a callback query's toast or alert
    "send_message": 1,
    "InlineKeyboardButton": 0,
    "InlineQueryResultsButton": 0,
    "reply_photo": None,
    "send_photo": None,
}
#: keyword arguments that a chat shows
SAID_KEYWORDS = {"text", "caption", "title", "description", "short_description"}
#: calls that speak to a terminal, not a chat (bot/__main__.py's command line)
TERMINAL = {"ArgumentParser", "add_argument", "add_argument_group"}
LETTER = re.compile(r"[^\W\d_]")
#: error codes no chat meets: the bot sends only modes it made
NOT_IN_CHATS = {"unknown_mode"}
#: the terminal's edge: the command line (core.cli) and its batches of files (core.batch), which
#: the bot's path never reaches, word their own errors
TERMINAL_ONLY = ("core/cli/", "core/batch.py")


def worded(node: ast.AST) -> bool:
    """Whether ``node`` is (or is built from) a string literal with a word in it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return LETTER.search(node.value) is not None
    if isinstance(node, ast.JoinedStr):
        return any(worded(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp):
        return worded(node.left) or worded(node.right)
    if isinstance(node, ast.IfExp):
        return worded(node.body) or worded(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in ("format", "join"):
            return worded(node.func.value)
    return False


def own_sentences(source: str, filename: str) -> list[str]:
    """``file:line: expression`` for each sentence said in ``source`` outside texts."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = getattr(func, "attr", None) or getattr(func, "id", None)
        if name in TERMINAL:
            continue
        said = [keyword.value for keyword in node.keywords if keyword.arg in SAID_KEYWORDS]
        position = SAYING.get(name)
        if position is not None and len(node.args) > position:
            said.append(node.args[position])
        found += [f"{filename}:{s.lineno}: {ast.unparse(s)[:80]}" for s in said if worded(s)]
    return found


def test_the_bot_says_nothing_outside_texts() -> None:
    found = []
    for path in sorted((ROOT / "bot").glob("*.py")):
        name = str(path.relative_to(ROOT))
        if name not in HOMES:
            found += own_sentences(path.read_text(encoding="utf-8"), name)
    assert found == []


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ('await m.reply_text("Hello there")', True),
        ('await bot.send_message(chat, f"{n} photos masked")', True),
        ('await query.answer("Done!", show_alert=True)', True),
        ('await bot.send_photo(chat, image, caption="masked")', True),
        ('InlineKeyboardButton("Crop", callback_data="crop:1")', True),
        ('await m.reply_text("Hi " + name)', True),
        ("await m.reply_text(t(texts.HELP), do_quote=True)", False),
        ('await m.reply_text("\\n".join(lines))', False),
        ('InlineKeyboardButton(f"✓ {name}", callback_data=data)', False),
        ("await bot.send_message(chat, text)", False),
        ('argparse.ArgumentParser(description="Run the bot")', False),
    ],
)
def test_the_scan_sees_a_sentence_and_only_that(source: str, said: bool) -> None:
    assert bool(own_sentences(f"async def f():\n    {source}\n", "bot/probe.py")) is said


def error_codes() -> dict[str, str]:
    """Every error code core and serving define on the bot's path (``code = "..."`` in a
    class), by where."""
    codes = {}
    for package in ("core", "serving"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if str(path.relative_to(ROOT)).startswith(TERMINAL_ONLY):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                for statement in node.body:
                    if (
                        isinstance(statement, ast.Assign)
                        and [ast.unparse(t) for t in statement.targets] == ["code"]
                        and isinstance(statement.value, ast.Constant)
                    ):
                        where = f"{path.relative_to(ROOT)}:{node.name}"
                        codes[statement.value.value] = where
    return codes


def test_every_error_a_chat_can_meet_has_its_sentence_in_texts() -> None:
    codes = error_codes()
    assert {"no_face", "busy", "cancelled"} <= codes.keys()  # the scan finds them
    unsaid = {}
    for code, where in codes.items():
        error = FaceMaskError("core's own sentence, for a terminal")
        error.code = code
        if code not in NOT_IN_CHATS and texts.error_text(error) == str(error):
            unsaid[code] = where
    assert unsaid == {}
