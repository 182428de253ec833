"""Checkpoint reading, conversion of foreign layouts, the pretrained registry, loading."""

from .errors import CheckpointError
from .loader import load_clipseg, read_backbone, read_vit_backbone, save_clipseg
from .reader import read_checkpoint
from .registry import DEFAULT_WEIGHTS, PRETRAINED

__all__ = ["CheckpointError", "load_clipseg", "read_backbone", "read_vit_backbone", "save_clipseg", "read_checkpoint", "DEFAULT_WEIGHTS",
           "PRETRAINED"]
