"""The container check's own housekeeping (tests/support/container_check.py), without podman."""

import subprocess
from collections import namedtuple

import pytest

from tests.support import container_check as cc

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def podman_calls(monkeypatch, tmp_path):
    calls = []

    def podman(*args, check=True, **kw):
        calls.append(args)
        return f"{tmp_path}\n" if args[:1] == ("info",) else ""

    monkeypatch.setattr(cc, "podman", podman)
    return calls


def test_make_room_prunes_what_rebuilds_replaced_and_says_the_room_left(monkeypatch, podman_calls):
    monkeypatch.setattr(cc.shutil, "disk_usage", lambda path: Usage(100e9, 30e9, 70e9))
    assert cc.make_room() == pytest.approx(70.0)
    assert ("image", "prune", "-f") in podman_calls


def test_make_room_stops_in_one_clear_line_on_a_nearly_full_disk(monkeypatch, podman_calls):
    # a build that fills the disk half-way fails with "read/write on closed pipe" and takes
    # the tests after it down too: better to say why before building
    monkeypatch.setattr(cc.shutil, "disk_usage", lambda path: Usage(100e9, 97e9, 3e9))
    with pytest.raises(cc.CheckFailed, match=r"3\.0 GB free .* needs about 6"):
        cc.make_room()


def test_a_command_that_hangs_fails_the_check_in_one_clear_line(tmp_path):
    # podman-compose waits without end for a container that cannot start (no iptables)
    with pytest.raises(cc.CheckFailed, match=r"did not finish in 0.5 s:\n.*waiting"):
        cc.sh("sh", "-c", "echo waiting; sleep 30", timeout=0.5)


@pytest.mark.parametrize(
    ("status", "installed"),
    [("install ok installed", True), ("unknown ok not-installed", False),
     ("deinstall ok config-files", False), ("", False)],
)  # fmt: skip
def test_a_package_removed_earlier_counts_as_missing(monkeypatch, status, installed):
    def dpkg_query(argv, **kw):
        return subprocess.CompletedProcess(argv, 0 if status else 1, stdout=status, stderr="")

    monkeypatch.setattr(cc.subprocess, "run", dpkg_query)
    assert cc._installed("iptables") is installed
