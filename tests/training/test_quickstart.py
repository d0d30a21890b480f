"""training/README.md's commands, as written, on a slice of the shared data set.

Every ``facemask-train``, ``facemask-eval`` and ``facemask-release`` line of the README's
bash blocks runs in README order in one folder (so ``runs/mine`` is there when the release
reads it), in-process, on six photos of the real data set. Only what keeps them short is
added: one optimiser step a run (``--max-steps 1``), a release written beside the runs
instead of over ``core/weights`` and calibrated on 4 crops. A README command that no longer
runs fails here. The borrowed-GPU section is not run: it needs the lent machine.
"""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest
import torch

from lab import evaluate
from training import release, train
from training.data import person_of, read_validation_people

README = Path(train.__file__).with_name("README.md")
TOOLS = {
    "facemask-train": train.main,
    "facemask-eval": evaluate.main,
    "facemask-release": release.main,
}
#: what each tool's README line gets appended (argparse keeps an option's last value)
SMOKE = {
    "facemask-train": ["--max-steps", "1", "--device", "cpu", "--threads", "2"],
    "facemask-eval": [],
    "facemask-release": ["--out", "weights", "--calibration", "4"],
}


def readme_lines() -> list[str]:
    """The lines of the README's bash blocks, continuations joined, comments kept."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def readme_commands() -> list[str]:
    return [line for line in readme_lines() if line.split(" ", 1)[0] in TOOLS]


def expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), text)


def argv_of(line: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """A README line as (tool, arguments): variables expanded, the shell's comment,
    redirections and trailing ``&`` dropped."""
    words = shlex.split(expand(line, env), comments=True)
    if ">" in words:
        words = words[: words.index(">")]
    words = [w for w in words if w != "&"]
    return words[0], words[1:]


def _slice(data: Path, root: Path) -> Path:
    """The data set's layout with a few of its photos: four training people, two
    validation people (one photo each, from training/), two test/ photos of others."""
    people = read_validation_people(data / "validation_people.txt")
    picked: dict[str, list[list[str]]] = {"training": [], "test": []}
    seen: set[str] = set()
    wanted = {("training", False): 4, ("training", True): 2, ("test", False): 2}
    headers = {}
    for split in ("training", "test"):
        with open(data / f"{split}_frames_keypoints.csv", newline="") as f:
            rows = list(csv.reader(f))
        headers[split] = rows[0]
        for row in rows[1:]:
            person, val = person_of(row[0]), person_of(row[0]) in people
            if wanted.get((split, val), 0) and person not in seen:
                picked[split].append(row)
                seen.add(person)
                wanted[(split, val)] -= 1
    for split, rows in picked.items():
        (root / split).mkdir(parents=True)
        for row in rows:
            (root / split / row[0]).symlink_to(data / split / row[0])
        with open(root / f"{split}_frames_keypoints.csv", "w", newline="") as f:
            csv.writer(f).writerows([headers[split], *rows])
    val = sorted(p for p in seen if p in people)
    (root / "validation_people.txt").write_text("\n".join(val) + "\n")
    return root


@pytest.fixture(scope="module")
def workspace(shared_data, tmp_path_factory):
    """A folder to run the README in, its ``D`` a slice of the shared data set; what the
    README's commands have run so far."""
    root = tmp_path_factory.mktemp("quickstart")
    data = _slice(shared_data, root / "face-keypoints")
    # efficientnet-pytorch's b0 file, for the line that names it (a stand-in: its layout,
    # not ImageNet's numbers; no PyPI package ships the real one)
    from efficientnet_pytorch import EfficientNet

    torch.save(
        EfficientNet.from_name("efficientnet-b0").state_dict(),
        root / "efficientnet-b0-355c32eb.pth",
    )
    return {"root": root, "env": {"D": str(data)}, "done": 0, "ran": set()}


def test_the_readme_names_every_stage_of_the_shipped_recipe_in_its_table():
    from training.config import Recipe

    text = README.read_text()
    for stage in Recipe.read("shipped").stages:
        assert f"| `{stage}` |" in text, stage
    assert any(
        "--config training/configs/shipped.json --out runs/mine" in c for c in readme_commands()
    )


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(readme_commands())))
def test_a_readme_command_runs_as_written(workspace, number, monkeypatch, capsys):
    """README command ``number`` (and any before it that has not run yet, which it may
    need), in the README's folder."""
    monkeypatch.chdir(workspace["root"])
    monkeypatch.setenv("TORCH_HOME", str(workspace["root"] / "torch"))
    commands, env = 0, workspace["env"]
    for line in readme_lines():
        name = re.fullmatch(r"(\w+)=(.*)", line.strip())
        if name:  # V="..." (D is the slice's)
            if name.group(1) != "D":
                env[name.group(1)] = shlex.split(expand(name.group(2), env))[0]
            continue
        if line.split(" ", 1)[0] not in TOOLS:
            continue
        if commands >= workspace["done"]:
            tool, argv = argv_of(line, env)
            # a line the README repeats (the release in the quick start and in Release, the
            # full recipe in both) ran already on the same files: once proves it runs
            if (tool, *argv) not in workspace["ran"]:
                result = TOOLS[tool](argv + SMOKE[tool])
                assert result in (None, 0), line
                capsys.readouterr()
                workspace["ran"].add((tool, *argv))
            workspace["done"] = commands + 1
        if commands == number:
            break
        commands += 1
