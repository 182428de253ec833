"""Byte-level BPE tokenizer compatible with OpenAI CLIP.

This re-implements the algorithm of OpenAI's ``SimpleTokenizer``
(https://github.com/openai/CLIP, MIT licence) so that the ids match the ones
the pretrained CLIP text encoder was trained with:

1. clean the text: ``ftfy.fix_text``, HTML-unescape twice, collapse runs of
   whitespace, lower-case;
2. split it into words with CLIP's regular expression (contractions, runs of
   letters, single digits, runs of other symbols);
3. map each word's UTF-8 bytes onto printable unicode characters and apply
   the BPE merges, the last symbol of a word carrying the ``</w>`` marker.

One deliberate difference: the literal strings ``<|startoftext|>`` and
``<|endoftext|>`` inside a prompt are tokenized as ordinary text, never turned
into the special ids, so user text cannot inject an early end-of-text token
(the text encoder pools at the first occurrence of the largest id).
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.resources
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ftfy
import regex

from .packing import PackedIds

__all__ = ["CLIPTokenizer", "bytes_to_unicode", "get_pairs", "clean_text"]

VOCAB_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
SOT_TEXT = "<|startoftext|>"
EOT_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"

# Number of merges CLIP uses: 49152 BPE tokens minus the 256 byte tokens and
# the 2 special tokens. The merges sit on lines 1..48894 of the vocabulary file
# (line 0 is a version header).
_N_MERGES = 49152 - 256 - 2

# Contractions, runs of letters, single digits, runs of anything else that is
# not whitespace. The text is lower-cased before the split; IGNORECASE is kept
# to match the reference exactly.
_WORD_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


@functools.lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """Map every byte value 0..255 to a printable unicode character.

    Printable Latin-1 bytes map to themselves; the others (control characters,
    whitespace, ...) are moved to code points from 256 upwards, so that BPE
    never has to deal with whitespace or control characters and every byte
    string has a lossless text form.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    byte_values = printable[:]
    code_points = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            byte_values.append(b)
            code_points.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(byte_values, code_points)}


def get_pairs(word: Sequence[str]) -> set[tuple[str, str]]:
    """Return the set of adjacent symbol pairs of ``word``."""
    return {(a, b) for a, b in zip(word[:-1], word[1:])}


