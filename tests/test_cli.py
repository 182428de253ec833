"""The `clipseg` command line: outputs, folders (recursive, resumable, failures), prompts,
weights, info, the wired sub-commands; and the COCO RLE encoder it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from clipseg import MixedPrompt, Predictor, VisualPrompt, is_present, save_clipseg
from clipseg.io import rle
from clipseg import load as load_model
from clipseg.inference import naming
from clipseg.cli.main import cli

W = ["--weights", "tiny:random", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _img(path: Path, h: int = 30, w: int = 44, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)).save(path)
    return path


def key(text: str) -> str:
    """The file-name key of a text prompt."""
    return naming.prompt_key(text, f"text:{text}")


def legend_set(out: Path) -> str:
    """The set key of the (only) prompt set in out/prompts.json."""
    (only,) = json.loads((out / "prompts.json").read_text())["sets"]
    return only


def keys_by_prompt(out: Path) -> dict[str, str]:
    """prompt (as named) -> file-name key, from out/prompts.json."""
    return {q["prompt"]: k for k, q in json.loads((out / "prompts.json").read_text())["prompts"].items()}


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def reference():
    """A Predictor on the same random model the CLI builds for tiny:random."""
    return Predictor(load_model("tiny:random"))


# ---------------------------------------------------------------- outputs of one image


def test_single_image_all_outputs_match_the_predictor(tmp_path, reference):
    img = _img(tmp_path / "in" / "photo.png")
    res = run("segment", img, "-p", "a cat", "-p", "a dog", "--prob", "png", "--mask", "--overlay", "--labels", "--rle",
              "--threshold", "0.45", "-o", tmp_path / "out", *W)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    probs = reference.segment(str(img), ["a cat", "a dog"])  # (2, 30, 44)
    for k, s in enumerate([key("a cat"), key("a dog")]):
        p16 = Image.open(out / f"photo.png.{s}.prob.png")
        assert p16.mode == "I;16" and p16.size == (44, 30)
        assert np.abs(np.asarray(p16, dtype=np.float64) / 65535 - probs[k]).max() < 2e-4
        m = Image.open(out / f"photo.png.{s}.mask.png")
        assert m.mode == "L" and m.size == (44, 30)
        assert np.array_equal(np.asarray(m) > 0, probs[k] >= 0.45)
    sk = legend_set(out)
    labels = Image.open(out / f"photo.png.{sk}.labels.png")
    assert labels.mode == "P"
    expected = probs.argmax(0) + 1
    expected[probs.max(0) < 0.45] = 0
    assert np.array_equal(np.asarray(labels), expected)
    overlay = Image.open(out / f"photo.png.{sk}.overlay.png")  # the image, then the legend strip below it
    assert overlay.width == 44 and overlay.height > 30
    doc = json.loads((out / f"photo.png.{sk}.rle.json").read_text())
    assert (doc["height"], doc["width"]) == (30, 44)
    assert [a["prompt"] for a in doc["annotations"]] == ["a cat", "a dog"]
    for k, ann in enumerate(doc["annotations"]):
        assert ann["segmentation"]["size"] == [30, 44] and isinstance(ann["segmentation"]["counts"], str)
        assert np.array_equal(rle.decode(ann["segmentation"]), probs[k] >= 0.45)
        assert ann["area"] == int((probs[k] >= 0.45).sum())
        assert ann["present"] is is_present(probs[k], 0.45)
    legend = json.loads((out / "prompts.json").read_text())
    assert [legend["prompts"][k]["prompt"] for k in legend["sets"][sk]["labels"].values()] == ["a cat", "a dog"]
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave nothing behind


def test_npy_probabilities_and_default_output_is_mask(tmp_path, reference):
    img = _img(tmp_path / "a.jpg", 25, 31)
    res = run("segment", img, "-p", "x", "--prob", "npy", "--no-mask", "-o", tmp_path / "o", "--threads", "1", *W)
    assert res.exit_code == 0, res.output
    arr = np.load(tmp_path / "o" / "a.jpg.x.prob.npy")
    assert arr.dtype == np.float32 and arr.shape == (25, 31)
    assert np.allclose(arr, reference.segment(str(img), ["x"])[0], atol=1e-6)
    assert not (tmp_path / "o" / "a.jpg.x.mask.png").exists()  # --no-mask: only what was asked for
    res = run("segment", img, "-p", "x", "-o", tmp_path / "o2", *W)
    assert res.exit_code == 0 and (tmp_path / "o2" / "a.jpg.x.mask.png").exists()
    # asking for other outputs keeps the masks (they used to be dropped silently)
    res = run("segment", img, "-p", "x", "--overlay", "--prob", "png", "-o", tmp_path / "o3", *W)
    assert res.exit_code == 0 and (tmp_path / "o3" / "a.jpg.x.mask.png").exists()
    assert (tmp_path / "o3" / "a.jpg.x.prob.png").exists()
    res = run("segment", img, "-p", "x", "--no-mask", "-o", tmp_path / "o4", *W)
    assert res.exit_code == 2 and "no output chosen" in res.output


def _support(tmp_path: Path) -> tuple[Path, Path]:
    sup = _img(tmp_path / "support.png", 40, 40, seed=3)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:25, 5:30] = 255
    Image.fromarray(mask).save(tmp_path / "support_mask.png")
    return sup, tmp_path / "support_mask.png"


def test_prompts_file_and_visual_prompt(tmp_path, reference):
    img = _img(tmp_path / "a.png")
    sup, _ = _support(tmp_path)
    (tmp_path / "prompts.txt").write_text("a cat\n\n  a long green sofa  \n")
    res = run("segment", img, "--prompts-file", tmp_path / "prompts.txt", "--support", sup, "--support-mask",
              tmp_path / "support_mask.png", "--prob", "npy", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0, res.output
    keys = keys_by_prompt(tmp_path / "o")
    assert keys["a cat"] == key("a cat") and keys["a long green sofa"] == key("a long green sofa")
    assert keys["visual"].startswith("visual-")  # readable part + hash of the support files
    names = sorted(p.name for p in (tmp_path / "o").glob("*.npy"))
    assert names == sorted(f"a.png.{k}.prob.npy" for k in keys.values())
    expected = reference.segment(str(img), [VisualPrompt(str(sup), str(tmp_path / "support_mask.png"))])[0]
    assert np.allclose(np.load(tmp_path / "o" / f"a.png.{keys['visual']}.prob.npy"), expected, atol=1e-5)


def test_visual_prompt_usage_errors(tmp_path):
    img = _img(tmp_path / "a.png")
    res = run("segment", img, "--support", img, "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "--support and --support-mask come in pairs" in res.output
    Image.fromarray(np.zeros((30, 44), np.uint8)).save(tmp_path / "empty_mask.png")
    res = run("segment", img, "--support", img, "--support-mask", tmp_path / "empty_mask.png", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "bad prompt" in res.output and "mask" in res.output.lower()
    res = run("segment", img, "--support", img, "--support-mask", tmp_path / "missing.png", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "missing.png" in res.output


def test_text_weight_mixes_the_visual_prompt_into_each_text_prompt(tmp_path, reference):
    img = _img(tmp_path / "a.png")
    sup, mask = _support(tmp_path)
    res = run("segment", img, "-p", "a cat", "-p", "a dog", "--support", sup, "--support-mask", mask,
              "--text-weight", "0.3", "--prob", "npy", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0, res.output
    out = tmp_path / "o"
    keys = keys_by_prompt(out)
    files = {n: f"a.png.{keys[n]}.prob.npy" for n in ("a cat+visual", "a dog+visual")}
    assert sorted(p.name for p in out.glob("*.npy")) == sorted(files.values())  # no separate visual output
    legend = json.loads((out / "prompts.json").read_text())["prompts"]
    assert sorted((p["prompt"], p["text_weight"]) for p in legend.values()) == [("a cat+visual", 0.3),
                                                                                 ("a dog+visual", 0.3)]
    visual = VisualPrompt(str(sup), str(mask))
    expected = reference.segment(str(img), [MixedPrompt("a cat", visual, 0.3), MixedPrompt("a dog", visual, 0.3)])
    pure = reference.segment(str(img), ["a cat", "a dog", visual])
    for k, name in enumerate(files):
        got = np.load(out / files[name])
        assert np.allclose(got, expected[k], atol=1e-5)
        assert np.abs(got - pure[k]).max() > 0.01 and np.abs(got - pure[2]).max() > 0.01  # neither text nor visual


def test_text_weight_usage_errors(tmp_path):
    img = _img(tmp_path / "a.png")
    sup, mask = _support(tmp_path)
    pair = ["--support", sup, "--support-mask", mask]
    for w in ("1.5", "-0.1", "nan"):
        res = run("segment", img, "-p", "x", *pair, "--text-weight", w, "-o", tmp_path / "o", *W)
        assert res.exit_code == 2 and "--text-weight must be between 0" in res.output, res.output
    res = run("segment", img, "-p", "x", "--text-weight", "0.5", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "exactly one --support/--support-mask pair, got 0" in res.output
    res = run("segment", img, "-p", "x", *pair, *pair, "--text-weight", "0.5", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "exactly one --support/--support-mask pair, got 2" in res.output
    res = run("segment", img, *pair, "--text-weight", "0.5", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "at least one --prompt" in res.output
    assert not (tmp_path / "o").exists()  # refused before any work


def test_usage_errors_exit_2(tmp_path):
    img = _img(tmp_path / "a.png")
    res = run("segment", img, "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "no prompt given" in res.output
    res = run("segment", img, "-p", "x", "--no-mask", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "no output chosen" in res.output
    res = run("segment", img, "-p", "x", "--threshold", "1.5", *W)
    assert res.exit_code == 2
    if not torch.cuda.is_available():
        res = run("segment", img, "-p", "x", "-o", tmp_path / "o", "--device", "cuda", *W)
        assert res.exit_code == 2 and "CUDA is not available" in res.output
    res = run("segment", img, "-p", "x", "-o", tmp_path / "o", "--device", "warp9", *W)
    assert res.exit_code == 2 and "unknown device" in res.output


# ---------------------------------------------------------------- folders


def test_folder_recursive_resumable_and_failures_reported_at_the_end(tmp_path):
    root = tmp_path / "photos"
    _img(root / "a.png")
    _img(root / "sub" / "b.jpg", seed=1)
    _img(root / "sub" / "deeper" / "c.png", seed=2)
    (root / "sub" / "broken.png").write_bytes(b"this is not a png")
    (root / "notes.txt").write_text("not an image, and not an image name: ignored")
    out = tmp_path / "out"
    res = run("segment", root, "-p", "thing", "--mask", "--rle", "-o", out, *W)
    assert res.exit_code == 1
    assert "4 image(s): 3 segmented, 0 skipped (outputs exist), 1 failed" in res.output
    assert "broken.png" in res.output and "not an image" in res.output
    tail = res.output.rstrip().splitlines()
    assert tail[-2] == "failed:" and "broken.png" in tail[-1]  # reported at the end
    sk = legend_set(out)
    for rel in ["a.png", "sub/b.jpg", "sub/deeper/c.png"]:
        assert (out / f"{rel}.thing.mask.png").exists() and (out / f"{rel}.{sk}.rle.json").exists()

    # resumable: a second run skips what is done; a missing output is redone
    before = (out / "a.png.thing.mask.png").stat().st_mtime_ns
    (out / "sub" / f"b.jpg.{sk}.rle.json").unlink()
    res = run("segment", root, "-p", "thing", "--mask", "--rle", "-o", out, *W)
    assert "1 segmented, 2 skipped (outputs exist), 1 failed" in res.output
    assert (out / "sub" / f"b.jpg.{sk}.rle.json").exists()
    assert (out / "a.png.thing.mask.png").stat().st_mtime_ns == before
    # --overwrite recomputes; --no-recursive stays at the top
    res = run("segment", root, "-p", "thing", "--mask", "--rle", "-o", out, "--overwrite", "--no-recursive", *W)
    assert res.exit_code == 0 and "1 image(s): 1 segmented" in res.output


def test_resuming_with_other_settings_is_refused_not_mixed(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    _img(root / "a.png")
    sup, mask = _img(tmp_path / "s.png", seed=3), tmp_path / "m.png"
    Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), ((5, 15), (5, 29)))).save(mask)
    args = ["segment", root, "-p", "thing", "--support", sup, "--support-mask", mask, "-o", out, *W]
    assert run(*args).exit_code == 0
    before = (out / "a.png.thing.mask.png").read_bytes()
    res = run(*args)  # same settings: resumed (skipped)
    assert res.exit_code == 0 and "0 segmented, 1 skipped" in res.output

    res = run(*args, "--threshold", "0.3")  # masks at 0.5 exist: refuse, keep them
    assert res.exit_code == 2
    assert "other settings" in res.output and "threshold 0.5 -> 0.3" in res.output and "--overwrite" in res.output
    assert (out / "a.png.thing.mask.png").read_bytes() == before

    old_keys = keys_by_prompt(out)
    Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), ((15, 5), (25, 9)))).save(mask)  # another support mask
    res = run(*args)  # another prompt under the same name: files of its own, the old ones kept
    assert res.exit_code == 0 and "1 segmented" in res.output
    legend = json.loads((out / "prompts.json").read_text())["prompts"]
    visual_keys = sorted(k for k, q in legend.items() if q["prompt"] == "visual")
    assert len(visual_keys) == 2 and old_keys["visual"] in visual_keys
    assert all((out / f"a.png.{k}.mask.png").exists() for k in visual_keys)
    res = run(*args, "--threshold", "0.3", "--overwrite")
    assert res.exit_code == 0 and "1 segmented" in res.output
    assert json.loads((out / "prompts.json").read_text())["threshold"] == 0.3
    res = run("segment", root, "-p", "other", "-o", out, "--threshold", "0.3", *W)  # new prompt, new files: fine
    assert res.exit_code == 0 and "1 segmented" in res.output


def test_bfloat16_outputs_follow_float32_and_float16_on_cpu_is_refused(tmp_path, reference, monkeypatch):
    import torch

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # a CPU without native bfloat16
        monkeypatch.setattr(torch.cpu, name, lambda: False)
    img = _img(tmp_path / "photo.png", 64, 64)
    res = run("segment", img, "-p", "a cat", "--prob", "npy", "--dtype", "bfloat16", "-o", tmp_path / "bf16", *W)
    assert res.exit_code == 0, res.output
    assert "bfloat16 on this CPU (no AVX512-BF16 or AMX) runs emulated" in res.stderr
    prob = np.load(tmp_path / "bf16" / f"photo.png.{key('a cat')}.prob.npy")
    assert prob.dtype == np.float32 and prob.shape == (64, 64)
    diff = np.abs(prob - reference.segment(str(img), ["a cat"])[0])
    assert 0 < diff.max() < 0.05  # bfloat16 rounding: close to float32, not the same computation
    res = run("segment", img, "-p", "a cat", "--dtype", "float16", "-o", tmp_path / "fp16", *W)
    assert res.exit_code == 2 and "float16 is for GPUs" in res.output
    info = json.loads(run("info", "--weights", "tiny:random", "--dtype", "bfloat16", "--json").stdout)
    assert info["dtype"] == "bfloat16"


def test_dtype_notice_names_emulated_bfloat16_only(monkeypatch):
    import torch

    from clipseg.factory import dtype_notice

    cpu = torch.device("cpu")
    for native in (False, True):
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            monkeypatch.setattr(torch.cpu, name, lambda n=native: n)
        assert (dtype_notice(torch.bfloat16, cpu) is None) is native
        assert dtype_notice(torch.float32, cpu) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # AMX alone is native too
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert dtype_notice(torch.bfloat16, cpu) is None
    assert dtype_notice(torch.bfloat16, torch.device("cuda")) is None


def test_output_folder_inside_input_is_not_read_back_and_name_clash(tmp_path):
    root = tmp_path / "p"
    _img(root / "x.png")
    _img(root / "x.jpg", seed=5)
    res = run("segment", root, "-p", "t", "-o", root / "out", *W)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (root / "out").glob("*.png")) == ["x.jpg.t.mask.png", "x.png.t.mask.png"]
    res = run("segment", root, "-p", "t", "-o", root / "out", *W)
    assert "2 image(s): 0 segmented, 2 skipped" in res.output


def test_missing_input_is_a_usage_error_before_the_model_loads(tmp_path):
    img = _img(tmp_path / "a.png")
    res = run("segment", img, tmp_path / "nope.png", "-p", "t", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and f"input '{tmp_path / 'nope.png'}' does not exist" in res.output
    assert not (tmp_path / "o").exists()  # found before the model loads, nothing written


# ---------------------------------------------------------------- weights and info


def test_info_text_and_json(tmp_path):
    res = run("info", "--weights", "tiny:random")
    assert res.exit_code == 0
    assert "weights:     tiny:random" in res.output and "input size:  64 px" in res.output
    res = run("info", "--weights", "tiny:random:3", "--json")
    d = json.loads(res.output)
    assert d["source"] == "random" and d["seed"] == 3 and d["input_size"] == 64 and d["parameters"]["decoder"] > 0


def test_info_on_a_saved_checkpoint_and_env_default(tmp_path):
    path = save_clipseg(load_model("tiny:random:1"), tmp_path / "mine.safetensors")
    res = run("info", "--weights", path)
    assert res.exit_code == 0, res.output
    assert f"source:      {path.resolve()}" in res.output and "file_size:" in res.output
    res = run("info", env={"CLIPSEG_WEIGHTS": str(path)})
    assert res.exit_code == 0 and str(path.resolve()) in res.output
    # the saved weights give the same output as the model that was saved
    img = _img(tmp_path / "a.png")
    res = run("segment", img, "-p", "t", "--prob", "npy", "-o", tmp_path / "o", "--weights", path, "--no-progress")
    assert res.exit_code == 0
    expected = Predictor(load_model("tiny:random:1")).segment(str(img), ["t"])[0]
    assert np.allclose(np.load(tmp_path / "o" / "a.png.t.prob.npy"), expected, atol=1e-6)


def test_offline_default_weights_say_how_to_get_them(tmp_path, monkeypatch):
    from clipseg.weights import CheckpointError, loader
    from clipseg.weights.fetch import OFFLINE_HINT

    def offline(repo_id, cache_dir=None):
        raise CheckpointError(f"could not get '{repo_id}' from the Hugging Face hub (ConnectError). " + OFFLINE_HINT)

    monkeypatch.setattr(loader, "fetch_hub", offline)
    monkeypatch.delenv("CLIPSEG_WEIGHTS", raising=False)
    res = run("info")  # like `segment`, `serve` and `demo`: the embedded world model, said in one note
    assert res.exit_code == 0, res.output
    assert "CIDAS/clipseg-rd64-refined" in res.output and "hf download" in res.output
    assert "weights:     world" in res.output and "threshold:   0.22" in res.output
    assert "Traceback" not in res.output
    res = run("info", "--weights", "CIDAS/clipseg-rd64-refined")  # weights the user names are never replaced
    assert res.exit_code == 2 and "hf download" in res.output and "Traceback" not in res.output


def test_random_weights_spec_is_validated():
    res = run("info", "--weights", "tiny:random:abc")
    assert res.exit_code == 2 and "tiny:random:SEED" in res.output


# ---------------------------------------------------------------- other sub-commands


def test_help_lists_all_commands():
    res = run("--help")
    for name in ["segment", "info", "serve", "export-onnx", "demo", "world", "train", "evaluate"]:
        assert name in res.output
    assert run("segment", "--help").exit_code == 0


def test_train_and_evaluate_are_wired():
    res = CliRunner().invoke(cli, ["train", "--help"])
    assert res.exit_code == 0 and "--config" in res.output  # argparse help of clipseg.training
    for command in ("evaluate", "world"):
        res = CliRunner().invoke(cli, [command, "--help"])
        assert res.exit_code == 0 and "usage" in res.output.lower(), res.output


def test_export_onnx_wired_or_clear_error(tmp_path):
    import importlib.util

    res = CliRunner().invoke(cli, ["export-onnx", str(tmp_path / "onnx"), "--weights", "tiny:random"])
    if importlib.util.find_spec("clipseg.export") is None:
        assert res.exit_code == 2 and "not part of this installation" in res.output
        return
    if importlib.util.find_spec("onnx") is None:
        assert res.exit_code == 2 and "pip install 'clipseg[onnx]'" in res.output
        return
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "onnx").glob("*.onnx")} == {"image_encoder.onnx", "text_encoder.onnx",
                                                                    "decoder.onnx", "visual_prompt_encoder.onnx"}
    meta = json.loads((tmp_path / "onnx" / "clipseg_onnx.json").read_text())
    assert meta["input_size"] == [64, 64]  # the model's own input size by default
    res = CliRunner().invoke(cli, ["export-onnx", str(tmp_path / "o2"), "--weights", "tiny:random", "--opset", "9"])
    assert res.exit_code == 2 and "opset" in res.output
    res = CliRunner().invoke(cli, ["export-onnx", str(tmp_path / "o2"), "--weights", "tiny:random",
                                   "--input-size", "abc"])
    assert res.exit_code == 2 and "--input-size" in res.output


# ---------------------------------------------------------------- COCO RLE


# pycocotools' output for a 50x70 mask (quoted in armengot/COCOtoolsFORK's README)
PYCOCOTOOLS_RLE = {"size": [50, 70], "counts": (
    "0g05b08J4M2N2NA^O1`0OCO=0E090H080IO68DH;>@C>a0_O_O`0j0OWOF<:CM72I24NL43JM92FN;1ENKO72L0LO91J0MO92INO0NO122OO0M031O"
    "000NO31OO11MO40N011MO41MO21L06OL021L06OL021L06OL021L060J040L060J040L060J040L060J040L060J040L060J040L060KO31L060KO31"
    "L06OL021L06OL021L06OL021MO41MO21MO40N100NO310O00M0310O00NO1220NO92IONO91KOMO72M0<1EO:2GN63KM34OLM73JF<;=1G_O_Ob0=AC"
    "`07EH=1IO71H090F0:1DO>1_O1b0>2N2N3L6H]O")}


def test_rle_matches_the_coco_spec():
    # column-major, counts start with zeros
    assert rle.encode(np.array([[0, 1], [1, 1]]), compressed=False)["counts"] == [1, 3]
    assert rle.encode(np.array([[1, 0], [0, 0]]), compressed=False)["counts"] == [0, 1, 3]
    assert rle.encode(np.array([[1, 1, 0]]), compressed=False)["counts"] == [0, 2, 1]
    assert rle.encode(np.zeros((3, 4), bool), compressed=False)["counts"] == [12]
    assert rle.encode(np.ones((3, 4), bool), compressed=False)["counts"] == [0, 12]
    # compressed: 5 bits a char from '0'; deltas from the count two before, for index > 2
    assert rle.counts_to_string([3, 2, 5]) == "325"
    assert rle.counts_to_string([3, 2, 5, 1]) == rle.counts_to_string([3, 2, 5]) + chr(48 + ((1 - 2) & 0x1F))
    assert rle.counts_to_string([100]) == chr(48 + (100 & 0x1F) + 0x20) + chr(48 + (100 >> 5))


def test_rle_round_trips_and_agrees_with_pycocotools_output():
    counts = rle.string_to_counts(PYCOCOTOOLS_RLE["counts"])
    assert sum(counts) == 50 * 70
    mask = rle.decode(PYCOCOTOOLS_RLE)
    assert mask.shape == (50, 70) and mask.any()
    assert rle.encode(mask) == PYCOCOTOOLS_RLE
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 3), (64, 97), (480, 640)]:
        for density in (0.0, 0.02, 0.5, 1.0):
            m = rng.random(shape) < density
            if shape[0] > 10:  # blobs, for long runs and negative deltas
                m[shape[0] // 4: shape[0] // 2, shape[1] // 3: shape[1] // 2] = True
            enc = rle.encode(m)
            assert set(enc["counts"]) <= {chr(c) for c in range(48, 112)}
            assert np.array_equal(rle.decode(enc), m)
            assert np.array_equal(rle.decode(rle.encode(m, compressed=False)), m)
            assert rle.area(enc) == int(m.sum())
    assert rle.bbox(np.pad(np.ones((3, 2), bool), ((4, 1), (5, 6)))) == [5, 4, 2, 3]
    with pytest.raises(ValueError):
        rle.decode({"size": [2, 2], "counts": [1, 1]})


def test_demo_with_weights_segments_the_shipped_photo(tmp_path):
    out = tmp_path / "demo.png"
    res = run("demo", "--weights", "tiny:random", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "weights: random" in res.output and "1. a cup of coffee:" in res.output and "figure ->" in res.output
    fig = Image.open(out)
    assert fig.size[0] > 6 * 200  # the photo and five overlays side by side
    res = run("demo", "--weights", "tiny:random", "--prompt", "a red circle", "--out", str(out))
    assert res.exit_code == 0 and "1. a red circle:" in res.output and "2." not in res.output


def test_demo_with_named_missing_weights_is_an_error(tmp_path):
    res = run("demo", "--weights", str(tmp_path / "missing.pth"))
    assert res.exit_code != 0 and "does not exist" in res.output


def test_stdin_image_and_prompts_and_json_summary(tmp_path, reference):
    img = _img(tmp_path / "a.png")
    res = CliRunner().invoke(cli, ["segment", "-", "-p", "x", "--prob", "npy", "--json", "-o", str(tmp_path / "o"), *W],
                             input=img.read_bytes())
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["segmented"] == 1 and summary["failed"] == []
    got = np.load(tmp_path / "o" / "stdin.x.prob.npy")
    assert np.allclose(got, reference.segment(str(img), ["x"])[0], atol=1e-5)
    res = CliRunner().invoke(cli, ["segment", str(img), "--prompts-file", "-", "-o", str(tmp_path / "o2"), *W],
                             input="a cat\n\ngrass\n")
    assert res.exit_code == 0 and "1 segmented" in res.output
    assert set(keys_by_prompt(tmp_path / "o2")) == {"a cat", "grass"}
    res = CliRunner().invoke(cli, ["segment", "-", "--prompts-file", "-", "-o", str(tmp_path / "o3"), *W], input="")
    assert res.exit_code == 2 and "not both" in res.output


def test_unknown_words_warn_on_stderr(tmp_path):
    from clipseg.tokenizer.word import WordTokenizer

    vocab = WordTokenizer(["a", "red", "circle"], context_length=16).save(tmp_path / "words.json")
    img = _img(tmp_path / "a.png")
    res = run("segment", img, "-p", "a red circle", "-p", "a blue dog", "--tokenizer", vocab, "-o", tmp_path / "o", *W)
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.stderr.splitlines() if ln.startswith("warning:"))
    assert "'a blue dog': blue, dog" in line and "a red circle'" not in line
