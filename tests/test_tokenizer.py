"""Tests of the CLIP BPE tokenizer (fast, offline).

The reference is ``transformers.CLIPTokenizer`` built from the vocab.json /
merges.txt that ``CLIPTokenizer.save_hf_vocab`` derives from our BPE file.
"""

from __future__ import annotations

import hashlib
import html
import importlib.resources
import json

import ftfy
import pytest
import torch

from clipseg.tokenizer import CLIPTokenizer, Tokenizer

CTX = 77
LONG_PROMPT = " ".join(
    f"word{i % 10} object" if i % 3 == 0 else "segmentation" for i in range(200)
)

PROMPTS = [
    # plain phrases
    "a photo of a cat",
    "dog",
    "the red car on the left",
    # upper / mixed case
    "A Photo Of A CAT",
    "SHOUTING IN CAPITALS",
    "mixedCase camelCase snake_case",
    # punctuation
    "Hello, world!",
    "what is this?!...",
    "semi;colons: and (parentheses) [brackets] {braces}",
    "email@example.com #hashtag $100 50% off",
    "a-b_c/d\\e",
    # numbers
    "3 cats and 12 dogs",
    "the year 2024, room 101b",
    "3.14159 and 1,000,000",
    # apostrophes
    "don't",
    "it's a dog's life",
    "you're we've I'm they'll she'd",
    "DON'T STOP",
    "'quoted' \"double quoted\"",
    # unicode / accents
    "café crème brûlée",
    "naïve façade über straße",
    "日本語のテキスト",
    "中文 汉字",
    "русский текст",
    "Ελληνικά ΣΟΦΟΣ",
    # emoji
    "emoji 😀 cat 🐱",
    "👍🏽 thumbs",
    "flag 🇫🇷 france",
    # html entities
    "fish &amp; chips",
    "&lt;b&gt;bold&lt;/b&gt;",
    "Tom &amp;amp; Jerry",
    # things ftfy repairs
    "ﬁne ligature",
    "curly ‘quotes’ and “double” don’t",
    "ｆｕｌｌｗｉｄｔｈ text",
    # whitespace
    "  leading and trailing spaces   ",
    "multiple    inner\tspaces\nand newlines",
    "\t\n",
    "",
    # truncation
    LONG_PROMPT,
]

# Prompts on which Hugging Face's (fast) CLIPTokenizer, fed the raw text, does
# not reproduce OpenAI's SimpleTokenizer, because its normaliser is only
# NFC + whitespace + lowercase. Ours follows OpenAI; for these the comparison
# is made against HF fed the text as OpenAI cleans it.
HF_CLEANING_DIFFERS = {
    "fish &amp; chips": "no html.unescape in HF",
    "&lt;b&gt;bold&lt;/b&gt;": "no html.unescape in HF",
    "Tom &amp;amp; Jerry": "no html.unescape in HF",
    "ﬁne ligature": "no ftfy in HF (ligatures)",
    "curly ‘quotes’ and “double” don’t": "no ftfy in HF (uncurl quotes)",
    "ｆｕｌｌｗｉｄｔｈ text": "no ftfy in HF (full-width characters)",
    "Ελληνικά ΣΟΦΟΣ": "HF lowercases Σ to σ everywhere; Python's str.lower gives final ς",
}


def openai_clean(text: str) -> str:
    """OpenAI's cleaning, written independently of clipseg (whitespace is left to HF)."""
    return html.unescape(html.unescape(ftfy.fix_text(text))).lower()


@pytest.fixture(scope="module")
def tok() -> CLIPTokenizer:
    return CLIPTokenizer()


@pytest.fixture(scope="module")
def hf_tok(tok, tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    vocab_file, merges_file = tok.save_hf_vocab(tmp_path_factory.mktemp("hf_vocab"))
    return transformers.CLIPTokenizer(str(vocab_file), str(merges_file))


def hf_ids(hf_tok, text: str) -> list[int]:
    return hf_tok(text, padding="max_length", truncation=True, max_length=CTX)["input_ids"]


def check_row_against_hf(tok, row: torch.Tensor, hf: list[int], hf_pad: int) -> None:
    row_list = row.tolist()
    assert len(row_list) == len(hf) == CTX
    n = row_list.index(tok.eot_token) + 1  # unpadded length, EOT included
    assert row_list[:n] == hf[:n]
    assert hf[n - 1] == tok.eot_token
    assert all(t == tok.pad_token == 0 for t in row_list[n:])  # our padding: zeros
    assert all(t == hf_pad for t in hf[n:])  # HF pads with its own pad token


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: repr(p[:30]))
def test_matches_hf_clip_tokenizer(tok, hf_tok, prompt):
    row = tok(prompt)[0]
    # Always: same ids as HF fed the text cleaned the OpenAI way.
    check_row_against_hf(tok, row, hf_ids(hf_tok, openai_clean(prompt)), hf_tok.pad_token_id)
    # And, except for the documented cleaning differences, on the raw text too.
    if prompt not in HF_CLEANING_DIFFERS:
        check_row_against_hf(tok, row, hf_ids(hf_tok, prompt), hf_tok.pad_token_id)


