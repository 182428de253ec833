"""Checkpoint reading, conversion of foreign layouts, the pretrained registry, loading.

The registry and the error type load without torch; the loaders on first use."""

from __future__ import annotations

from ..io.lazy import lazy_getattr
from .errors import CheckpointError
from .registry import DEFAULT_WEIGHTS, PRETRAINED

_LAZY = {"load_clipseg": "loader", "read_backbone": "loader", "read_vit_backbone": "loader", "save_clipseg": "loader",
         "embedded_tokenizer": "loader",
         "read_checkpoint": "reader"}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = ["CheckpointError", "embedded_tokenizer", "load_clipseg", "read_backbone", "read_vit_backbone", "save_clipseg", "read_checkpoint",
           "DEFAULT_WEIGHTS", "PRETRAINED"]
