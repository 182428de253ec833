"""Laying token ids out as the text encoder expects: [SOT, ids..., EOT, pad, ...]."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


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
