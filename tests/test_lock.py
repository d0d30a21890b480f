"""pyproject.toml and the locks in requirements/ agree, and the serving lock is lean."""

from __future__ import annotations

import shutil

import pytest

from tests.support import locks

TRAINING_ONLY = {"torch", "efficientnet-pytorch", "onnx", "sympy", "networkx", "tqdm",
                 "matplotlib", "scikit-image", "pytest"}  # fmt: skip


def test_the_locks_agree_with_pyproject():
    assert locks.problems() == []


def test_the_serving_lock_holds_no_training_or_test_package():
    serving = set(map(str, locks.pins(locks.LOCKS["serving"])))
    assert serving & TRAINING_ONLY == set()
    assert {"onnxruntime", "opencv-python-headless", "av", "python-telegram-bot"} <= serving
    dev = locks.pins(locks.LOCKS["dev"])
    assert str(dev["torch"]) == "2.13.0+cpu"  # the CPU build this machine kind carries


def test_every_locked_line_carries_a_hash():
    for lock in locks.LOCKS.values():
        text = lock.read_text()
        assert text.count("==") == len(locks.pins(lock)) > 20
        for block in text.split("\n\n"):
            for entry in block.split("\n")[0:1]:
                if "==" in entry and not entry.startswith("#"):
                    assert entry.rstrip().endswith("\\"), entry  # its --hash lines follow


@pytest.fixture
def copy(tmp_path, monkeypatch):
    for name in ("pyproject.toml", "requirements"):
        source = locks.ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    monkeypatch.setattr(locks, "ROOT", tmp_path)
    monkeypatch.setattr(locks, "STAMP", tmp_path / "requirements/pyproject.sha256")
    monkeypatch.setattr(locks, "LOCKS", {k: tmp_path / "requirements" / v.name
                                         for k, v in locks.LOCKS.items()})  # fmt: skip
    return tmp_path


def test_a_dependency_added_without_a_new_lock_is_found(copy):
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            '"msgpack>=1.0,<2",', '"msgpack>=1.0,<2",\n    "left-pad>=1",'
        )
    )
    found = locks.problems()
    assert any("changed since the locks" in p for p in found)
    assert any("serving.txt lacks left-pad" in p for p in found)


def test_a_locked_version_outside_its_range_is_found(copy):
    serving = copy / "requirements/serving.txt"
    version = str(locks.pins(serving)["msgpack"])
    serving.write_text(serving.read_text().replace(f"msgpack=={version}", "msgpack==0.6.2"))
    assert any("pins msgpack==0.6.2" in p for p in locks.problems())
