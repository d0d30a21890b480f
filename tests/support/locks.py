"""Do pyproject.toml and the locks in requirements/ agree?

python -m tests.support.locks           # check (tests/test_lock.py runs the same)
python -m tests.support.locks --stamp   # after a new lock: record pyproject's hash
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"serving": ROOT / "requirements/serving.txt", "dev": ROOT / "requirements/dev.txt"}
STAMP = ROOT / "requirements/pyproject.sha256"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", re.M)


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def dependency_hash() -> str:
    """The hash of what the locks are made from: the dependencies and the extras."""
    tables = project()
    relevant = {"dependencies": tables["dependencies"],
                "optional-dependencies": tables.get("optional-dependencies", {}),
                "requires-python": tables.get("requires-python")}  # fmt: skip
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def pins(lock: Path) -> dict[str, Version]:
    return {canonicalize_name(n): Version(v) for n, v in PIN.findall(lock.read_text())}


def requirements(extra: str | None) -> list[Requirement]:
    """The project's requirements for ``extra`` (None: the serving install), extras of our
    own package followed."""
    tables = project()
    own = canonicalize_name(tables["name"])
    out, todo, seen = [], [None] if extra is None else [None, extra], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        listed = tables["dependencies"] if name is None else tables["optional-dependencies"][name]
        for line in listed:
            req = Requirement(line)
            if canonicalize_name(req.name) == own:
                todo.extend(req.extras)
            else:
                out.append(req)
    return out


def problems() -> list[str]:
    found = []
    if not STAMP.is_file() or STAMP.read_text().split()[0] != dependency_hash():
        found.append("pyproject.toml's dependencies changed since the locks were made: ./run lock")
    for name, extra in (("serving", None), ("dev", "dev")):
        locked = pins(LOCKS[name])
        for req in requirements(extra):
            version = locked.get(canonicalize_name(req.name))
            if version is None:
                found.append(f"requirements/{name}.txt lacks {req.name}: ./run lock")
            elif not req.specifier.contains(version, prereleases=True):
                found.append(f"requirements/{name}.txt pins {req.name}=={version}, "
                             f"outside {req.specifier}: ./run lock")  # fmt: skip
    return found


def main(argv: list[str]) -> int:
    if "--stamp" in argv:
        STAMP.write_text(dependency_hash() + "  pyproject.toml's dependency tables\n")
        return 0
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
