"""One model object: every kind of spec users have, through every entry point, gives the same
maps with the model's own tokenizer and threshold (`clipseg.load`, `model.identity`)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import clipseg
from clipseg import Predictor, build_clipseg, load_clipseg, save_clipseg
from clipseg.cli.main import cli
from clipseg.model import CLIPSeg, variant_config
from clipseg.model.identity import ModelIdentity
from clipseg.prompts import UnknownWordsWarning
from clipseg.tokenizer.word import WordTokenizer
from clipseg.weights.registry import ASSETS_DIR

from checkpoint_writers import write_authors_decoder, write_openai_torchscript
from hf_reference import make_hf_clipseg

KINDS = ("world", "world-clip-deconv", "hf-folder", "authors+torchscript", "native-word", "tiny:random:0")
PROMPTS = ["a photo of a star.", "something round"]


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, dict]:
    """kind -> {"spec", "backbone", "threshold", "word"}: files written by the test in their real layouts."""
    d = tmp_path_factory.mktemp("specs")
    # config.json + model.safetensors, as CIDAS/clipseg-rd64 (the refined layout at the tiny patch 8 gives
    # half-resolution logits, as HF does, which the trainer refuses against full-size masks)
    make_hf_clipseg(refined=False).save_pretrained(str(d / "hf"))
    torch.manual_seed(0)
    config = variant_config("tiny")
    config.clip.vision.layers, config.decoder.extract_layers = 10, (3, 6, 9)  # the authors' files imply (3, 6, 9)
    authors = CLIPSeg(config).eval()
    write_authors_decoder(authors, d / "rd16-uni.pth")
    write_openai_torchscript(authors, d / "ViT-B-16.pt")
    tiny = build_clipseg("tiny").eval()
    words = WordTokenizer(["a", "photo", "of", "star", "something", "round"],
                          context_length=tiny.config.clip.text.context_length)
    tiny.identity = ModelIdentity(tokenizer=words, threshold=0.3)
    save_clipseg(tiny, d / "native.safetensors")
    return {
        "world": {"spec": "world", "backbone": None, "threshold": 0.22, "word": True},
        "world-clip-deconv": {"spec": "world-clip-deconv", "backbone": None, "threshold": 0.22, "word": True},
        "hf-folder": {"spec": str(d / "hf"), "backbone": None, "threshold": 0.5, "word": False},
        "authors+torchscript": {"spec": str(d / "rd16-uni.pth"), "backbone": str(d / "ViT-B-16.pt"),
                                "threshold": 0.5, "word": False},
        "native-word": {"spec": str(d / "native.safetensors"), "backbone": None, "threshold": 0.3, "word": True},
        "tiny:random:0": {"spec": "tiny:random:0", "backbone": None, "threshold": 0.5, "word": False},
    }


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.open(ASSETS_DIR / "world" / "example-scene.png").convert("RGB").resize((80, 60)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def reference(specs, image) -> dict[str, np.ndarray]:
    """Each kind's maps through `Predictor(clipseg.load(spec))`, the pattern the README shows first."""
    out = {}
    for kind, s in specs.items():
        predictor = Predictor(clipseg.load(s["spec"], backbone=s["backbone"]))
        predictor.set_image(image)
        out[kind] = predictor.predict(PROMPTS)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_loaded_model_carries_its_tokenizer_and_threshold(specs, kind):
    s = specs[kind]
    model = clipseg.load(s["spec"], backbone=s["backbone"])
    assert model.threshold == pytest.approx(s["threshold"])
    assert isinstance(model.tokenizer, WordTokenizer) == s["word"]
    assert model.tokenizer.vocab_size <= model.config.clip.text.vocab_size
    assert Predictor(model).threshold == pytest.approx(s["threshold"])
    assert Predictor(model, threshold=0.7).threshold == 0.7  # a named threshold wins


