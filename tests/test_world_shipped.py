"""The generated world's models shipped with the package: their files match the model card's
sha256, they load offline by registry name with their own tokenizer, and the command line
falls back to them (saying so) when no real weights can be had."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from clipseg.cli.main import cli
from clipseg.weights.registry import ASSETS_DIR, PRETRAINED

WORLD = ASSETS_DIR / "world"
FILES = ("clip.safetensors", "clipseg.safetensors", "clip-deconv.safetensors", "clipseg-random.safetensors")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network, empty caches, no $CLIPSEG_WEIGHTS: the default hub model cannot be had."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("CLIPSEG_WEIGHTS", raising=False)
    return tmp_path


def test_shipped_files_match_the_model_card():
    from clipseg.world.ship import card_hashes, sha256

    card = (WORLD / "MODEL_CARD.md").read_text()
    hashes = card_hashes(card)
    assert set(hashes) == set(FILES)
    for name in FILES:
        assert sha256(WORLD / name) == hashes[name], f"{name} differs from its sha256 in MODEL_CARD.md"
    total = sum((WORLD / n).stat().st_size for n in FILES)
    assert total <= 30e6
    for needed in ("machine:", "seed:", "pretrained", "95 % CI"):
        assert needed in card


@pytest.mark.parametrize("name", ["world", "world-clip-deconv", "world-clipseg-random"])
def test_registry_names_load_offline_with_their_tokenizer(name, offline):
    from clipseg import load_clipseg
    from clipseg.tokenizer.word import WordTokenizer
    from clipseg.inference import Predictor
    from clipseg.weights import embedded_tokenizer

    assert PRETRAINED[name].kind == "package"
    model = load_clipseg(name)
    tokenizer = embedded_tokenizer(name)
    assert isinstance(tokenizer, WordTokenizer) and tokenizer.vocab_size == model.config.clip.text.vocab_size
    image = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(WORLD / "example-scene.png").convert("RGB"))
    p = Predictor(model, tokenizer)
    p.set_image(image)
    probs = p.predict(["a photo of a star.", "something round"])
    assert probs.shape == (2, *image.shape[:2]) and np.isfinite(probs).all()


def test_the_pretrained_decoders_share_the_shipped_clip():
    from clipseg import load_clipseg
    from clipseg.weights.native import load_clip

    clip, _ = load_clip(WORLD / "clip.safetensors")
    a, b = load_clipseg("world"), load_clipseg("world-clip-deconv")
    for k, v in clip.state_dict().items():
        assert torch.equal(a.clip.state_dict()[k], v) and torch.equal(b.clip.state_dict()[k], v)
    assert not torch.equal(load_clipseg("world-clipseg-random").clip.visual.conv1.weight, clip.visual.conv1.weight)


def test_segment_falls_back_to_the_world_model_in_one_line(offline):
    out = offline / "out"
    res = CliRunner().invoke(cli, ["segment", str(WORLD / "example-scene.png"), "-p", "a photo of a star.",
                                   "-p", "a zebra", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: no real weights")]
    assert len(notes) == 1 and "'world'" in notes[0] and "hf download" in notes[0]
    assert "zebra" in res.stderr  # the unknown-word warning
    assert len(list(out.glob("example-scene.png.*.mask.png"))) == 2
    legend = json.loads((out / "prompts.json").read_text())
    assert "world" in json.dumps(legend)


def test_named_weights_are_never_replaced_by_the_world_model(offline):
    res = CliRunner().invoke(cli, ["segment", str(WORLD / "example-scene.png"), "-p", "x", "-o", str(offline / "o"),
                                   "--weights", str(offline / "missing.safetensors")])
    assert res.exit_code != 0 and "does not exist" in res.output
    assert "note: no real weights" not in res.output and not (offline / "o").exists()


def test_demo_offline_segments_the_shipped_example(offline):
    from PIL import Image

    out = offline / "demo.png"
    res = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no real weights" in res.output and "'world' (shipped with clipseg)" in res.output
    example = json.loads((WORLD / "example.json").read_text())
    kinds = [p["kind"] for p in example["prompts"]]
    assert any("held-out" in k for k in kinds) and any("visual" in k for k in kinds)
    assert any("generalized" in k for k in kinds) and any("seen class" == k for k in kinds)
    lines = [line for line in res.output.splitlines() if line.strip()[:2] in {f"{i}." for i in range(1, 10)}]
    assert len(lines) == len(kinds) and all(("present" in line) for line in lines)
    fig = Image.open(out)
    assert fig.size[0] > fig.size[1] > 256  # image + one tile per prompt, legend below


@pytest.mark.parametrize("vocab", ['{"format": "clipseg-word-tokenizer", "words": ["a"], "context_length": 99999}',
                                   '{"format": "clipseg-word-tokenizer", "words": ["a b"], "context_length": 8}',
                                   '{"format": "clipseg-word-tokenizer", "words": 5, "context_length": 8}',
                                   'not json', '[1, 2]'])
def test_a_hostile_embedded_vocabulary_is_a_clear_error(tmp_path, vocab):
    from safetensors.torch import save_file

    from clipseg.weights import CheckpointError, embedded_tokenizer

    path = tmp_path / "w.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "clipseg", "tokenizer": vocab})
    with pytest.raises(CheckpointError, match="embedded tokenizer vocabulary is invalid") as e:
        embedded_tokenizer(path)
    assert str(path) in str(e.value) and len(str(e.value)) < 400
