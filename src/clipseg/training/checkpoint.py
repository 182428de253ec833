"""Training checkpoints: written atomically, checked against the run that resumes them.

A checkpoint holds everything an interrupted run needs to end with exactly the weights an
uninterrupted one gets: the decoder, optimizer, LR scheduler and grad-scaler states, the
iteration reached (= the data sampler's position, see sampler.py), the sampler's identity
and both configs. No RNG state is needed: the trainer reseeds torch from
(seed, iteration, rank) at every iteration (trainer.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "clipseg-train-checkpoint"
VERSION = 1
# TrainConfig fields that change the result: a resumed run must use the checkpoint's values.
RESUME_FIELDS = ("iterations", "batch_size", "lr", "lr_min", "weight_decay", "amp", "max_text_weight", "seed")


class CheckpointMismatchError(ValueError):
    """The checkpoint belongs to another model or training configuration."""


def checkpoint_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / CHECKPOINT_NAME


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename it over `path` (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointMismatchError(f"'{path}' is not a clipseg training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointMismatchError(f"'{path}' has checkpoint version {state.get('version')}, expected {VERSION}")
    return state


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
