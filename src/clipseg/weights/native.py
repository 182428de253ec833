"""The project's own weight files: safetensors with the config in the metadata.

One writer (`write_safetensors`: atomic, an ordinary file) serves CLIPSeg models
(`loader.save_clipseg`, format "clipseg") and bare CLIPs such as the generated world's
(`save_clip` / `load_clip`, format "clipseg-clip").
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..io.atomic import atomic_write
from ..model.clip import CLIP
from ..model.fast_cpu import optimize_for_cpu
from ..model.config import CLIPConfig, config_from_dict
from .errors import CheckpointError

CLIP_FORMAT = "clipseg-clip"


def write_safetensors(state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> Path:
    """Tensors (made contiguous, on the CPU) and string metadata to `path`, atomically."""
    from safetensors.torch import save

    sd = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    data = save(sd, metadata=metadata)
    umask = os.umask(0)
    os.umask(umask)
    return atomic_write(Path(path), lambda f: f.write(data), mode=0o666 & ~umask)


def save_clip(model: CLIP, path: str | Path, meta: dict[str, Any] | None = None, tokenizer: str | None = None) -> Path:
    """A CLIP as safetensors with its config (and `meta`, JSON) in the metadata; `tokenizer`: a
    word-tokenizer vocabulary (JSON) to travel with it."""
    metadata = {"format": CLIP_FORMAT, "clip_config": json.dumps(dataclasses.asdict(model.config)),
                "meta": json.dumps(meta or {})}
    if tokenizer is not None:
        metadata["tokenizer"] = tokenizer
    return write_safetensors(model.state_dict(), path, metadata)


def load_clip(path: str | Path) -> tuple[CLIP, dict[str, Any]]:
    """Inverse of `save_clip`: the model (eval mode) and the saved `meta`. CheckpointError
    naming the file when it is not such a file or does not fit its own config."""
    from .loader import check_fits
    from .reader import read_checkpoint

    raw = read_checkpoint(path)
    where = f"{raw.path} ({raw.format})"
    if raw.metadata.get("format") != CLIP_FORMAT or "clip_config" not in raw.metadata:
        raise CheckpointError(f"{where}: not a clipseg CLIP file (format {raw.metadata.get('format')!r})")
    try:
        config = config_from_dict(CLIPConfig, json.loads(raw.metadata["clip_config"]), "clip_config")
        meta = json.loads(raw.metadata.get("meta", "{}"))
    except ValueError as e:
        raise CheckpointError(f"{where}: its clip_config is invalid: {e}") from None
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in CLIP(config).state_dict().items()}
    check_fits(shapes, raw.state_dict, where)
    model = CLIP(config)
    model.load_state_dict(raw.state_dict)
    return optimize_for_cpu(model).eval(), meta  # as load_clipseg's models: the CPU speed paths
