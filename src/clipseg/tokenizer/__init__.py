"""Text tokenizers for the CLIP text encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .bpe import CLIPTokenizer

if TYPE_CHECKING:
    import torch

__all__ = ["CLIPTokenizer", "Tokenizer", "load_tokenizer"]


def load_tokenizer(spec: str = "clip") -> "Tokenizer":
    """'clip': CLIP's BPE tokenizer (its tables read once per process); otherwise the path of a
    word-tokenizer vocabulary (JSON, `WordTokenizer.save`) as the generated world uses.
    ValueError naming the file when it cannot be read."""
    if spec == "clip":
        return CLIPTokenizer()
    from .word import WordTokenizer

    try:
        return WordTokenizer.load(spec)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read tokenizer vocabulary '{spec}': {e}") from None


@runtime_checkable
class Tokenizer(Protocol):
    """What the text encoder needs from a tokenizer.

    Calling it on one prompt or a sequence of prompts returns a LongTensor of
    shape ``(batch, context_length)`` laid out as
    ``[sot_token, ids..., eot_token, pad, pad, ...]``; a prompt that is too
    long is cut so that the last position holds ``eot_token`` (or a
    ``ValueError`` is raised when ``truncate`` is false).

    ``eot_token`` must be the largest id the tokenizer can produce
    (``vocab_size - 1`` in practice): the text encoder pools the features at
    ``argmax(ids)`` along each row, which must be the end-of-text position.
    """

    vocab_size: int
    context_length: int
    sot_token: int
    eot_token: int

    def __call__(
        self,
        texts: str | Sequence[str],
        context_length: int | None = None,
        truncate: bool = True,
    ) -> "torch.LongTensor": ...

    def ids(self, texts: str | Sequence[str], context_length: int | None = None,
            truncate: bool = True) -> np.ndarray: ...
