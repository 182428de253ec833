"""`clipseg segment` in scripts: masks by default beside other outputs, --json records of every
image, `-o -` to standard output, missing inputs and multi-frame files, --name aliases, and
overlays people can read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clipseg import Predictor
from clipseg import load as load_model
from clipseg.cli.main import cli
from clipseg.inference import naming
from clipseg.inference.outputs import PALETTE, contrast, outline_width, overlay_image
from clipseg.weights.registry import PRETRAINED

W = ["--weights", "tiny:random", "--threads", "1"]


def _img(path: Path, w: int = 44, h: int = 30, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kw)


@pytest.fixture(scope="module")
def reference():
    return Predictor(load_model("tiny:random"))


def test_json_lists_every_image_with_its_outputs_and_answers(tmp_path, reference):
    a, b = _img(tmp_path / "in" / "a.png"), _img(tmp_path / "in" / "sub" / "b.png", seed=1)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    res = run("segment", tmp_path / "in", "-p", "a cat", "-p", "x", "--overlay", "--threshold", "0.5", "--json",
              "-o", tmp_path / "o", *W)
    assert res.exit_code == 1  # the broken file
    doc = json.loads(res.stdout)
    by_input = {Path(r["input"]).relative_to(tmp_path / "in").as_posix(): r for r in doc["images"]}
    assert set(by_input) == {"a.png", "sub/b.png", "broken.png"}
    assert by_input["broken.png"]["status"] == "failed" and by_input["broken.png"]["error"]
    for name, path in (("a.png", a), ("sub/b.png", b)):
        rec = by_input[name]
        assert rec["status"] == "segmented" and Path(rec["outputs"]["overlay"]).is_file()
        probs = reference.segment(str(path), ["a cat", "x"])
        for k, p in enumerate(rec["prompts"]):
            assert p["prompt"] == ["a cat", "x"][k]
            mask = np.asarray(Image.open(p["outputs"]["mask"])) > 127  # the masks are written beside the overlay
            assert np.array_equal(mask, probs[k] >= 0.5)
            assert p["area_fraction"] == pytest.approx(mask.mean())
            assert p["present"] == (mask.mean() >= 0.01)
    # a resumed run lists the skipped images with their files
    res = run("segment", tmp_path / "in", "-p", "a cat", "-p", "x", "--overlay", "--threshold", "0.5", "--json",
              "-o", tmp_path / "o", *W)
    again = {Path(r["input"]).relative_to(tmp_path / "in").as_posix(): r for r in json.loads(res.stdout)["images"]}
    assert again["a.png"]["status"] == "skipped"
    assert again["a.png"]["prompts"][0]["outputs"] == by_input["a.png"]["prompts"][0]["outputs"]


def test_dash_out_streams_one_png_or_json_to_stdout(tmp_path, reference, monkeypatch):
    monkeypatch.chdir(tmp_path)
    img = _img(tmp_path / "a.png")
    res = run("segment", img, "-p", "a cat", "--threshold", "0.5", "-o", "-", *W)
    assert res.exit_code == 0
    mask = np.asarray(Image.open(io.BytesIO(res.stdout_bytes))) > 127
    assert np.array_equal(mask, reference.segment(str(img), ["a cat"])[0] >= 0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no folder written for '-'
    # one JSON output of all prompts: the RLE
    res = run("segment", img, "-p", "a cat", "-p", "x", "--no-mask", "--rle", "-o", "-", *W)
    assert res.exit_code == 0 and [a["prompt"] for a in json.loads(res.stdout)["annotations"]] == ["a cat", "x"]
    # the image on standard input too
    res = run("segment", "-", "-p", "a cat", "-o", "-", *W, input=img.read_bytes())
    assert res.exit_code == 0 and res.stdout_bytes.startswith(b"\x89PNG")
    # more than one file cannot go to stdout: one line, exit 2, before the model loads
    for args in (["-p", "a", "-p", "b"], ["-p", "a", "--overlay"], ["-p", "a", "--json"]):
        res = run("segment", img, *args, "-o", "-", *W)
        assert res.exit_code == 2 and "-o -" in res.output and res.output.count("\n") == 1
    res = run("segment", tmp_path, "-p", "a", "-o", "-", *W)
    assert res.exit_code == 2 and "one image" in res.output


def test_missing_input_is_exit_2_before_the_model_loads(tmp_path, monkeypatch):
    import clipseg.factory

    monkeypatch.setattr(clipseg.factory, "load", lambda *a, **k: pytest.fail("the model loaded"))
    res = run("segment", _img(tmp_path / "a.png"), tmp_path / "nope.jpg", "-p", "x", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "nope.jpg' does not exist" in res.output and not (tmp_path / "o").exists()


def test_multi_frame_files_are_not_cut_silently(tmp_path):
    frames = [Image.new("RGB", (40, 30), (60 * i, 20, 20)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tiff", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "one.gif")
    res = run("segment", tmp_path / "anim.gif", tmp_path / "pages.tiff", tmp_path / "one.gif", "-p", "x", "--json",
              "-o", tmp_path / "o", *W)
    assert res.exit_code == 0
    notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and all("3 frames; only the first was segmented" in n for n in notes)
    records = {Path(r["input"]).name: r for r in json.loads(res.stdout)["images"]}
    assert records["anim.gif"]["frames"] == 3 and records["pages.tiff"]["frames"] == 3
    assert "frames" not in records["one.gif"]


def test_name_gives_a_prompt_a_short_key(tmp_path):
    img = _img(tmp_path / "a.png")
    long = "the cat on the left, sitting"
    res = run("segment", img, "--name", f"cat={long}", "-p", "x", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0
    assert (tmp_path / "o" / "a.png.cat.mask.png").is_file() and (tmp_path / "o" / "a.png.x.mask.png").is_file()
    legend = json.loads((tmp_path / "o" / "prompts.json").read_text())
    assert legend["prompts"]["cat"]["prompt"] == long
    # the key is the prompt's now: another prompt under that key in the same folder is refused, not mixed
    res = run("segment", img, "--name", "cat=a dog", "-o", tmp_path / "o", *W)
    assert res.exit_code == 2 and "not the one its files were made from" in res.output
    # and within one run, a key that is another prompt's plain key
    res = run("segment", img, "--name", f"x={long}", "-p", "x", "-o", tmp_path / "o2", *W)
    assert res.exit_code == 2 and "same file name key 'x'" in res.output
    for bad in ("Cat=a", "a.b=c", "=a", "k=", "k"):
        res = run("segment", img, "--name", bad, "-o", tmp_path / "o3", *W)
        assert res.exit_code == 2 and "--name" in res.output


def test_weights_help_lists_the_known_names():
    res = run("segment", "--help")
    text = " ".join(res.output.split()).replace("- ", "-")  # click breaks long names at hyphens
    for name in ("CIDAS/clipseg-rd64-refined", "rd64-uni", "world"):
        assert name in PRETRAINED and name in text
    assert "openai/ViT-B-16" not in text  # a backbone, not a model to segment with


def test_overlay_outline_scales_and_stands_out_and_the_legend_names_prompts():
    assert outline_width(400, 300) == 3 and outline_width(3000, 4000) > outline_width(900, 1200) >= 3
    assert contrast((255, 225, 25)) == (0, 0, 0) and contrast((0, 0, 128)) == (255, 255, 255)
    red = Image.new("RGB", (200, 120), PALETTE[0])  # an object of the first prompt's own colour
    prob = np.zeros((120, 200), np.float32)
    prob[30:90, 50:150] = 0.9
    plain = np.asarray(overlay_image(red, prob, threshold=0.5))
    assert plain.shape == (120, 200, 3)
    rim = plain[28:32, 50:150].reshape(-1, 3)  # across the mask's top edge: the white halo shows on red
    assert (rim == 255).all(axis=1).any()
    with_legend = overlay_image(red, np.stack([prob, prob * 0]), threshold=0.5, names=["a red box", "nothing"])
    assert with_legend.width == 200 and with_legend.height > 120
    strip = np.asarray(with_legend)[120:]
    for k in (0, 1):  # each prompt's swatch is in the strip
        assert (strip.reshape(-1, 3) == PALETTE[k]).all(axis=1).any()


def test_no_legend_keeps_the_image_size(tmp_path):
    img = _img(tmp_path / "a.png")
    res = run("segment", img, "-p", "x", "--overlay", "--no-legend", "--no-mask", "-o", tmp_path / "o", *W)
    assert res.exit_code == 0
    (overlay,) = (tmp_path / "o").glob("*.overlay.png")
    assert Image.open(overlay).size == (44, 30)
    assert naming.KIND_SUFFIXES["overlay"] == ".overlay.png"
