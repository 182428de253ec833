"""Read the tensors of a TorchScript archive (OpenAI's ViT-B-16.pt) without executing it.

`torch.load(weights_only=True)` refuses TorchScript archives and `torch.jit.load`
deserializes code. This reader unpickles `data.pkl` with an allow-list: TorchScript
module classes become inert attribute holders, tensors are rebuilt from the raw
storages in the zip, and any other global raises `UnpicklingError`.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict

import torch

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _ScriptObject:
    """Stand-in for a `__torch__.*` module: keeps its attributes, runs nothing."""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *_ignored) -> torch.Tensor:
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


def is_torchscript_archive(zf: zipfile.ZipFile) -> bool:
    names = zf.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str):
        import io

        super().__init__(io.BytesIO(data))
        self.zf = zf
        self.prefix = prefix
        self.storages: dict[str, torch.Tensor] = {}  # each storage read once, however often it is named

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__"):
            return _ScriptObject
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a weights file")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5:
            raise pickle.UnpicklingError("unexpected persistent id")
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType) or not isinstance(key, str) \
                or not isinstance(numel, int):
            raise pickle.UnpicklingError("unexpected persistent id")
        if key in self.storages:
            return self.storages[key]
        self.storages[key] = self._read_storage(key, storage_type, numel)
        return self.storages[key]

    def _read_storage(self, key: str, storage_type: _StorageType, numel: int) -> torch.Tensor:
        raw = bytearray(self.zf.read(f"{self.prefix}/data/{key}"))
        flat = torch.frombuffer(raw, dtype=storage_type.dtype) if raw else torch.empty(0, dtype=storage_type.dtype)
        if flat.numel() < numel:
            raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} values, expected {numel}")
        return flat


def _collect(obj: object, prefix: str, out: dict[str, torch.Tensor], seen: set[int] | None = None) -> None:
    seen = set() if seen is None else seen
    if not isinstance(obj, _ScriptObject) or id(obj) in seen or prefix.count(".") > 64:
        return  # a cycle or absurd nesting in a hostile archive: stop there
    seen.add(id(obj))
    for name, value in obj.state.items():
        key = f"{prefix}{name}"
        if isinstance(value, torch.Tensor):
            out[key] = value
        elif isinstance(value, _ScriptObject):
            _collect(value, key + ".", out, seen)


def read_torchscript_tensors(zf: zipfile.ZipFile) -> dict[str, torch.Tensor]:
    """All tensor attributes of the archived module tree, by dotted name (like state_dict()).

    The tensors are views of the archive's storages (not cloned): check their extents
    (`reader.check_tensor_extents`) before materialising them."""
    data_pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1)
    prefix = data_pkl.rsplit("/", 1)[0]
    root = _SafeUnpickler(zf.read(data_pkl), zf, prefix).load()
    out: dict[str, torch.Tensor] = {}
    _collect(root, "", out)
    return out
