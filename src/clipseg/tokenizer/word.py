"""A word-level tokenizer for the generated scene world (`clipseg.worldgen`).

The world's captions and phrases use a closed vocabulary (`WORLD_WORDS`, about a
hundred words), so a small CLIP trained on it needs no BPE: one id per word. Ids:

    0 <pad>, 1 <unk>, 2 .. 2+V-1 the words (sorted), then <sot>, then <eot>

so `eot_token` is the largest id (the text encoder pools at argmax of the ids) and
padding is 0, as with OpenAI's tokenizer. Text is lower-cased and split on letters
(`split_words`): punctuation is dropped, any word outside the vocabulary becomes
<unk>. The vocabulary is saved as a small JSON file next to the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import re

from ..io.files import load_json_file, parse_json
from .packing import PackedIds

PAD, UNK, SOT, EOT = "<pad>", "<unk>", "<sot>", "<eot>"
FORMAT = "clipseg-word-tokenizer"


def split_words(text: str) -> list[str]:
    """Lower-case words of a caption or phrase (punctuation and template braces dropped)."""
    return re.findall(r"[a-z]+", text.lower())


MAX_WORDS = 100_000
MAX_WORD_CHARS = 64
MAX_JSON_BYTES = 16 << 20  # 100 000 words of 64 characters, quoted and separated, fit in 7 MB

class WordTokenizer(PackedIds):
    """Word-level tokenizer implementing the `clipseg.tokenizer.Tokenizer` protocol."""

    pad_token: int = 0
    unk_token: int = 1

    def __init__(self, words: Iterable[str], context_length: int = 16) -> None:
        words = list(dict.fromkeys(w.lower() for w in words))
        if any(w in (PAD, UNK, SOT, EOT) or not w.isalpha() for w in words):
            raise ValueError("vocabulary words must be alphabetic and not special tokens")
        if context_length < 2:
            raise ValueError(f"context_length must be at least 2 (SOT + EOT), got {context_length}")
        self.words: tuple[str, ...] = tuple(words)
        self.context_length = context_length
        self._tokens = [PAD, UNK, *self.words, SOT, EOT]
        self._encoder = {t: i for i, t in enumerate(self._tokens)}
        self.vocab_size: int = len(self._tokens)
        self.sot_token: int = self._encoder[SOT]
        self.eot_token: int = self._encoder[EOT]

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """Ids of the words of `text` (no SOT/EOT); unknown words -> <unk>."""
        return [self._encoder.get(w, self.unk_token) for w in split_words(text)]

    def unknown_words(self, text: str) -> list[str]:
        """Words of `text` that are not in the vocabulary."""
        return [w for w in split_words(text) if w not in self._encoder]

    def decode(self, ids: Iterable[int]) -> str:
        """Words back from ids; SOT and padding dropped, stops at the first EOT."""
        if hasattr(ids, "flatten"):  # a tensor or an array
            ids = ids.flatten().tolist()
        out = []
        for i in ids:
            i = int(i)
            if i == self.eot_token:
                break
            if i in (self.sot_token, self.pad_token):
                continue
            out.append(self._tokens[i])
        return " ".join(out)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {"format": FORMAT, "context_length": self.context_length, "words": list(self.words)}

    @classmethod
    def from_dict(cls, d: dict) -> "WordTokenizer":
        """Inverse of `to_dict`; ValueError for anything else (also for untrusted files: a
        list of at most MAX_WORDS words of at most MAX_WORD_CHARS characters, a context length of
        2 to 1024)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a word tokenizer description (format {d.get('format') if isinstance(d, dict) else None!r})")
        words, context = d.get("words"), d.get("context_length")
        if not isinstance(words, list) or len(words) > MAX_WORDS or not all(isinstance(w, str) for w in words):
            raise ValueError(f"'words' must be a list of at most {MAX_WORDS} strings")
        if any(len(w) > MAX_WORD_CHARS for w in words):
            raise ValueError(f"a word of the vocabulary is longer than {MAX_WORD_CHARS} characters")
        if not isinstance(context, int) or isinstance(context, bool) or not 2 <= context <= 1024:
            raise ValueError(f"'context_length' must be an integer in [2, 1024], got {context!r}")
        return cls(words, context)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "WordTokenizer":
        """A vocabulary from its JSON text (at most MAX_JSON_BYTES); ValueError for anything else."""
        if len(text) > MAX_JSON_BYTES:
            raise ValueError(f"the vocabulary is {len(text) / (1 << 20):.1f} MB of JSON, more than the "
                             f"{MAX_JSON_BYTES >> 20} MB a word tokenizer of {MAX_WORDS} words needs")
        return cls.from_dict(parse_json(text, "the vocabulary"))

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "WordTokenizer":
        """A vocabulary file (a regular file of at most MAX_JSON_BYTES); ValueError naming the problem."""
        return cls.from_dict(load_json_file(path, MAX_JSON_BYTES, "vocabulary"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordTokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size}, context_length={self.context_length})"
