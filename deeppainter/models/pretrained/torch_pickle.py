"""Read a legacy (pre-1.6, non-zip) PyTorch ``.pth`` state dict into numpy arrays, without torch.

The legacy layout (``torch.serialization._legacy_load``) is a run of pickles in one file: magic
number, protocol version, system info, the state dict itself (tensors point at storages through
pickle persistent ids), the list of storage keys, and then for each key, in that order, a
little-endian int64 element count followed by the raw storage bytes.

Unpickling runs code named by the file, so the unpickler only resolves the few globals a state
dict needs; anything else (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError``.
"""
from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path

import numpy as np

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_PROTOCOL_VERSION = 1001  # torch.serialization.PROTOCOL_VERSION

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for ``torch.FloatStorage`` etc.: only its numpy dtype matters."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype).newbyteorder("<")


class _TensorRef:
    """A tensor before its storage bytes are read: ``(storage key, offset, size, stride)``."""

    def __init__(self, storage_key: str, offset: int, size: tuple, stride: tuple):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, tuple(size), tuple(stride)


class _StorageRef:
    def __init__(self, key: str, storage_type: _StorageType, numel: int):
        self.key, self.dtype, self.numel = key, storage_type.dtype, numel


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(storage.key, storage_offset, size, stride)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a legacy torch state dict uses."""

    def __init__(self, file, storages: dict | None = None):
        super().__init__(file)
        self._storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a checkpoint")

    def persistent_load(self, saved_id):
        # ('storage', storage_type, key, location, numel, view_metadata); 'module' ids hold source
        # code of pickled nn.Modules, which a plain state dict does not have.
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {saved_id!r:.80}")
        _, storage_type, key, _location, numel, view_metadata = saved_id
        if view_metadata is not None or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage view in persistent id {saved_id!r:.80}")
        self._storages.setdefault(key, _StorageRef(key, storage_type, numel))
        return self._storages[key]


def _inside(ref: _TensorRef, numel: int) -> bool:
    """Whether every element of the view lies in its storage: as_strided does not check, so a crafted
    size or stride would otherwise read arbitrary memory."""
    if len(ref.size) != len(ref.stride) or ref.offset < 0 or min(ref.stride, default=0) < 0:
        return False
    if 0 in ref.size:
        return True
    return ref.offset + sum((n - 1) * step for n, step in zip(ref.size, ref.stride)) < numel


def _load_one(handle, storages: dict | None = None):
    return RestrictedUnpickler(handle, storages).load()


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{parameter name: numpy array}`` from a legacy-format ``.pth`` state dict."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] == b"PK\x03\x04":
        raise ValueError(f"{path} is a zip-format checkpoint (torch >= 1.6); only the legacy format is supported")
    stream = io.BytesIO(data)
    if _load_one(stream) != _MAGIC_NUMBER:
        raise ValueError(f"{path} is not a legacy PyTorch checkpoint (bad magic number)")
    if _load_one(stream) != _PROTOCOL_VERSION:
        raise ValueError(f"{path}: unsupported PyTorch checkpoint protocol version")
    sys_info = _load_one(stream)
    if not sys_info.get("little_endian", False):
        raise ValueError(f"{path}: big-endian checkpoints are not supported")
    storages: dict[str, _StorageRef] = {}
    state = _load_one(stream, storages)
    keys = _load_one(stream)

    arrays: dict[str, np.ndarray] = {}
    offset = stream.tell()
    for key in keys:
        storage = storages[key]
        numel = int(np.frombuffer(data, dtype="<i8", count=1, offset=offset)[0])
        if numel != storage.numel:
            raise ValueError(f"{path}: storage {key} holds {numel} elements, the pickle says {storage.numel}")
        offset += 8
        arrays[key] = np.frombuffer(data, dtype=storage.dtype, count=numel, offset=offset)
        offset += numel * storage.dtype.itemsize
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} trailing bytes after the last storage")

    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    result = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        flat = arrays[ref.storage_key]
        if not _inside(ref, len(flat)):
            raise ValueError(f"{path}: tensor {name!r} reaches outside its storage")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.size,
                                               strides=tuple(s * itemsize for s in ref.stride))
        result[name] = np.array(view)  # own copy: native byte order, contiguous, writable
    return result
