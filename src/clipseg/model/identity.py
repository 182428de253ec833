"""What travels with a model besides its tensors: the tokenizer it was trained with, the
threshold its masks are meant to be cut at, the backbone a decoder-only file needs, and
where it came from. `clipseg.load` fills it from the weights' metadata; `save_clipseg`,
the trainer and the ONNX export write it back, so every file the project writes says
which tokenizer and threshold belong to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..tokenizer import Tokenizer


@dataclass
class ModelIdentity:
    weights: str = ""  # what the user asked for (a registry name, a path, 'tiny:random:0')
    source: str = ""  # what was read: an absolute path, a hub id, 'random'
    tokenizer: Tokenizer | None = None  # the word tokenizer the weights carry; None: CLIP's BPE tokenizer
    threshold: float | None = None  # recommended by the weights; None: constants.DEFAULT_THRESHOLD
    backbone: str | None = None  # the backbone it was built on (a registry name or a path), when known
    fallback: str | None = None  # why the embedded world model runs instead of the weights asked for
    details: dict[str, Any] = field(default_factory=dict)  # file size, seed, backbone file: for `describe`
