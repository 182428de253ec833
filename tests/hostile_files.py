"""Hostile checkpoint files, each small on disk and built to exhaust memory or confuse a
loader that trusts it. Shared by the tests and `benchmarks/hostile_inputs.py`."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Callable

import torch


def native_safetensors_huge_config(path: Path) -> Path:
    """A clipseg safetensors (under 1 KB) whose metadata declares a 4096-wide, 48-layer backbone."""
    from safetensors.torch import save_file

    config = {"clip": {"vision": {"width": 4096, "layers": 48, "heads": 64},
                       "text": {"width": 4096, "layers": 48, "heads": 64}, "embed_dim": 4096}}
    save_file({"decoder.film_mul.weight": torch.zeros(2, 2), "clip.visual.conv1.weight": torch.zeros(2, 2)}, str(path),
              metadata={"format": "clipseg", "clipseg_config": json.dumps(config)})
    return path


def _uni(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(v: int) -> bytes:
    return b"J" + struct.pack("<i", v) if -(1 << 31) <= v < (1 << 31) else b"\x8a\x08" + struct.pack("<q", v)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def tensor_pickle(name: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...],
                  torchscript: bool = False) -> bytes:
    """The data.pkl torch.save writes for {name: float tensor} (protocol 2), or TorchScript's
    module object holding it, written opcode by opcode so that size, stride and numel can lie."""
    storage_id = _tuple(_uni("storage"), b"ctorch\nFloatStorage\n", _uni("0"), _uni("cpu"), _int(numel))
    rebuild = (b"ctorch._utils\n_rebuild_tensor_v2\n"
               + _tuple(storage_id + b"Q", _int(0), _tuple(*map(_int, size)), _tuple(*map(_int, stride)),
                        b"\x89", b"ccollections\nOrderedDict\n)R")
               + b"R")
    state = b"}(" + _uni(name) + rebuild + b"u"
    if torchscript:  # __torch__.Model.__new__() then BUILD with the attribute dict
        return b"\x80\x02c__torch__\nModel\n)\x81" + state + b"b."
    return b"\x80\x02" + state + b"."


def _torch_zip_with(path: Path, storage: bytes, compress: int, torchscript: bool = False,
                    size: tuple[int, ...] | None = None, stride: tuple[int, ...] | None = None) -> Path:
    """A torch.save-style zip (or a TorchScript-style one) holding one float tensor whose
    storage is `storage`, written with zip compression `compress`."""
    numel = len(storage) // 4
    data_pkl = tensor_pickle("decoder.film_mul.weight", numel, size or (numel,), stride or (1,), torchscript)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
        if torchscript:
            zf.writestr("archive/constants.pkl", pickle.dumps(()))
            zf.writestr("archive/code/__torch__.py", "")
        zf.writestr(zipfile.ZipInfo("archive/data/0"), storage, compress_type=compress)
    return path


def torchscript_deflated_gib(path: Path) -> Path:
    """A TorchScript-style archive of about 1 MB whose one storage inflates to 1 GiB."""
    return _torch_zip_with(path, bytes(1 << 30), zipfile.ZIP_DEFLATED, torchscript=True)


def torch_zip_deflated(path: Path) -> Path:
    """A torch.save-style zip of about 1 MB with a deflated 1 GiB storage."""
    return _torch_zip_with(path, bytes(1 << 30), zipfile.ZIP_DEFLATED)


def torch_zip_stride0(path: Path) -> Path:
    """A torch.save zip under 1 KB: one 4-byte storage viewed as a (16384, 16384) tensor by stride 0."""
    return _torch_zip_with(path, bytes(4), zipfile.ZIP_STORED, size=(16384, 16384), stride=(0, 0))


def torchscript_stride0(path: Path) -> Path:
    return _torch_zip_with(path, bytes(4), zipfile.ZIP_STORED, torchscript=True, size=(16384, 16384), stride=(0, 0))


def safetensors_bad_header(path: Path) -> Path:
    """A safetensors header that declares a 1 TB tensor in a tiny file."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 18, 1 << 20], "data_offsets": [0, 1 << 40]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    return path


def hf_folder(path: Path, index=None, config=None, shard: str | None = None) -> Path:
    """An HF-style folder with the given index / config.json contents (JSON-encoded as given)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config if config is not None else {"model_type": "clipseg"}))
    if index is not None:
        (path / "model.safetensors.index.json").write_text(json.dumps(index))
    return path


HOSTILE_FILES: dict[str, Callable[[Path], Path]] = {
    "native safetensors declaring a 4096-wide model": native_safetensors_huge_config,
    "TorchScript zip with a deflated 1 GiB storage": torchscript_deflated_gib,
    "torch.save zip with a deflated 1 GiB storage": torch_zip_deflated,
    "torch.save zip with a stride-0 (16384, 16384) tensor": torch_zip_stride0,
    "TorchScript zip with a stride-0 (16384, 16384) tensor": torchscript_stride0,
    "safetensors header declaring a 1 TB tensor": safetensors_bad_header,
}


def open_slow_bodies(host: str, port: int, count: int) -> list:
    """`count` connections that send a request's headers and then never the body they announce."""
    import socket

    slow = []
    for _ in range(count):
        s = socket.create_connection((host, port))
        s.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: 1000000\r\n\r\n--b")
        slow.append(s)
    return slow