def test_batch_matches_single(tok):
    batch = tok(PROMPTS)
    assert batch.shape == (len(PROMPTS), CTX) and batch.dtype == torch.long
    for i in (0, 5, 17, len(PROMPTS) - 1):
        assert torch.equal(batch[i], tok(PROMPTS[i])[0])


def test_known_ids(tok):
    # Ids from OpenAI's reference tokenizer.
    assert tok.encode("a photo of a cat") == [320, 1125, 539, 320, 2368]
    row = tok("a photo of a cat")
    assert row.shape == (1, CTX)
    assert row[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert not row[0, 7:].any()


def test_special_ids_and_vocab_size(tok):
    assert tok.vocab_size == 49408
    assert tok.context_length == CTX
    assert (tok.sot_token, tok.eot_token, tok.pad_token) == (49406, 49407, 0)
    assert tok.eot_token == tok.vocab_size - 1  # the text encoder pools at argmax
    assert isinstance(tok, Tokenizer)


def test_truncation_ends_with_eot(tok, hf_tok):
    ids = tok.encode(LONG_PROMPT)
    assert len(ids) > CTX
    row = tok(LONG_PROMPT)[0]
    assert row[0].item() == tok.sot_token
    assert row[CTX - 1].item() == tok.eot_token
    assert row[1 : CTX - 1].tolist() == ids[: CTX - 2]
    assert int(row.argmax()) == CTX - 1
    hf = hf_ids(hf_tok, LONG_PROMPT)
    assert hf[CTX - 1] == tok.eot_token
    assert row.tolist() == hf


def test_truncate_false_raises_with_token_count(tok):
    n_tokens = len(tok.encode(LONG_PROMPT)) + 2
    with pytest.raises(ValueError, match=rf"\b{n_tokens} tokens") as info:
        tok(LONG_PROMPT, truncate=False)
    assert "word0 object" in str(info.value)  # names the (shortened) prompt
    assert LONG_PROMPT not in str(info.value)


def test_exact_fit_and_context_length_override(tok):
    fits = "cat " * (CTX - 2)  # "cat" is one token
    row = tok(fits, truncate=False)[0]
    assert row[-1].item() == tok.eot_token and (row[1:-1] == 2368).all()
    with pytest.raises(ValueError):
        tok(fits + "cat", truncate=False)

    short = tok("a photo of a cat", context_length=5)
    assert short.tolist() == [[49406, 320, 1125, 539, 49407]]
    assert tok(["a", "b"], context_length=10).shape == (2, 10)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_prompt_gives_sot_eot(tok, text):
    row = tok(text)[0]
    assert row[:2].tolist() == [tok.sot_token, tok.eot_token]
    assert not row[2:].any()
    assert tok.encode(text) == []


def test_special_token_text_is_not_injected(tok):
    # Unlike OpenAI/HF, the literal string does not become the EOT id.
    row = tok("<|endoftext|> a cat")[0]
    assert (row == tok.eot_token).sum() == 1
    assert tok.sot_token not in tok.encode("<|startoftext|>")


@pytest.mark.parametrize(
    "text",
    [
        "a photo of a cat",
        "the quick brown fox jumps over the lazy dog",
        "segmentation of a person riding a horse",
        "x",
    ],
)
def test_decode_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_decode_punctuation_only_loses_spaces(tok):
    # Every BPE word ends in "</w>", decoded as a space, so words split off by
    # punctuation, contractions or digits come back space-separated.
    text = "don't stop, it's 3.14 and 42!"
    decoded = tok.decode(tok.encode(text))
    assert decoded == "don 't stop , it 's 3 . 1 4 and 4 2 !"
    assert decoded.replace(" ", "") == text.replace(" ", "")


def test_decode_stops_at_eot(tok):
    assert tok.decode(tok("a photo of a cat")[0]) == "a photo of a cat"
    assert tok.decode(tok("café 😀")[0]) == "café 😀"


def test_save_hf_vocab_files(tok, tmp_path):
    vocab_file, merges_file = tok.save_hf_vocab(tmp_path / "sub")
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    assert len(vocab) == 49408
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert vocab["!"] == 0 and vocab["!</w>"] == 256
    lines = merges_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2"
    assert len(lines) == 1 + 48894
    assert lines[1] == "i n"


def test_packaged_vocab_is_unchanged_and_explicit_path(tok):
    resource = importlib.resources.files("clipseg.tokenizer") / "bpe_simple_vocab_16e6.txt.gz"
    digest = hashlib.sha256(resource.read_bytes()).hexdigest()
    notice = importlib.resources.files("clipseg.tokenizer") / "VOCAB_LICENSE.md"
    if notice.is_file():  # not package data, but present in a source checkout
        assert digest in notice.read_text(encoding="utf-8")
    with importlib.resources.as_file(resource) as path:
        explicit = CLIPTokenizer(path, context_length=16)
    assert explicit.context_length == 16
    assert explicit("a photo of a cat").shape == (1, 16)
    assert explicit.encode("naïve café") == tok.encode("naïve café")


def test_tokenizers_of_one_vocabulary_share_its_tables():
    a, b = CLIPTokenizer(), CLIPTokenizer(context_length=20)
    assert a._encoder is b._encoder and a._ranks is b._ranks  # parsed once per process
    assert a(["a red circle"])[0, :6].tolist() == b(["a red circle"])[0, :6].tolist()
