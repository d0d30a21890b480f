"""torch's ``.pt`` files read without torch: their tensors as numpy arrays.

A worker that serves on ONNX Runtime still reads two torch files: MTCNN's weights in
facenet-pytorch's wheel (torch's legacy format) and the keypoint release's config and
metadata (the zip format). Importing torch for that alone cost each worker ~240 MB
resident. Both formats are a pickle whose tensors point into raw little-endian storages;
the pickle is read with an unpickler that knows only the few globals such files hold
(tensors, parameters, ordered dicts), so, like ``torch.load(weights_only=True)``, a file
cannot run code.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# torch's legacy format starts with these pickled values (torch/serialization.py)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

DTYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "BFloat16Storage": None,  # no numpy type: refused with a clear error when read
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(ValueError):
    """The file is not a torch file this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        dtype = DTYPES.get(self.name)
        if dtype is None:
            raise TorchFileError(f"tensors of {self.name} cannot be read without torch")
        return np.dtype(dtype).newbyteorder("<")


@dataclass
class _Storage:
    key: str
    type: _StorageType
    numel: int
    data: np.ndarray | None = None  # filled once the bytes are read


@dataclass(frozen=True)
class LazyTensor:
    """A tensor whose storage was not read (``load(..., tensors=False)``)."""

    shape: tuple[int, ...]
    dtype: np.dtype


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *_ignored) -> Any:
    dtype = storage.type.dtype
    if storage.data is None:
        return _Pending(storage, offset, tuple(size), tuple(stride))
    itemsize = dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage.data[offset:],
        shape=tuple(size),
        strides=tuple(s * itemsize for s in stride),
    )
    return view.copy()  # owns its memory and is contiguous, as a loaded tensor is


@dataclass
class _Pending:
    """A tensor met before its storage's bytes (the legacy format stores them after)."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def resolve(self) -> np.ndarray:
        return _rebuild_tensor(self.storage, self.offset, self.size, self.stride)

    def lazy(self) -> LazyTensor:
        return LazyTensor(self.size, self.storage.type.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored) -> Any:
    return data


ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in DTYPES:
            return _StorageType(name)
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise TorchFileError(f"a torch file holding {module}.{name} is not read without torch")

    def persistent_load(self, saved_id: Any) -> Any:
        if not isinstance(saved_id, tuple) or saved_id[0] not in ("storage", b"storage"):
            raise TorchFileError(f"unknown reference in a torch file: {saved_id!r:.80}")
        storage_type, key, _location, numel = saved_id[1:5]
        if len(saved_id) > 5 and saved_id[5] is not None:  # legacy views: never in our files
            raise TorchFileError("a torch file with storage views is not read without torch")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type, int(numel))
        return self.storages[key]


def _resolve(value: Any, tensors: bool) -> Any:
    if isinstance(value, _Pending):
        return value.resolve() if tensors else value.lazy()
    if isinstance(value, dict):
        resolved = {k: _resolve(v, tensors) for k, v in value.items()}
        return OrderedDict(resolved) if isinstance(value, OrderedDict) else resolved
    if isinstance(value, list):
        return [_resolve(v, tensors) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, tensors) for v in value)
    return value


def _load_zip(path: Path, tensors: bool) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickled = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pickled is None:
            raise TorchFileError(f"{path.name} holds no data.pkl")
        prefix = pickled[: -len("data.pkl")]
        order = next((n for n in names if n == prefix + "byteorder"), None)
        if order is not None and archive.read(order).strip() != b"little":
            raise TorchFileError(f"{path.name} is stored big-endian")
        storages: dict[str, _Storage] = {}
        # first pass: which storages the pickle refers to (tensors left pending)
        result = _Unpickler(io.BytesIO(archive.read(pickled)), storages).load()
        if tensors:
            for storage in storages.values():
                raw = archive.read(f"{prefix}data/{storage.key}")
                storage.data = np.frombuffer(raw, storage.type.dtype, storage.numel)
    return _resolve(result, tensors)


def _load_legacy(path: Path, tensors: bool) -> Any:
    with path.open("rb") as file:
        try:
            magic = pickle.load(file)
            protocol = pickle.load(file)
        except Exception as err:
            raise TorchFileError(f"{path.name} is not a torch file") from err
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise TorchFileError(f"{path.name} is not a torch file")
        pickle.load(file)  # the writer's system info (byte order, sizes of C types)
        storages: dict[str, _Storage] = {}
        result = _Unpickler(file, storages).load()
        keys = pickle.load(file)
        if tensors:
            for key in keys:  # each: its element count (int64), then the raw elements
                storage = storages[str(key)]
                (numel,) = struct.unpack("<q", file.read(8))
                raw = file.read(numel * storage.type.dtype.itemsize)
                if numel != storage.numel or len(raw) != numel * storage.type.dtype.itemsize:
                    raise TorchFileError(f"{path.name} is truncated")
                storage.data = np.frombuffer(raw, storage.type.dtype, numel)
    return _resolve(result, tensors)


def load(path: str | Path, tensors: bool = True) -> Any:
    """What ``torch.load(path, weights_only=True)`` returns, tensors as numpy arrays (or,
    with ``tensors=False``, as :class:`LazyTensor` shapes without reading their bytes)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path, tensors)
    return _load_legacy(path, tensors)
