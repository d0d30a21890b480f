"""lab.debian_images: photos read out of a Debian package's Qt resource files."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib

import cv2
import numpy as np
import pytest
import skimage.data

from lab.debian_images import deb_files, deb_sources, rcc_files
from lab.false_masks import source_split


def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A compiled Qt resource file (format 3, as Qt's rcc writes it) holding ``files``
    ("folder/name": (bytes, compressed)) in one folder per distinct folder."""
    folders: dict[str, list[str]] = {}
    for path in files:
        folder, name = path.rsplit("/", 1)
        folders.setdefault(folder, []).append(name)
    names, name_at = b"", {}

    def name_offset(name: str) -> int:
        nonlocal names
        if name not in name_at:
            name_at[name] = len(names)
            names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        return name_at[name]

    data, nodes = b"", []
    # node 0: the root, its children the folders (nodes 1..F), then each folder's files
    nodes.append(struct.pack(">IHII", 0, 2, len(folders), 1))
    first_file = 1 + len(folders)
    for folder, members in folders.items():
        nodes.append(struct.pack(">IHII", name_offset(folder), 2, len(members), first_file))
        first_file += len(members)
    for folder, members in folders.items():
        for name in members:
            raw, compressed = files[f"{folder}/{name}"]
            stored = struct.pack(">I", len(raw)) + zlib.compress(raw) if compressed else raw
            nodes.append(struct.pack(">IHHHI", name_offset(name), int(compressed), 0, 0, len(data)))
            data += struct.pack(">I", len(stored)) + stored
    nodes = [n + b"\0" * (22 - len(n)) for n in nodes]  # + the last-modified time
    tree = b"".join(nodes)
    header = 24
    return (
        b"qres"
        + struct.pack(">IIIII", 3, header, header + len(tree), header + len(tree) + len(data), 0)
        + tree
        + data
        + names
    )


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image[..., ::-1])[1].tobytes()


def test_a_qt_resource_file_gives_back_every_file_stored_or_compressed():
    blob = _rcc({"a/one.txt": (b"stored", False), "a/two.txt": (b"zipped" * 50, True),
                 "b/three.txt": (b"", False)})  # fmt: skip
    assert dict(rcc_files(blob)) == {
        "/a/one.txt": b"stored", "/a/two.txt": b"zipped" * 50, "/b/three.txt": b"",
    }  # fmt: skip
    with pytest.raises(ValueError, match="not a Qt resource"):
        list(rcc_files(b"PK\3\4 a zip"))


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
ACTIVITIES = "gcompris/src/activities"


def _deb(tmp_path, files: dict[str, tuple[bytes, bool]]):
    """A real Debian package (dpkg-deb) named as GCompris' data package, holding one Qt
    resource file with ``files``."""
    rcc = _rcc(files)
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: gcompris-qt-data\nVersion: 3.1-2\nArchitecture: all\n"
        "Maintainer: Nobody <nobody@example.org>\nDescription: test\n"
    )
    (root / "usr/share/gcompris-qt/rcc").mkdir(parents=True)
    (root / "usr/share/gcompris-qt/rcc/erase.rcc").write_bytes(rcc)
    (root / "usr/share/gcompris-qt/readme.txt").write_text("hello")
    deb = tmp_path / "gcompris-qt-data_3.1-2_all.deb"
    subprocess.run(["dpkg-deb", "-Zxz", "--build", str(root), str(deb)], check=True,
                   capture_output=True)  # fmt: skip
    return deb


@needs_dpkg
def test_the_photos_of_the_chosen_folders_come_out_of_a_real_debian_package(tmp_path):
    cat, coffee = skimage.data.chelsea(), skimage.data.coffee()
    deb = _deb(tmp_path, {
        f"{ACTIVITIES}/erase/resource/cat.png": (_png(cat), False),
        f"{ACTIVITIES}/babyshapes/resource/dog1/coffee.png": (_png(coffee), True),
        f"{ACTIVITIES}/erase/resource/icon.png": (_png(cat[:40, :40]), False),  # too small
        f"{ACTIVITIES}/paintings/resource/image/cat.png": (_png(cat), False),  # not chosen
        f"{ACTIVITIES}/erase/resource/notes.txt": (b"not a photo", False),
    })  # fmt: skip
    assert dict(deb_files(deb))["usr/share/gcompris-qt/readme.txt"] == b"hello"
    found = dict(deb_sources(deb))
    assert set(found) == {
        "gcompris-qt-data/erase/resource/cat.png",
        "gcompris-qt-data/babyshapes/resource/dog1/coffee.png",
    }
    assert np.array_equal(found["gcompris-qt-data/erase/resource/cat.png"], cat)
    assert np.array_equal(found["gcompris-qt-data/babyshapes/resource/dog1/coffee.png"], coffee)
    # a training-side source: never part of the false-mask benchmark
    assert {source_split(name) for name in found} == {"train"}


def test_a_file_that_is_no_debian_package_is_refused(tmp_path):
    path = tmp_path / "x.deb"
    path.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a Debian package"):
        list(deb_files(path))


@needs_dpkg
def test_the_verifiers_training_crops_take_the_packages_photos(tmp_path, monkeypatch, tiny_dataset):
    from lab import verifier_data
    from training.data import load_splits

    deb = _deb(
        tmp_path, {f"{ACTIVITIES}/erase/resource/cat.png": (_png(skimage.data.chelsea()), False)}
    )
    monkeypatch.setattr(verifier_data, "package_sources", lambda wheels: iter(()))
    crops = verifier_data.Crops()
    samples = load_splits(tiny_dataset).train
    verifier_data.free_part(crops, [], samples, np.random.default_rng(0), 40, [deb], 2)
    # two variants, each with a face's points laid three times at random (and whatever the
    # detectors take for a face in a cat), all labelled "no face" and named by the photo
    assert crops.kinds.count("placed-free") == 6
    assert set(crops.groups) == {"gcompris-qt-data/erase/resource/cat.png"}
    assert set(crops.labels) == {0}
