"""Face-free photos out of a Debian package: more animals (dogs, cats, apes) and hands for the
face verifier's training side than the Python packages ship.

GCompris' data package (``gcompris-qt-data``, Debian main: every file under a free licence,
GPL-3+ or Creative Commons as its ``copyright`` file lists) keeps each activity's pictures in
a Qt resource file (``.rcc``). :data:`GCOMPRIS_PHOTOS` picks its photographs of animals and of
hands, none with a person's face: 32 wildlife photos and 8 hands ("erase"), 15 wild and 9 farm
animals (a German shepherd, a cat), a golden retriever cut in pieces ("babyshapes"), 28 fish
and 17 things of a house (cups, plates, a ball: "categorization").

    apt-get download gcompris-qt-data
    python -m lab.verifier_data ... --deb gcompris-qt-data_3.1-2_all.deb

Nothing here is installed or shipped: the package is read where it lies, for training only
(its sources are never part of the false-mask benchmark: ``lab.false_masks.source_split``).
"""

from __future__ import annotations

import io
import struct
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lab.false_masks import IMAGE_SUFFIXES, decode

#: the folders of GCompris' resources that hold photographs without a person's face
GCOMPRIS_PHOTOS = (
    "/erase/resource/",
    "/explore_world_animals/resource/animals/",
    "/explore_farm_animals/resource/animals/",
    "/babyshapes/resource/dog",
    "/categorization/resource/images/fishes/",
    "/categorization/resource/images/others/",
)
#: a Qt resource tree node: a directory has this flag; a file may be zlib- or zstd-compressed
RCC_DIRECTORY, RCC_ZLIB, RCC_ZSTD = 0x02, 0x01, 0x04


def deb_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every regular file a Debian package installs (its ``data.tar``)."""
    blob = Path(path).read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{path}: not a Debian package (no ar archive)")
    at = 8
    while at + 60 <= len(blob):
        name = blob[at : at + 16].decode().strip().rstrip("/")
        size = int(blob[at + 48 : at + 58].decode().strip())
        body = blob[at + 60 : at + 60 + size]
        at += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise ValueError(f"{path}: {name} is zstd-compressed; unpack it with dpkg-deb -x")
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                for member in tar:
                    if member.isfile():
                        yield member.name.lstrip("./"), tar.extractfile(member).read()
            return
    raise ValueError(f"{path}: no data.tar inside")


def rcc_files(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a compiled Qt resource file (``rcc`` format 1-3)."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16 BE
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        node = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, node)
        name = name_at(name_offset) if index else ""
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, node + 6)
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{name}/")
            return
        (offset,) = struct.unpack_from(">I", blob, node + 10)
        (size,) = struct.unpack_from(">I", blob, data + offset)
        raw = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & RCC_ZSTD:
            return  # no zstd decoder in the standard library; GCompris' photos are stored
        yield f"{prefix}{name}", zlib.decompress(raw[4:]) if flags & RCC_ZLIB else raw

    yield from walk(0, "")


def deb_sources(path: Path, folders=GCOMPRIS_PHOTOS) -> Iterator[tuple[str, np.ndarray]]:
    """(name, RGB) of the photos in ``folders`` of a Debian package's Qt resource files,
    named by package and path ("gcompris-qt-data/erase/resource/gorilla.webp")."""
    package = Path(path).name.split("_")[0]
    for file, blob in deb_files(path):
        if not file.endswith(".rcc"):
            continue
        for member, raw in rcc_files(blob):
            if not member.lower().endswith(IMAGE_SUFFIXES):
                continue
            folder = next((f for f in folders if f in member), None)
            image = decode(raw) if folder else None
            if image is not None and min(image.shape[:2]) >= 64:
                yield f"{package}/{member.split('/activities/')[-1]}", image