def clean_text(text: str) -> str:
    """Normalise ``text`` the way CLIP does before splitting it into words."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return " ".join(text.split()).lower()


def _read_merges(vocab_path: str | Path | None) -> list[tuple[str, str]]:
    """Read the merge list from the gzipped CLIP BPE file."""
    if vocab_path is None:
        resource = importlib.resources.files("clipseg.tokenizer") / VOCAB_FILENAME
        raw = resource.read_bytes()
    else:
        raw = Path(vocab_path).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    if len(merges) != _N_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{vocab_path or VOCAB_FILENAME} is not a valid CLIP BPE vocabulary file")
    return merges  # type: ignore[return-value]


@dataclass(frozen=True)
class _Vocabulary:
    """The parsed BPE tables (read-only, shared by every tokenizer of the same file)."""

    merges: tuple[tuple[str, str], ...]
    encoder: dict[str, int]
    decoder: dict[int, str]
    ranks: dict[tuple[str, str], int]


@functools.lru_cache(maxsize=4)
def _vocabulary(vocab_path: str | None, mtime_ns: int | None) -> _Vocabulary:
    """Read and index a BPE file once per process (keyed by path and modification time)."""
    merges = tuple(_read_merges(vocab_path))
    byte_symbols = list(bytes_to_unicode().values())
    tokens = (
        byte_symbols
        + [s + END_OF_WORD for s in byte_symbols]
        + ["".join(m) for m in merges]
        + [SOT_TEXT, EOT_TEXT]
    )
    encoder = {tok: i for i, tok in enumerate(tokens)}
    if len(encoder) != len(tokens):
        raise ValueError("the BPE vocabulary contains duplicate tokens")
    return _Vocabulary(merges, encoder, dict(enumerate(tokens)), {m: i for i, m in enumerate(merges)})


class CLIPTokenizer(PackedIds):
    """Tokenizer producing the token ids of OpenAI CLIP's text encoder.

    Calling the tokenizer on one or several prompts returns a ``LongTensor``
    of shape ``(batch, context_length)`` laid out as
    ``[SOT, ids..., EOT, 0, 0, ...]``.
    """

    pad_token: int = 0

    def __init__(self, vocab_path: str | Path | None = None, context_length: int = 77) -> None:
        if context_length < 2:
            raise ValueError(f"context_length must be at least 2 (SOT + EOT), got {context_length}")
        self.context_length = context_length

        self._byte_encoder = bytes_to_unicode()
        self._byte_decoder = {c: b for b, c in self._byte_encoder.items()}

        path = None if vocab_path is None else str(Path(vocab_path).resolve())
        vocab = _vocabulary(path, None if path is None else Path(path).stat().st_mtime_ns)
        self._merges = vocab.merges
        self._encoder: dict[str, int] = vocab.encoder  # shared, read-only
        self._decoder: dict[int, str] = vocab.decoder
        self._ranks: dict[tuple[str, str], int] = vocab.ranks

        self.vocab_size: int = len(self._encoder)
        self.sot_token: int = self._encoder[SOT_TEXT]
        self.eot_token: int = self._encoder[EOT_TEXT]

        # Per-instance cache (a decorator on the method would keep every
        # instance alive forever).
        self._bpe_ids = functools.lru_cache(maxsize=2**16)(self._bpe_uncached)

    # ------------------------------------------------------------------ BPE
    def _bpe_uncached(self, word: str) -> tuple[int, ...]:
        """Apply the merges to one byte-mapped word and return its token ids."""
        symbols = list(word[:-1]) + [word[-1] + END_OF_WORD]
        while len(symbols) > 1:
            # The adjacent pair that was merged earliest during training.
            pair = min(get_pairs(symbols), key=lambda p: self._ranks.get(p, _N_MERGES))
            if pair not in self._ranks:
                break
            first, second = pair
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(self._encoder[s] for s in symbols)

    # ------------------------------------------------------------ public API
    def encode(self, text: str) -> list[int]:
        """Return the BPE ids of ``text``, without SOT/EOT."""
        ids: list[int] = []
        for word in _WORD_PATTERN.findall(clean_text(text)):
            mapped = "".join(self._byte_encoder[b] for b in word.encode("utf-8"))
            ids.extend(self._bpe_ids(mapped))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Turn ids back into text.

        SOT is dropped, and decoding stops at the first EOT, so a padded row
        of ``__call__``'s output decodes to its prompt. Words are separated
        by single spaces; the text comes out cleaned (lower case).
        """
        if hasattr(ids, "flatten"):  # a tensor or an array
            ids = ids.flatten().tolist()
        pieces: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eot_token:
                break
            if i == self.sot_token:
                continue
            pieces.append(self._decoder[i])
        data = bytes(self._byte_decoder[c] for c in "".join(pieces))
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ").strip()

    def save_hf_vocab(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``vocab.json`` and ``merges.txt`` for Hugging Face's CLIPTokenizer.

        Both are derived from the same BPE file as this tokenizer, so a
        ``transformers.CLIPTokenizer`` built from them yields the same ids.
        Returns the two paths.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab_file = directory / "vocab.json"
        merges_file = directory / "merges.txt"
        with open(vocab_file, "w", encoding="utf-8") as f:
            json.dump(self._encoder, f, ensure_ascii=False, indent=2)
            f.write("\n")
        with open(merges_file, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for first, second in self._merges:
                f.write(f"{first} {second}\n")
        return vocab_file, merges_file

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, "
            f"context_length={self.context_length})"
        )
