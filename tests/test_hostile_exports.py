"""Hostile ONNX export folders and embedded vocabularies: one clear error each, no hang, no
traceback, bounded memory (issue: hostile input on the surfaces added since the last hardening)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from clipseg import build_clipseg, load_clipseg, save_clipseg
from clipseg.cli.main import cli
from clipseg.weights import CheckpointError

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from clipseg.export import OnnxPredictor, export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("onnx")
    export_onnx(build_clipseg("tiny").eval(), out, input_size=64)
    return out


def _word(i: int) -> str:
    """An alphabetic word for each number (vocabulary words are letters)."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(97 + r) + out
    return out


def _copy(export_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "D"
    shutil.copytree(export_dir, d)
    return d


def _meta(d: Path) -> dict:
    return json.loads((d / "clipseg_onnx.json").read_text())


def _write_meta(d: Path, meta: dict) -> None:
    (d / "clipseg_onnx.json").write_text(json.dumps(meta))


GRAPH_DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:60000]),
    "empty": lambda p: p.write_bytes(b""),
    "random": lambda p: p.write_bytes(os.urandom(5000)),
    "directory": lambda p: (p.unlink(), p.mkdir()),
    "fifo": lambda p: (p.unlink(), os.mkfifo(p)),
    "device link": lambda p: (p.unlink(), p.symlink_to("/dev/zero")),
}


@pytest.mark.parametrize("damage", GRAPH_DAMAGE)
def test_a_damaged_graph_is_one_error_naming_it(export_dir, tmp_path, damage):
    d = _copy(export_dir, tmp_path)
    GRAPH_DAMAGE[damage](d / "decoder.onnx")
    with pytest.raises(ValueError, match="decoder.onnx"):
        OnnxPredictor(d)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    r = CliRunner().invoke(cli, ["segment", str(image), "-p", "cat", "--backend", "onnx", "--weights", str(d),
                                 "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "decoder.onnx" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("damage", ["fifo", "device link", "directory", "nested", "huge"])
def test_a_hostile_tokenizer_file_is_refused_before_reading(export_dir, tmp_path, damage):
    d = _copy(export_dir, tmp_path)
    meta = _meta(d)
    meta["tokenizer"] = "tokenizer.json"
    _write_meta(d, meta)
    path = d / "tokenizer.json"
    if damage == "fifo":
        os.mkfifo(path)
    elif damage == "device link":
        path.symlink_to("/dev/zero")
    elif damage == "directory":
        path.mkdir()
    elif damage == "nested":
        path.write_text("[" * 200_000)
    else:
        with open(path, "wb") as f:
            f.truncate(40 << 20)  # 40 MiB, sparse
    with pytest.raises(ValueError, match="tokenizer|vocabulary"):
        OnnxPredictor(d)


def test_a_vocabulary_larger_than_the_exported_embedding_is_refused(export_dir, tmp_path):
    from clipseg.tokenizer.word import WordTokenizer

    d = _copy(export_dir, tmp_path)
    meta = _meta(d)
    meta["model_config"]["clip"]["text"]["vocab_size"] = 100
    meta["tokenizer"] = "tokenizer.json"
    _write_meta(d, meta)
    WordTokenizer([_word(i) for i in range(200)], 16).save(d / "tokenizer.json")
    with pytest.raises(ValueError, match="more than the 100 rows of the exported text embedding"):
        OnnxPredictor(d)


@pytest.mark.parametrize("field, value, words", [
    ("files", None, "'files' must map"),
    ("files", ["decoder.onnx"], "'files' must map"),
    ("files", {"decoder": "../decoder.onnx"}, "plain file name"),
    ("tensors", None, "tensors.image_encoder.outputs"),
    ("tokenizer", 5, "'tokenizer' must be"),
    ("context_length", "x", "'context_length' must be"),
    ("context_length", 10 ** 13, "'context_length' must be"),
    ("context_length", 100_000_000, "'context_length' must be"),
    ("input_size", [64], "'input_size' must be"),
    ("mean", "abc", "'mean' and 'std'"),
    ("embed_dim", -1, "'embed_dim' must be"),
])
def test_a_malformed_description_names_the_field(export_dir, tmp_path, field, value, words):
    d = _copy(export_dir, tmp_path)
    meta = _meta(d)
    if value is None:
        del meta[field]
    else:
        meta[field] = value
    _write_meta(d, meta)
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        OnnxPredictor(d)


def test_a_nested_or_huge_description_is_refused(export_dir, tmp_path):
    d = _copy(export_dir, tmp_path)
    (d / "clipseg_onnx.json").write_text("[" * 200_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        OnnxPredictor(d)
    os.unlink(d / "clipseg_onnx.json")
    os.mkfifo(d / "clipseg_onnx.json")
    with pytest.raises(ValueError, match="FIFO"):
        OnnxPredictor(d)


def _tiny_with_vocabulary(path: Path, words: int) -> Path:
    from clipseg.tokenizer.word import WordTokenizer

    model = build_clipseg("tiny").eval()
    model.identity = model.identity.__class__(tokenizer=WordTokenizer([_word(i) for i in range(words)], 8))
    save_clipseg(model, path)
    return path


def test_an_embedded_vocabulary_larger_than_the_text_embedding_is_refused(tmp_path):
    rows = build_clipseg("tiny").config.clip.text.vocab_size
    f = _tiny_with_vocabulary(tmp_path / "big.safetensors", rows + 10)
    with pytest.raises(CheckpointError, match=f"more than the {rows} rows"):
        load_clipseg(f)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    for args in (["segment", str(image), "-p", "cat", "-o", str(tmp_path / "o")], ["info"],
                 ["export-onnx", str(tmp_path / "e")]):
        r = CliRunner().invoke(cli, [*args, "--weights", str(f)])
        assert r.exit_code == 2 and f"more than the {rows} rows" in r.output and "Traceback" not in r.output, args


def test_a_huge_embedded_vocabulary_is_refused_before_parsing(tmp_path):
    from clipseg.tokenizer.word import WordTokenizer

    with pytest.raises(ValueError, match="longer than 64 characters"):
        WordTokenizer.from_dict({"format": "clipseg-word-tokenizer", "words": ["x" * 900], "context_length": 8})
    with pytest.raises(ValueError, match="MB of JSON"):
        WordTokenizer.from_json('{"words": ["' + "x" * (17 << 20) + '"]}')


def test_a_safetensors_header_over_32_mb_is_refused_before_it_is_read(tmp_path):
    import struct

    path = tmp_path / "huge-header.safetensors"
    with open(path, "wb") as f:  # a header claiming 90 MB, then nothing: nothing of it is read
        f.write(struct.pack("<Q", 90 << 20) + b"{")
    with pytest.raises(CheckpointError, match="header is 90 MB, more than the 32 MB"):
        load_clipseg(path)
