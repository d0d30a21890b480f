"""The import rules of the house: bot -> serving -> core <- training <- lab; core -> masks;
lab -> serving (to measure a real pool worker).

Checked twice: by reading every import statement of every package (so a rule broken in a
function body or a rarely imported module is caught too), and by importing each package in a
fresh interpreter and looking at ``sys.modules`` (so an import hidden behind another library
or a star import is caught too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: which of our packages each package may import; everything else of ours is forbidden
ALLOWED = {
    "bot": {"serving", "core", "masks"},
    "serving": {"core", "masks"},
    "core": {"masks"},
    "training": {"core", "masks"},
    "lab": {"training", "core", "masks", "serving"},  # it measures real pool workers too
    "masks": set(),
}
#: libraries a package must never import, anywhere
FORBIDDEN_LIBRARIES = {
    "bot": {"torch", "torchvision"},  # the bot's process stays small; the model is in workers
    # what crosses Redis is serving.wire's msgpack: a pickle read from Redis would run code
    "serving": {"telegram", "pickle"},
    "core": {"telegram"},
    "training": {"telegram"},
    "lab": {"telegram"},
    "masks": {"telegram", "torch"},
}
#: modules a package may import only inside a function (not when it is itself imported)
NOT_AT_IMPORT_TIME = {
    # the bot's queue client starts worker processes only in embedded mode
    "bot": {"serving.pool", "serving.worker"},
}
OURS = set(ALLOWED)


@dataclass(frozen=True)
class Import:
    where: str  # "bot/queue.py:18"
    module: str  # absolute, e.g. "serving.jobs"
    at_import_time: bool  # module level (not in a function, not under TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.where} imports {self.module}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, filename: str) -> list[Import]:
    """Every import statement in ``source`` (the module ``module``), relative ones resolved."""
    tree = ast.parse(source, filename=filename)
    package = module.split(".")
    if not filename.endswith("__init__.py"):
        package = package[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            at_import_time = False
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_import_time)
            return
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found.extend(Import(where, a.name, at_import_time) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append(Import(where, module, at_import_time))
            # "from serving import pool" imports serving.pool
            found.extend(
                Import(where, f"{module}.{a.name}", at_import_time)
                for a in node.names
                if a.name != "*"
            )
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time)

    visit(tree, True)
    return found


def files_of(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def imports_in(package: str) -> list[Import]:
    return [
        found
        for path in files_of(package)
        for found in imports_of(
            path.read_text(encoding="utf-8"), module_name(path), str(path.relative_to(ROOT))
        )
    ]


def broken_rules(package: str, imports: list[Import]) -> list[str]:
    """One line per broken rule and place, e.g. ``bot/x.py:3: bot never imports torch``."""
    problems = []
    for found in imports:
        top = found.module.split(".")[0]
        if top in OURS and top != package and top not in ALLOWED[package]:
            problems.append(f"{found.where}: {package} may not import {top}")
        if top in FORBIDDEN_LIBRARIES[package]:
            problems.append(f"{found.where}: {package} never imports {top}")
        for lazy in NOT_AT_IMPORT_TIME.get(package, ()):
            if found.at_import_time and (found.module + ".").startswith(lazy + "."):
                problems.append(f"{found.where}: {package} imports {lazy} only inside a function")
    return list(dict.fromkeys(problems))  # "from a import b" is seen as a and as a.b


def test_the_allowed_imports_have_no_cycle() -> None:
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"cycle: {' -> '.join((*path, package))}"
        if package not in done:
            for dependency in ALLOWED[package]:
                visit(dependency, (*path, package))
            done.add(package)

    for package in ALLOWED:
        visit(package, ())


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_statements_follow_the_rules(package: str) -> None:
    assert files_of(package), f"no Python files in {package}/"
    assert broken_rules(package, imports_in(package)) == []


def test_the_checker_sees_imports_in_functions_and_relative_ones() -> None:
    """The checker itself: it must see what it is meant to forbid, and only that."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from serving.pool import WorkerPool\n"
        "from . import texts\n"
        "import training.data\n"
        "from serving import pool\n"
        "def f():\n    import torch\n    from serving import worker\n"
    )
    imports = imports_of(source, "bot.probe", "bot/probe.py")
    assert {(i.module, i.at_import_time) for i in imports} >= {
        ("serving.pool", False),
        ("bot.texts", True),
        ("training.data", True),
        ("serving.pool", True),
        ("torch", False),
        ("serving.worker", False),
    }
    assert broken_rules("bot", imports) == [
        "bot/probe.py:5: bot may not import training",
        "bot/probe.py:6: bot imports serving.pool only inside a function",
        "bot/probe.py:8: bot never imports torch",
    ]