@pytest.mark.parametrize("kind", KINDS)
def test_every_python_entry_point_gives_the_same_maps(specs, reference, image, kind):
    s = specs[kind]
    entry = [Predictor.from_pretrained(s["spec"], backbone=s["backbone"])]
    if not s["spec"].startswith("tiny:"):  # the low-level loader takes files and registry names
        entry.append(Predictor(load_clipseg(s["spec"], backbone=s["backbone"])))
    for predictor in entry:
        predictor.set_image(image)
        np.testing.assert_allclose(predictor.predict(PROMPTS), reference[kind], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_cli_segment_and_info_use_the_models_own_tokenizer_and_threshold(specs, reference, image, tmp_path, kind):
    s = specs[kind]
    flags = ["--weights", s["spec"], "--device", "cpu"] + (["--backbone", s["backbone"]] if s["backbone"] else [])
    res = CliRunner().invoke(cli, ["segment", image, *[a for p in PROMPTS for a in ("-p", p)], "--prob", "npy",
                                   "--mask", "--json", "-o", str(tmp_path), "--workers", "0", *flags])
    assert res.exit_code == 0, res.output
    json.loads(res.stdout)  # --json: the summary on stdout, notes on stderr
    recorded = json.loads((tmp_path / "prompts.json").read_text())
    assert recorded["threshold"] == pytest.approx(s["threshold"])
    for k, prompt in enumerate(PROMPTS):
        key = next(key for key, p in recorded["prompts"].items() if p["prompt"] == prompt)
        prob = np.load(tmp_path / f"scene.png.{key}.prob.npy")
        np.testing.assert_allclose(prob, reference[kind][k], atol=1e-5)
        mask = np.asarray(Image.open(tmp_path / f"scene.png.{key}.mask.png")) > 0
        assert (mask == (prob >= s["threshold"])).mean() > 0.999  # cut at the model's own threshold
    info = CliRunner().invoke(cli, ["info", "--json", *flags])
    assert info.exit_code == 0, info.output
    d = json.loads(info.stdout)
    assert d["threshold"] == pytest.approx(s["threshold"])
    assert d["tokenizer"].startswith("word") == s["word"]


@pytest.mark.parametrize("kind", KINDS)
def test_http_segment_gives_the_same_maps_at_the_models_threshold(specs, reference, image, kind):
    pytest.importorskip("fastapi")
    import base64
    import io

    from fastapi.testclient import TestClient

    from clipseg import is_present
    from clipseg.server import ServerSettings, create_app

    s = specs[kind]
    model = clipseg.load(s["spec"], backbone=s["backbone"])
    with TestClient(create_app(model, ServerSettings(cache_size=2))) as client:
        info = client.get("/info").json()["model"]
        assert info["threshold"] == pytest.approx(s["threshold"])
        with open(image, "rb") as f:
            r = client.post("/segment", files={"image": ("scene.png", f.read(), "image/png")},
                            data={"prompts": json.dumps(PROMPTS), "outputs": "prob_png"})
        assert r.status_code == 200, r.text
        answer = r.json()
    assert answer["threshold"] == pytest.approx(s["threshold"])
    for k, res in enumerate(answer["results"]):
        p16 = np.asarray(Image.open(io.BytesIO(base64.b64decode(res["prob_png"]))), dtype=np.float64) / 65535
        assert np.abs(p16 - reference[kind][k]).max() < 2e-4  # 16-bit PNG rounding
        assert res["present"] is is_present(reference[kind][k], s["threshold"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_runs_with_the_models_own_tokenizer(specs, kind):
    from clipseg.cli.train import main_evaluate

    s = specs[kind]
    argv = ["referring", "--weights", s["spec"], "--dataset", "world", "--split", "referring", "--options",
            '{"size": 4}', "--batch-size", "2", "--device", "cpu", "--no-progress"]
    (row,) = main_evaluate(argv + (["--backbone", s["backbone"]] if s["backbone"] else []))
    assert row["samples"] == 4 and 0 <= row["at_threshold"]["iou_fg"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "world-clip-deconv"])  # ONNX: the CLIPSeg decoder
def test_onnx_export_carries_tokenizer_and_threshold(specs, reference, image, tmp_path, kind):
    pytest.importorskip("onnxruntime")
    from clipseg.export import OnnxPredictor

    s = specs[kind]
    flags = ["--weights", s["spec"], "--device", "cpu"] + (["--backbone", s["backbone"]] if s["backbone"] else [])
    res = CliRunner().invoke(cli, ["export-onnx", str(tmp_path), *flags])  # `clipseg export-onnx`
    assert res.exit_code == 0, res.output
    onnx = OnnxPredictor(tmp_path)
    assert onnx.threshold == pytest.approx(s["threshold"])
    assert isinstance(onnx.tokenizer, WordTokenizer) == s["word"]
    onnx.set_image(image)
    np.testing.assert_allclose(onnx.predict(PROMPTS), reference[kind], atol=1e-4)


# (kind, export): a decoder-only export of every kind that names a backbone file or name, and full exports;
# a random model has no backbone file to name, so its decoder-only export would need --backbone
FINE_TUNE = [(k, "decoder") for k in KINDS if k != "tiny:random:0"] + [("world", "full"), ("tiny:random:0", "full")]


@pytest.mark.slow
@pytest.mark.parametrize("kind,export", FINE_TUNE)
def test_fine_tuned_export_segments_and_evaluates_with_no_extra_flag(specs, tmp_path, image, kind, export):
    """`clipseg train --init SPEC` for one step; its export carries the tokenizer, threshold and
    (decoder-only) the backbone, so `segment` and `evaluate` need nothing but --weights."""
    from clipseg.cli.train import main_evaluate, main_train

    s = specs[kind]
    exp = {"name": "ft", "model": {"variant": "tiny", "backbone": "random"},
           "data": {"dataset": "world", "options": {"size": 8}},
           "train": {"iterations": 1, "batch_size": 2, "out_dir": str(tmp_path / "run"), "num_workers": 0,
                     "export": export}}
    (tmp_path / "exp.json").write_text(json.dumps(exp))
    result = main_train(["--config", str(tmp_path / "exp.json"), "--init", s["spec"], "--no-progress"]
                        + (["--backbone", s["backbone"]] if s["backbone"] else []))
    weights = tmp_path / "run" / "model.safetensors"
    assert result.iteration == 1 and weights.exists()
    model = clipseg.load(weights)
    assert isinstance(model.tokenizer, WordTokenizer) == s["word"] and model.threshold == pytest.approx(s["threshold"])
    res = CliRunner().invoke(cli, ["segment", image, "-p", PROMPTS[0], "--weights", str(weights), "--device", "cpu",
                                   "--workers", "0", "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    (row,) = main_evaluate(["referring", "--weights", str(weights), "--dataset", "world", "--split", "referring",
                            "--options", '{"size": 4}', "--batch-size", "2", "--device", "cpu", "--no-progress"])
    assert row["samples"] == 4


def test_saved_model_keeps_its_identity_and_a_decoder_file_names_its_backbone(tmp_path):
    model = clipseg.load("world")
    model.identity.threshold = 0.4
    full = clipseg.load(save_clipseg(model, tmp_path / "full.safetensors"))
    dec = clipseg.load(save_clipseg(model, tmp_path / "dec.safetensors", decoder_only=True))  # backbone: world-clip
    for m in (full, dec):
        assert m.threshold == 0.4 and m.tokenizer == model.tokenizer
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), model.state_dict().values()))
    model.identity.backbone = str(tmp_path / "gone.safetensors")
    save_clipseg(model, tmp_path / "orphan.safetensors", decoder_only=True)
    with pytest.raises(clipseg.CheckpointError, match="gone.safetensors"):
        clipseg.load(tmp_path / "orphan.safetensors")


