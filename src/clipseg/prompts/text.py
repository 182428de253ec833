"""Text prompts: validated tokenization and the LRU cache of their embeddings, shared by
`PromptEncoder` (PyTorch) and `OnnxPredictor` (onnxruntime)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

from ..tokenizer import Tokenizer
from .types import PromptError

E = TypeVar("E")  # an embedding: torch.Tensor or np.ndarray


def tokenize_prompts(tokenizer: Tokenizer, texts: Sequence[str], context_length: int, truncate: bool) -> np.ndarray:
    """Token ids (N, context_length) int64; empty or (unless truncate) too-long prompts raise PromptError."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise PromptError(f"text prompt #{i} is empty")
    try:
        return tokenizer.ids(list(texts), context_length=context_length, truncate=truncate)
    except ValueError as e:
        raise PromptError(f"text prompt too long for the model's {context_length}-token context: {e}") from None


def unknown_words(tokenizer: Tokenizer, texts: Sequence[str]) -> dict[str, list[str]]:
    """{prompt: its words outside the tokenizer's vocabulary}, for the prompts that have any.
    Word tokenizers (the generated world's) map unknown words to <unk>, so such a prompt means
    less than it says; CLIP's byte-level BPE has no unknown words (always {})."""
    find = getattr(tokenizer, "unknown_words", None)
    if find is None:
        return {}
    out = {}
    for text in texts:
        if isinstance(text, str) and (words := list(dict.fromkeys(find(text)))):
            out[text] = words
    return out


def unknown_words_warning(found: dict[str, list[str]]) -> str | None:
    """One line naming the unknown words of each prompt, or None."""
    if not found:
        return None
    parts = [f"'{t}': {', '.join(w)}" for t, w in found.items()]
    return "words outside the model's vocabulary (read as <unk>, the result ignores them): " + "; ".join(parts)


class TextEmbeddingCache(Generic[E]):
    """Embeddings by prompt string, least recently used dropped beyond `size` entries."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[str, E] = OrderedDict()

    def lookup(self, texts: Sequence[str], compute: Callable[[list[str]], Sequence[E]]) -> list[E]:
        """The embedding of every text, in order; `compute` gets the missing ones in one batch
        (each text once) and returns their embeddings in that order."""
        todo = list(dict.fromkeys(t for t in texts if t not in self.entries))
        if todo:
            self.entries.update(zip(todo, compute(todo)))
        out = []
        for t in texts:  # most recently used last
            self.entries.move_to_end(t)
            out.append(self.entries[t])
        while len(self.entries) > self.size:  # after the lookups: a batch larger than the cache still works
            self.entries.popitem(last=False)
        return out

    def clear(self) -> None:
        self.entries.clear()
