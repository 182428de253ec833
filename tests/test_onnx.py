"""ONNX export (four graphs) and the onnxruntime predictor equal the PyTorch model, also in a
process where torch cannot be imported."""

import json

import numpy as np
import pytest
import torch

from clipseg import Predictor, PromptError, VisualPrompt, build_clipseg

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from clipseg.export import OnnxPredictor, export_onnx, read_metadata  # noqa: E402
from predictor_checks import check_prompt_errors, random_image  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_clipseg("tiny").eval()
    with torch.no_grad():  # logits of a few units, like a trained model's
        m.decoder.trans_conv.weight.mul_(3.0)
    return m


@pytest.fixture(scope="module")
def export_dir(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    export_onnx(model, out, input_size=64)
    return out


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_writes_three_graphs_and_metadata(model, export_dir):
    meta = read_metadata(export_dir)
    assert meta["input_size"] == [64, 64] and meta["grid"] == [8, 8]
    assert meta["extract_layers"] == [1, 2, 3]
    assert meta["mean"] == list(model.config.mean) and meta["std"] == list(model.config.std)
    assert meta["context_length"] == 16 and meta["embed_dim"] == model.config.clip.embed_dim == 64
    for name, file in meta["files"].items():
        assert (export_dir / file).is_file(), name
    assert meta["tensors"]["decoder"]["inputs"] == ["act_1", "act_2", "act_3", "cond"]
    assert json.loads((export_dir / "clipseg_onnx.json").read_text())["format"] == "clipseg-onnx"
    assert not model.training and next(model.parameters()).dtype == torch.float32


def test_the_vision_tower_is_stored_once(export_dir):
    import onnx

    meta = read_metadata(export_dir)
    shared, own = (export_dir / meta["weights"][k] for k in ("image_encoder", "visual_prompt_encoder"))
    graph = onnx.load(str(export_dir / meta["files"]["visual_prompt_encoder"]), load_external_data=False)
    where = [e.value for t in graph.graph.initializer for e in t.external_data if e.key == "location"]
    # the blocks it shares with the image encoder are read from the image encoder's file
    assert where.count(shared.name) > where.count(own.name) > 0
    assert own.stat().st_size < 0.1 * shared.stat().st_size
    assert (export_dir / meta["files"]["visual_prompt_encoder"]).stat().st_size < 200_000  # no weights inside


def test_image_encoder_graph_equals_pytorch(model, export_dir):
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        ref = model.encode_image(x).activations
    out = _session(export_dir / "image_encoder.onnx").run(None, {"pixels": x.numpy()})
    assert len(out) == 3
    for o, r in zip(out, ref):
        assert o.shape == tuple(r.shape) == (2, 65, model.config.clip.vision.width)
        assert np.abs(o - r.numpy()).max() < TOL


def test_text_encoder_graph_equals_pytorch_for_any_length(model, export_dir):
    from clipseg import CLIPTokenizer

    ids = CLIPTokenizer()(["a cat", "the big red square on the left"], context_length=16)
    with torch.inference_mode():
        ref = model.encode_text(ids).numpy()
    sess = _session(export_dir / "text_encoder.onnx")
    for length in (16, int(ids.argmax(-1).max()) + 1):
        out = sess.run(None, {"input_ids": ids[:, :length].numpy()})[0]
        assert out.shape == (2, 64)
        assert np.abs(out - ref).max() < TOL


def test_decoder_graph_broadcasts_one_image_against_n_conds(model, export_dir):
    torch.manual_seed(3)
    with torch.inference_mode():
        feats = model.encode_image(torch.randn(3, 3, 64, 64))
    sess = _session(export_dir / "decoder.onnx")
    for n in (1, 5):
        cond = torch.randn(n, 64)
        with torch.inference_mode():
            ref = model.decode(feats.select(0), cond).numpy()
        feeds = {f"act_{l}": a[:1].numpy() for l, a in zip((1, 2, 3), feats.activations)}
        out = sess.run(None, {**feeds, "cond": cond.numpy()})[0]
        assert out.shape == (n, 64, 64)
        assert np.abs(ref).max() > 0.5
        assert np.abs(out - ref).max() < TOL
    cond = torch.randn(3, 64)  # one conditional per image of a batch
    with torch.inference_mode():
        ref = model.decode(feats, cond).numpy()
    feeds = {f"act_{l}": a.numpy() for l, a in zip((1, 2, 3), feats.activations)}
    assert np.abs(sess.run(None, {**feeds, "cond": cond.numpy()})[0] - ref).max() < TOL


def test_onnx_predictor_equals_predictor_end_to_end(model, export_dir):
    ours, onnx = Predictor(model), OnnxPredictor(export_dir, threads=1)
    img = random_image(37, 201)
    prompts = ["a red circle", "a blue square", "something round"]
    ours.set_image(img)
    onnx.set_image(img)
    assert np.abs(onnx.predict_logits(prompts) - ours.predict_logits(prompts).numpy()).max() < TOL
    probs, ref = onnx.predict(prompts), ours.predict(prompts)
    assert probs.shape == ref.shape == (3, 37, 201) and probs.dtype == np.float32
    assert np.abs(probs - ref).max() < TOL
    emb = ours.prompt_encoder.encode(["a cat"])[0]
    assert np.abs(onnx.predict([emb]) - ours.predict([emb])).max() < TOL
    assert (onnx.label_map(prompts, 0.0) == ours.label_map(prompts, 0.0)).mean() > 0.999


def test_onnx_predictor_caches_text_embeddings(export_dir):
    predictor = OnnxPredictor(export_dir, threads=1)
    predictor.set_image(random_image())
    calls = []
    sess = predictor.sessions["text_encoder"]

    class Counting:
        def run(self, names, feeds):
            calls.append(feeds["input_ids"].shape[0])
            return sess.run(names, feeds)

    predictor.sessions["text_encoder"] = Counting()
    predictor.predict(["a", "b"])
    predictor.predict(["b", "a", "c"])
    assert calls == [2, 1]


def test_non_square_export(model, tmp_path):
    export_onnx(model, tmp_path, input_size=(48, 80))
    x = torch.randn(1, 3, 48, 80)
    with torch.inference_mode():
        feats = model.encode_image(x)
        cond = torch.randn(2, 64)
        ref = model.decode(feats, cond).numpy()
    acts = _session(tmp_path / "image_encoder.onnx").run(None, {"pixels": x.numpy()})
    out = _session(tmp_path / "decoder.onnx").run(None, {"act_1": acts[0], "act_2": acts[1], "act_3": acts[2],
                                                           "cond": cond.numpy()})[0]
    assert out.shape == (2, 48, 80)
    assert np.abs(out - ref).max() < TOL
    assert OnnxPredictor(tmp_path).segment(random_image(), ["x"]).shape == (1, 90, 140)


def test_errors(model, export_dir, tmp_path):
    with pytest.raises(ValueError, match="not a clipseg ONNX export"):
        read_metadata(tmp_path)
    with pytest.raises(ValueError, match="multiples of the patch size"):
        export_onnx(model, tmp_path, input_size=60)
    predictor = OnnxPredictor(export_dir)
    check_prompt_errors(predictor, too_long_words=100)
    with pytest.raises(PromptError, match="empty"):
        predictor.predict([VisualPrompt(random_image(), np.zeros((90, 140), bool))])
    with pytest.raises(PromptError, match="shape"):
        predictor.predict([np.zeros(3, np.float32)])


def _support():
    image = random_image(120, 90, seed=7)
    mask = np.zeros((120, 90), bool)
    mask[30:80, 10:50] = True
    return image, mask


def test_visual_and_mixed_prompts_equal_pytorch(model, export_dir):
    from clipseg import MixedPrompt

    ours, onnx = Predictor(model), OnnxPredictor(export_dir, threads=1)
    visual = VisualPrompt(*_support())
    prompts = ["a red circle", visual, MixedPrompt("a dog", visual, 0.3)]
    with torch.inference_mode():
        ref_cond = ours.prompt_encoder.encode(prompts).numpy()
    assert np.abs(onnx.encode(prompts) - ref_cond).max() < TOL
    img = random_image(50, 70, seed=2)
    ours.set_image(img)
    onnx.set_image(img)
    assert np.abs(onnx.predict(prompts) - ours.predict(prompts)).max() < TOL


_NO_TORCH = """
import sys, importlib.abc, json
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
import numpy as np
from clipseg.export import OnnxPredictor
from clipseg import VisualPrompt, MixedPrompt
p = OnnxPredictor(sys.argv[1], threads=1)
img = np.load(sys.argv[2])
image, mask = np.load(sys.argv[3]), np.load(sys.argv[4])
v = VisualPrompt(image, mask)
p.set_image(img)
np.save(sys.argv[5], p.predict(["a red circle", v, MixedPrompt("a dog", v, 0.3)]))
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
print("ok")
"""


def test_onnx_predictor_runs_where_torch_cannot_be_imported(model, export_dir, tmp_path):
    import subprocess
    import sys

    img = random_image(41, 77, seed=3)
    image, mask = _support()
    files = {n: tmp_path / f"{n}.npy" for n in ("img", "image", "mask")}
    np.save(files["img"], img)
    np.save(files["image"], image)
    np.save(files["mask"], mask)
    out = tmp_path / "probs.npy"
    r = subprocess.run([sys.executable, "-c", _NO_TORCH, str(export_dir), str(files["img"]), str(files["image"]),
                        str(files["mask"]), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    ours = Predictor(model)
    ours.set_image(img)
    visual = VisualPrompt(image, mask)
    from clipseg import MixedPrompt

    ref = ours.predict(["a red circle", visual, MixedPrompt("a dog", visual, 0.3)])
    assert np.abs(np.load(out) - ref).max() < TOL


def test_world_model_export_carries_its_tokenizer(tmp_path):
    """A model with a word tokenizer (the shipped world model) exports it; OnnxPredictor uses it."""
    from PIL import Image

    from clipseg.tokenizer.word import WordTokenizer
    from clipseg.export import OnnxPredictor, export_onnx
    from clipseg.inference import Predictor
    from clipseg import load as load_model
    from clipseg.weights.registry import ASSETS_DIR

    loaded = load_model("world")
    paths = export_onnx(loaded, tmp_path, input_size=128)
    assert paths["tokenizer"].name == "tokenizer.json"
    img = np.asarray(Image.open(ASSETS_DIR / "world" / "example-scene.png").convert("RGB"))
    onnx = OnnxPredictor(tmp_path)
    assert isinstance(onnx.tokenizer, WordTokenizer) and onnx.tokenizer == loaded.tokenizer
    onnx.set_image(img)
    ref = Predictor(loaded)
    ref.set_image(img)
    prompts = ["a photo of a star.", "something round"]
    assert np.abs(onnx.predict(prompts) - ref.predict(prompts)).max() < 1e-4


def test_onnx_predictor_prompt_algebra_and_masks_for_editing(model, export_dir):
    """Expressions, negative prompts and the editing options are the library's, on onnxruntime too."""
    onnx = OnnxPredictor(export_dir)
    torch_p = Predictor(model)
    image = random_image(90, 70, seed=4)
    onnx.set_image(image)
    torch_p.set_image(image)
    a, b = onnx.predict(["a cat", "a dog"])
    u, i, d = onnx.predict(["a cat | a dog", "a cat & a dog", "a cat - a dog"])
    assert np.abs(u - np.maximum(a, b)).max() <= 1e-6 and np.abs(i - np.minimum(a, b)).max() <= 1e-6
    assert np.abs(d - np.minimum(a, 1 - b)).max() <= 1e-6
    assert np.abs(onnx.predict(["a cat"], negative=["a dog"])[0] - d).max() <= 1e-6
    assert np.abs(onnx.predict(["a cat | a dog"]) - torch_p.predict(["a cat | a dog"])).max() <= TOL
    t = float(np.median(a))
    (eo,), (et,) = onnx.edit(["a cat"], t, grow=4, feather=3), torch_p.edit(["a cat"], t, grow=4, feather=3)
    assert eo.alpha.shape == (90, 70) and np.mean(eo.mask != et.mask) < 0.01
