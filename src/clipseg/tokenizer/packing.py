"""Laying token ids out as the text encoder expects: [SOT, ids..., EOT, pad, ...]."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def pack_token_ids(
    texts: str | Sequence[str],
    encode: Callable[[str], list[int]],
    sot: int,
    eot: int,
    pad: int,
    length: int,
    truncate: bool = True,
) -> np.ndarray:
    """(batch, length) int64 array of `encode`d prompts. A prompt that does not fit is cut
    so that the last position holds EOT when `truncate`; otherwise ValueError."""
    if isinstance(texts, str):
        texts = [texts]
    if length < 2:
        raise ValueError(f"context_length must be at least 2 (SOT + EOT), got {length}")
    out = np.full((len(texts), length), pad, dtype=np.int64)
    for row, text in enumerate(texts):
        tokens = [sot, *encode(text), eot]
        if len(tokens) > length:
            if not truncate:
                shown = text if len(text) <= 40 else text[:37] + "..."
                raise ValueError(
                    f"prompt {shown!r} is {len(tokens)} tokens long (including start and "
                    f"end tokens), more than the context length of {length}"
                )
            tokens = tokens[:length]
            tokens[-1] = eot
        out[row, : len(tokens)] = tokens
    return out


class PackedIds:
    """`ids` (numpy) and `__call__` (a torch LongTensor) for a tokenizer that has `encode`,
    `sot_token`, `eot_token`, `pad_token` and `context_length`: rows [SOT, ids..., EOT, pad...];
    a prompt that does not fit is cut so that the last position holds EOT when `truncate`,
    else ValueError."""

    def ids(self, texts: str | Sequence[str], context_length: int | None = None,
            truncate: bool = True) -> np.ndarray:
        """(batch, context_length) int64 numpy array (no torch needed)."""
        length = self.context_length if context_length is None else context_length
        return pack_token_ids(texts, self.encode, self.sot_token, self.eot_token, self.pad_token, length, truncate)

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None,
                 truncate: bool = True) -> "torch.LongTensor":
        """`ids` as a (batch, context_length) LongTensor."""
        import torch

        return torch.from_numpy(self.ids(texts, context_length, truncate))