def test_unknown_words_warn_in_the_library(image):
    predictor = Predictor(clipseg.load("world"))
    predictor.set_image(image)
    with pytest.warns(UnknownWordsWarning, match="zebra"):
        predictor.predict(["a photo of a zebra."])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownWordsWarning)
        predictor.predict(["a photo of a zebra.", "a photo of a star."])  # said once per prompt
        quiet = Predictor(clipseg.load("world"), warn_unknown_words=False)  # front ends that say it their own way
        quiet.set_image(image)
        quiet.predict(["a photo of a zebra."])


def test_the_warning_points_at_the_users_line(image):
    predictor = Predictor(clipseg.load("world"))
    predictor.set_image(image)
    with pytest.warns(UnknownWordsWarning) as record:
        predictor.predict(["a photo of a gnu."])
    assert record[0].filename == __file__


def test_fallback_to_world_is_an_option_not_error_parsing(monkeypatch):
    monkeypatch.delenv("CLIPSEG_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("clipseg.factory.default_weights", lambda: "/nonexistent/clipseg-weights")
    with pytest.raises(clipseg.CheckpointError):
        clipseg.load()
    model = clipseg.load(fallback_to_world=True)
    assert model.identity.weights == "world" and "/nonexistent/clipseg-weights" in model.identity.fallback
    with pytest.raises(clipseg.CheckpointError):  # weights the user named are never replaced
        clipseg.load("/nonexistent/other", fallback_to_world=True)
