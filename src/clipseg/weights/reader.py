"""Read a state dict from any checkpoint file users have, safely, with clear errors.

Formats: safetensors, torch zip (torch.save since 1.6), legacy torch pickle, and
TorchScript archives. Pickles are only read with `torch.load(weights_only=True)`;
TorchScript archives through the allow-list reader in `torchscript.py`.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CheckpointError
from .torchscript import is_torchscript_archive, read_torchscript_tensors


@dataclass
class RawCheckpoint:
    path: Path
    format: str  # "safetensors" | "torch-zip" | "torch-legacy" | "torchscript"
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)  # safetensors header metadata


def sniff_format(path: Path) -> str:
    """Which container format a file is, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                return "torchscript" if is_torchscript_archive(zf) else "torch-zip"
        except zipfile.BadZipFile:
            return "torch-zip"  # reading it reports the truncation
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80":
        return "torch-legacy"
    return "unknown"


# A clipseg file's header: tensor entries (about 100 bytes each) and metadata (a word
# vocabulary of at most 16 MB, the config); a larger one is refused before it is read.
MAX_SAFETENSORS_HEADER = 32 << 20


def check_safetensors_header(path: Path) -> None:
    """CheckpointError when a safetensors file's header is larger than MAX_SAFETENSORS_HEADER."""
    with open(path, "rb") as f:
        head = f.read(8)
    (n,) = struct.unpack("<Q", head) if len(head) == 8 else (0,)
    if n > MAX_SAFETENSORS_HEADER:
        raise CheckpointError(f"{path}: its safetensors header is {n / (1 << 20):.0f} MB, more than the "
                              f"{MAX_SAFETENSORS_HEADER >> 20} MB a clipseg checkpoint needs (tensor list, config, "
                              "vocabulary)")


def _unwrap(obj: object, path: Path, fmt: str) -> dict[str, torch.Tensor]:
    """Accept a flat {name: tensor} dict or the usual wrappers ({'state_dict': ...}, {'model': ...})."""
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in ("state_dict", "model", "module", "weights") if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: {fmt} file holds {type(obj).__name__}, not a state dict of tensors")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: {fmt} file holds a dict without tensors (keys: {list(obj)[:8]})")
    if all(k.startswith("module.") for k in tensors):  # saved from DataParallel/DDP
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


# A zip may declare at most this much content per byte of file (torch writes its entries
# uncompressed, so real checkpoints declare about 1x); more is a zip bomb.
_MAX_ZIP_RATIO = 2.0
_ZIP_SLACK = 1 << 20


def check_zip_sizes(path: Path, zf: zipfile.ZipFile) -> None:
    """CheckpointError if the archive declares far more content than the file holds."""
    size = path.stat().st_size
    declared = sum(max(0, i.file_size) for i in zf.infolist())
    if declared > _MAX_ZIP_RATIO * size + _ZIP_SLACK:
        raise CheckpointError(f"{path}: its zip entries declare {declared / 2**20:.0f} MiB of content in a "
                              f"{size / 2**20:.1f} MiB file (compressed entries, which torch never writes); "
                              "refusing to decompress it")


def check_tensor_extents(sd: dict[str, torch.Tensor], path: Path, fmt: str) -> None:
    """CheckpointError for a tensor that claims more elements than its storage holds
    (stride 0 or overlapping strides): materialising it would take memory the file never had."""
    for name, t in sd.items():
        stored = t.untyped_storage().nbytes()
        if t.numel() * t.element_size() > stored:
            raise CheckpointError(
                f"{path}: {fmt} tensor '{name[:100]}' of shape {tuple(t.shape)} views {stored} bytes of storage "
                f"as {t.numel() * t.element_size()} (repeated by stride {tuple(t.stride())}); a weights file "
                "holds every value itself, so this file is refused")


def read_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read a checkpoint file into CPU tensors. Raises CheckpointError naming the file and format.

    Nothing in the file is trusted: zip archives whose entries declare more than the file
    holds and tensors that view their storage more than once are refused before anything is
    materialised, so rejecting a hostile file costs little memory. Zip checkpoints are
    memory-mapped, not read.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file {path} is empty (0 bytes)")
    fmt = sniff_format(path)
    if fmt == "safetensors":
        check_safetensors_header(path)
    try:
        if fmt == "safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as f:
                metadata = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}
            return RawCheckpoint(path, fmt, sd, metadata)
        if fmt in ("torchscript", "torch-zip"):
            with zipfile.ZipFile(path) as zf:
                check_zip_sizes(path, zf)
                if fmt == "torchscript":
                    sd = _unwrap(read_torchscript_tensors(zf), path, fmt)
                    check_tensor_extents(sd, path, fmt)
                    return RawCheckpoint(path, fmt, {k: v.clone() for k, v in sd.items()})
        if fmt in ("torch-zip", "torch-legacy"):
            mmap = fmt == "torch-zip"
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
            sd = _unwrap(obj, path, fmt)
            check_tensor_extents(sd, path, fmt)
            return RawCheckpoint(path, fmt, sd)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: {fmt} file contains Python objects that safe loading refuses "
            f"(weights_only=True); not unpickling it. Detail: {_first_line(e)}"
        ) from None
    except MemoryError:
        raise CheckpointError(f"{path}: {fmt} file declares more data than this machine's memory") from None
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError, KeyError, struct.error, IndexError,
            TypeError, AttributeError, OverflowError) as e:
        raise CheckpointError(f"{path}: {fmt} file is truncated or corrupt: {_first_line(e)}") from None
    except Exception as e:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"{path}: {fmt} file could not be read: {type(e).__name__}: {_first_line(e)}") from None
    raise CheckpointError(
        f"{path}: unknown checkpoint format ({path.stat().st_size} bytes, none of the known headers); expected "
        "safetensors, a torch.save file or a TorchScript archive"
    )


def _first_line(e: BaseException) -> str:
    """The first line of an error, short and without control characters (never file bytes)."""
    text = (str(e).splitlines() or [type(e).__name__])[0][:300]
    return "".join(c if c.isprintable() else "?" for c in text)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable JSON file: {e}") from None