# ---------------------------------------------------------------------------- at run time

#: what must not be loaded after importing every module of a package
NOT_LOADED = {
    "bot": ["torch", "serving.pool", "serving.worker", "training", "lab"],
    "serving": ["telegram", "torch", "bot", "training", "lab"],
    "core": ["telegram", "serving", "training", "lab", "bot"],
    "masks": ["core", "serving", "bot", "training", "lab", "telegram", "torch"],
    "training": ["bot", "serving", "lab", "telegram"],
}


@pytest.mark.parametrize("package", sorted(NOT_LOADED))
def test_importing_a_package_loads_nothing_it_must_not(package: str) -> None:
    modules = [module_name(path) for path in files_of(package)]
    check = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted(m for m in {NOT_LOADED[package]!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert loaded == "", f"importing {package} loaded {loaded}"


# ---------------------------------------------------------------------------- inside core

#: core's stages, in the photo's order: a stage never imports one after it (video uses all)
STAGE_FORBIDS = {
    "detection": {"keypoints", "render", "video"},
    "keypoints": {"render", "video"},
    "render": {"detection", "video"},
}


def core_module_graph() -> dict[str, set[str]]:
    """Every core module and the core modules it imports (anywhere in it)."""
    modules = {module_name(path): path for path in files_of("core")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = imports_of(path.read_text(encoding="utf-8"), name, str(path.relative_to(ROOT)))
        graph[name] = {i.module for i in found if i.module in modules and i.module != name}
    return graph


@pytest.mark.parametrize("stage", sorted(STAGE_FORBIDS))
def test_a_core_stage_never_imports_a_later_one(stage: str) -> None:
    problems = [
        f"{found.where}: core.{stage} may not import {found.module}"
        for found in imports_in(f"core/{stage}")
        if found.module.split(".")[:2][-1] in STAGE_FORBIDS[stage]
        and found.module.startswith("core.")
    ]
    assert problems == []


def test_core_has_no_import_circle() -> None:
    graph = core_module_graph()
    assert "core.detection.turns" in graph and "core.video.masking" in graph
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"circle: {' -> '.join((*path, module))}"
        if module not in done:
            for dependency in sorted(graph.get(module, ())):
                visit(dependency, (*path, module))
            done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_stage_checker_sees_a_later_stage() -> None:
    imports = imports_of(
        "def f():\n    from core.video import codec\n", "core.render.probe", "core/render/probe.py"
    )
    assert [i.module for i in imports] == ["core.video", "core.video.codec"]
    assert all(i.module.split(".")[1] in STAGE_FORBIDS["render"] for i in imports)


# ---------------------------------------------------------------------------- private names

#: packages whose modules may not use another module's private names (a leading underscore)
OWN_PRIVATES = ("bot", "serving", "core", "masks", "training", "lab")


def private_imports(source: str, module: str, filename: str) -> list[str]:
    """``from x import _name`` and ``x._name`` where ``x`` is another module of ours."""
    tree = ast.parse(source, filename=filename)
    problems = []
    ours: set[str] = set()  # names bound to our modules (or what they export)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in OURS or node.module == module:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    problems.append(f"{filename}:{node.lineno}: {node.module}.{alias.name}")
                else:
                    ours.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OURS:
                    ours.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):  # module._name, where module is one of ours imported above
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ours
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            problems.append(f"{filename}:{node.lineno}: {node.value.id}.{node.attr}")
    return problems


@pytest.mark.parametrize("package", OWN_PRIVATES)
def test_no_module_uses_another_modules_private_names(package: str) -> None:
    problems = [
        problem
        for path in files_of(package)
        for problem in private_imports(
            path.read_text(encoding="utf-8"), module_name(path), str(path.relative_to(ROOT))
        )
    ]
    assert problems == []


def test_the_private_name_checker_sees_both_forms() -> None:
    source = (
        "from bot.handlers import _download, services\n"
        "from bot import handlers\n"
        "from telegram import _utils\n"  # not ours
        "def f():\n    return handlers._showing, services._cache, handlers.public\n"
    )
    assert private_imports(source, "bot.video", "bot/video.py") == [
        "bot/video.py:1: bot.handlers._download",
        "bot/video.py:5: handlers._showing",
        "bot/video.py:5: services._cache",
    ]
