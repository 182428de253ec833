"""Training checkpoints: written atomically, checked against the run that resumes them.

A checkpoint holds everything an interrupted run needs to end with exactly the weights an
uninterrupted one gets: the decoder, optimizer, LR scheduler and grad-scaler states, the
iteration reached (= the data sampler's position, see sampler.py), the sampler's identity
and both configs. No RNG state is needed: the trainer reseeds torch from
(seed, iteration, rank) at every iteration (trainer.py).

Each rank's text-embedding cache is part of the checkpoint, in a file of its own named by
the iteration (`text_cache.rank{R}.it{N}.pt`). The order of writes makes the unit atomic:
every rank writes its cache for N, then rank 0 replaces `checkpoint.pt` (the commit), then
caches of other iterations are deleted. A kill anywhere leaves `checkpoint.pt` at some M
with the caches for M still there; a resume that finds them missing stops with an error.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..io.atomic import atomic_write

from .config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "clipseg-train-checkpoint"
VERSION = 2  # 2: text caches per iteration, committed by checkpoint.pt
# TrainConfig fields that change the result: a resumed run must use the checkpoint's values.
RESUME_FIELDS = ("iterations", "batch_size", "lr", "lr_min", "weight_decay", "amp", "max_text_weight", "seed")


class CheckpointMismatchError(ValueError):
    """The checkpoint belongs to another model or training configuration."""


class CheckpointReadError(CheckpointMismatchError):
    """The checkpoint file is truncated, corrupt or not what it claims to be."""


def checkpoint_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / CHECKPOINT_NAME


def text_cache_path(out_dir: str | Path, rank: int, iteration: int) -> Path:
    return Path(out_dir) / f"text_cache.rank{rank}.it{iteration}.pt"


def remove_other_text_caches(out_dir: str | Path, rank: int, keep: int) -> None:
    """Delete this rank's text caches of iterations other than `keep` (after a commit)."""
    for f in Path(out_dir).glob(f"text_cache.rank{rank}.it*.pt"):
        if f.name != text_cache_path(out_dir, rank, keep).name:
            f.unlink(missing_ok=True)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename it over `path` (never a half-written file)."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(path, lambda f: torch.save(payload, f))


# What a checkpoint must hold, and of which type, before any of it is used.
_CHECKPOINT_FIELDS = {"iteration": int, "model_config": dict, "train_config": dict, "sampler": dict, "decoder": dict,
                      "optimizer": dict, "scheduler": dict, "scaler": dict}
_CACHE_FIELDS = {"iteration": int, "text_cache": dict}


def _read(path: Path, map_location, fields: dict[str, type], what: str) -> dict[str, Any]:
    from ..weights.errors import CheckpointError
    from ..weights.reader import check_tensor_extents, check_zip_sizes

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                check_zip_sizes(path, zf)
        state = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError as e:
        raise CheckpointReadError(f"{what} '{path}' is refused: {e}") from None
    except pickle.UnpicklingError:
        raise CheckpointReadError(f"{what} '{path}' holds Python objects that safe loading refuses; it was not "
                                  "written by clipseg's trainer") from None
    except Exception as e:  # truncated zip, bad pickle, ... : torch raises many types
        first = (str(e).splitlines() or [""])[0][:200]
        raise CheckpointReadError(f"{what} '{path}' is truncated or corrupt ({type(e).__name__}: "
                                  f"{''.join(c if c.isprintable() else '?' for c in first)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointMismatchError(f"'{path}' is not a clipseg training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointMismatchError(f"'{path}' has checkpoint version {state.get('version')!r:.20}, expected "
                                      f"{VERSION} (written by another clipseg version); start afresh without resume")
    for name, kind in fields.items():
        if not isinstance(state.get(name), kind) or isinstance(state.get(name), bool):
            raise CheckpointReadError(f"{what} '{path}' lacks a valid '{name}' ({kind.__name__})")
    tensors = {f"{k}": v for k, v in state.get("decoder", {}).items() if isinstance(v, torch.Tensor)}
    try:
        check_tensor_extents(tensors, path, "checkpoint")
    except CheckpointError as e:
        raise CheckpointReadError(str(e)) from None
    return state


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """The training checkpoint at `path`, its structure checked; CheckpointMismatchError
    (CheckpointReadError for unreadable files) naming the file otherwise."""
    return _read(path, map_location, _CHECKPOINT_FIELDS, "checkpoint")


def load_text_cache(out_dir: Path, rank: int, iteration: int) -> dict[str, Any]:
    """This rank's text cache committed with the checkpoint of `iteration`."""
    path = text_cache_path(out_dir, rank, iteration)
    if not path.exists():
        raise CheckpointReadError(
            f"the text-embedding cache of rank {rank} for the checkpoint at iteration {iteration} ('{path}') is "
            "missing, so a resumed run would not repeat the interrupted one exactly; start afresh without resume")
    state = _read(path, "cpu", _CACHE_FIELDS, "text cache")
    cache = state["text_cache"]
    if state["iteration"] != iteration or not isinstance(cache.get("texts"), list) \
            or not isinstance(cache.get("embeddings"), torch.Tensor) \
            or (cache["texts"] and len(cache["texts"]) != len(cache["embeddings"])):
        raise CheckpointReadError(f"text cache '{path}' does not belong to the checkpoint at iteration {iteration}")
    return cache


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    a, b = _flatten(saved), _flatten(current)
    return [f"{k}: checkpoint {a.get(k, '<missing>')!r}, now {b.get(k, '<missing>')!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def check_compatible(state: dict[str, Any], path: Path, model_config: dict[str, Any], config: TrainConfig) -> None:
    """Raise CheckpointMismatchError naming every field where the checkpoint differs from this run."""
    problems = _differences(state["model_config"], model_config)
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint '{path}' belongs to a different model config:\n  " + "\n  ".join(problems)
            + "\nuse another out_dir, or start afresh without resume"
        )
    saved = {k: state["train_config"].get(k) for k in RESUME_FIELDS}
    problems = _differences(saved, {k: getattr(config, k) for k in RESUME_FIELDS})
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint '{path}' was trained with other settings, so resuming would not continue that run:\n  "
            + "\n  ".join(problems)
        )
