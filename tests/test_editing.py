"""Masks for editing: the operations (against scipy's exact distance transform and labels),
prompt algebra on a fixed model through the library, the command line and HTTP, cut-outs,
regions and the bad-input lines."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import scipy.ndimage as ndi
from click.testing import CliRunner
from PIL import Image

from clipseg import load
from clipseg.cli.main import cli
from clipseg.editing import MaskOptions, cutout, edit_map, feather, fill_holes, find_regions, grow
from clipseg.editing import remove_small_regions, smooth, smoothed_mask
from clipseg.inference import Predictor
from clipseg.prompts import PromptError
from clipseg.prompts.expression import Expression, ExpressionError, parse, plan_prompts, render
from clipseg.weights.registry import ASSETS_DIR

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCENE = ASSETS_DIR / "world" / "example-scene.png"
A, B = "a red circle", "a blue square"


@pytest.fixture(scope="module")
def predictor():
    return Predictor(load("world"))


def _blobs(h: int, w: int, seed: int) -> np.ndarray:
    """A mask of discs, thin lines and single pixels, some touching the border."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:h, :w]
    m = np.zeros((h, w), bool)
    for _ in range(6):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(5, max(6, min(h, w) // 8))
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    m[rng.integers(0, h, 40), rng.integers(0, w, 40)] = True
    m[h // 3, : w // 2] = True
    m[:, 0] |= np.arange(h) < h // 4
    return m


# ---------------------------------------------------------------- operations


@pytest.mark.parametrize("radius", [1, 2.5, 7, 25.5])
def test_grow_adds_exactly_the_pixels_within_the_radius(radius):
    small = _blobs(300, 400, seed=int(radius * 10))
    for m in (small, ~small):  # a small mask, and one of most of the image
        grown = grow(m, radius)
        expected = ndi.distance_transform_edt(~m) <= radius  # exact Euclidean distance to the mask
        assert grown[m].all()  # contains the mask
        assert np.array_equal(grown, expected)


@pytest.mark.parametrize("radius", [1, 4.5, 12])
def test_shrink_is_the_dual_of_grow(radius):
    m = _blobs(240, 320, seed=3)
    m = m if radius != 4.5 else ~m  # a mask of most of the image
    shrunk = grow(m, -radius)
    assert np.array_equal(shrunk, ~grow(~m, radius))
    assert not shrunk[~m].any()  # inside the mask
    # the pixels kept are those farther than the radius from every background pixel (the image's
    # outside is not background)
    assert np.array_equal(shrunk, m & (ndi.distance_transform_edt(m) > radius))


def test_grow_and_shrink_in_full_resolution_pixels_of_a_4000_by_3000_image(predictor):
    """The radius is in the photo's pixels, not the model's 128 (or 352) px map."""
    big = Image.open(SCENE).convert("RGB").resize((4000, 3000), Image.BILINEAR)
    predictor.set_image(big)
    prob = predictor.predict([A])[0]
    base = prob >= predictor.threshold
    assert base.shape == (3000, 4000) and 0.001 < base.mean() < 0.5
    for r in (40, -25):
        (edited,) = predictor.edit([A], grow=r)
        if r > 0:
            expected = ndi.distance_transform_edt(~base) <= r
        else:
            expected = base & (ndi.distance_transform_edt(base) > -r)
        assert np.array_equal(edited.mask, expected), r
    (grown,) = predictor.edit([A], grow=40)
    # one model pixel is 31 photo pixels wide: a 40 px grow adds a band of about 40 px, not 40 model pixels
    added = grown.mask & ~base
    assert ndi.distance_transform_edt(~base)[added].max() <= 40


def test_invert_is_the_complement_and_presence_is_the_objects(predictor):
    predictor.set_image(str(SCENE))
    plain, inverted = predictor.edit([A])[0], predictor.edit([A], invert=True)[0]
    assert np.array_equal(inverted.mask, ~plain.mask)
    assert inverted.present == plain.present
    absent = predictor.edit(["a purple star"], invert=True, threshold=0.99)[0]
    assert not absent.present and absent.mask.all()  # "not present": edit everything


def test_feather_is_a_ramp_across_the_border():
    m = _blobs(200, 260, seed=5)
    for width in (1, 6, 15):
        a = feather(m, width)
        assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
        assert np.array_equal(a > 0.5, m)  # the mask back
        d_in, d_out = ndi.distance_transform_edt(m), ndi.distance_transform_edt(~m)
        assert (a[m & (d_in - 0.5 >= width / 2)] == 1).all()
        assert (a[~m & (d_out - 0.5 >= width / 2)] == 0).all()
        assert np.allclose(a[m], np.clip(0.5 + (d_in[m] - 0.5) / width, 0, 1), atol=1e-5)


def test_fill_holes_and_min_area():
    yy, xx = np.ogrid[:100, :120]
    ring = ((yy - 50) ** 2 + (xx - 60) ** 2 <= 30 ** 2) & ((yy - 50) ** 2 + (xx - 60) ** 2 > 10 ** 2)
    filled = fill_holes(ring)
    assert np.array_equal(filled, ndi.binary_fill_holes(ring))
    assert filled[50, 60] and not filled[0, 0]
    m = ring.copy()
    m[2:4, 2:4] = True  # 4 px island
    kept = remove_small_regions(m, 5)
    assert np.array_equal(kept, ring)
    assert np.array_equal(remove_small_regions(m, 4), m)


@pytest.mark.parametrize("sigma", [0.7, 3, 12])
def test_smoothing_only_where_it_can_pass_equals_the_whole_blur(sigma):
    rng = np.random.default_rng(int(sigma * 10))
    prob = ndi.zoom(rng.random((12, 16)).astype(np.float32), 20, order=1) * 0.6  # a coarse map, upsampled
    prob[5:9, 300:304] = 0.9  # a small spot near the border
    for t in (0.3, 0.5, 0.58):
        assert np.array_equal(smoothed_mask(prob, sigma, t), smooth(prob, sigma) >= t), t


def test_smooth_before_the_threshold():
    prob = np.zeros((60, 60), np.float32)
    prob[30, 30] = 1.0  # a one-pixel spike: smoothing removes it at threshold 0.5
    e = edit_map(prob, 0.5, MaskOptions(smooth=3))
    assert not e.mask.any()
    assert edit_map(prob, 0.5).mask.sum() == 1


def test_cutout_alpha_is_the_matte_and_colour_the_image(predictor):
    img = Image.open(SCENE).convert("RGB")
    predictor.set_image(img)
    for opts in (dict(), dict(feather=6, grow=3)):
        (e,) = predictor.edit([A], **opts)
        rgba = np.asarray(cutout(img, e))
        assert rgba.shape == (img.height, img.width, 4)
        assert np.array_equal(rgba[..., 3], e.matte8())
        on = rgba[..., 3] > 0
        assert np.array_equal(rgba[..., :3][on], np.asarray(img)[on])
        assert (rgba[..., :3][~on] == 0).all()


def test_regions_boxes_contain_their_components():
    m = _blobs(300, 400, seed=11)
    labels, n = ndi.label(m, structure=np.ones((3, 3)))
    regions = find_regions(m, padding=10)
    assert len(regions) == n
    assert [r.area for r in regions] == sorted((r.area for r in regions), reverse=True)
    for r in regions:
        x, y, w, h = r.bbox
        comp = labels == labels[int(round(y)), int(round(x))] if m[y, x] else None
        inside = np.zeros_like(m)
        inside[y : y + h, x : x + w] = True
        # the component(s) whose pixels lie in this box: one of them has exactly this area and box
        ids = np.unique(labels[inside & m])
        match = [i for i in ids if (labels == i).sum() == r.area and not ((labels == i) & ~inside).any()]
        assert match, r
        x0, y0, x1, y1 = r.crop
        assert x0 <= x and y0 <= y and x1 >= x + w and y1 >= y + h
        assert x0 == max(0, x - 10) and y1 == min(300, y + h + 10)
        del comp
    lr = find_regions(m, order="left-to-right")
    assert [r.bbox[0] for r in lr] == sorted(r.bbox[0] for r in lr)


# ---------------------------------------------------------------- prompt algebra


def test_expressions_parse_with_spaced_operators_only():
    assert parse("t-shirt") == "t-shirt" and parse("black&white") == "black&white" and parse("a|b") == "a|b"
    assert parse('"rock | roll"') == "rock | roll"
    node = parse("(a cat | a dog) - a ball")
    assert isinstance(node, Expression) and node.op == "-" and render(node) == "(a cat | a dog) - a ball"
    assert render(parse('"a cat (black)" | a dog')) == '"a cat (black)" | a dog'
    for bad, words in [("a | b - c", "parentheses"), ("(a | b", "unbalanced '('"), ("a | b)", "unbalanced ')'"),
                       ("a |  | b", "empty term"), ('"a | b', "double quote"), ("() | a", "empty term")]:
        with pytest.raises(ExpressionError, match=re.escape(words)):
            parse(bad)
    with pytest.raises(PromptError, match="more than the 3 allowed"):
        plan_prompts(["a | b | c | d"], max_terms=3)


def test_every_term_is_decoded_once_and_negative_prompts_subtract():
    plan = plan_prompts(["a cat | a dog", "a dog", "a sofa"], negative=["a hand", "a ball"])
    assert plan.terms == ["a cat", "a dog", "a hand", "a ball", "a sofa"]
    assert plan.names == ["(a cat | a dog) - (a hand | a ball)", "a dog - (a hand | a ball)",
                          "a sofa - (a hand | a ball)"]


def test_algebra_on_soft_maps_through_the_library(predictor):
    predictor.set_image(str(SCENE))
    a, b, c = predictor.predict([A, B, "a green triangle"])
    u, i, d, nested = predictor.predict([f"{A} | {B}", f"{A} & {B}", f"{A} - {B}", f"({A} | {B}) - a green triangle"])
    assert np.abs(u - np.maximum(a, b)).max() <= 1e-6
    assert np.abs(i - np.minimum(a, b)).max() <= 1e-6
    assert np.abs(d - np.minimum(a, 1 - b)).max() <= 1e-6
    assert np.abs(nested - np.minimum(np.maximum(a, b), 1 - c)).max() <= 1e-6
    (neg,) = predictor.predict([A], negative=[B])
    assert np.abs(neg - d).max() <= 1e-6
    logits = predictor.predict_logits([f"{A} | {B}", A, B])  # the tensor twin: the same algebra on logits
    assert np.allclose(logits[0].numpy(), np.maximum(logits[1].numpy(), logits[2].numpy()))
    # the presence rule applies to the result: a thing minus itself, min(a, 1 - a), is never above 0.5
    (self_diff,) = predictor.edit([f"{A} - {A}"], threshold=0.5 + 1e-6)
    assert not self_diff.present and not self_diff.mask.any()
    for e in predictor.edit([f"{A} | {B}", f"{A} & {B}", f"{A} - {B}"]):
        assert e.present == (e.mask.mean() >= 0.01)


def test_algebra_and_editing_through_the_command_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["segment", str(SCENE), "-w", "world", "--prob", "npy", "-o", str(out), "--no-progress", "--mask",
            "-p", A, "-p", B, "-p", f"{A} | {B}", "-p", f"{A} & {B}", "-p", f"{A} - {B}"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    legend = json.loads((out / "prompts.json").read_text())
    key = {q["prompt"]: k for k, q in legend["prompts"].items()}
    assert set(key) == {A, B, f"{A} | {B}", f"{A} & {B}", f"{A} - {B}"}
    p = {name: np.load(out / f"example-scene.png.{k}.prob.npy") for name, k in key.items()}
    assert np.abs(p[f"{A} | {B}"] - np.maximum(p[A], p[B])).max() <= 1e-6
    assert np.abs(p[f"{A} & {B}"] - np.minimum(p[A], p[B])).max() <= 1e-6
    assert np.abs(p[f"{A} - {B}"] - np.minimum(p[A], 1 - p[B])).max() <= 1e-6

    # editing options: masks, cut-outs and regions follow them; they enter made_with
    out2 = tmp_path / "edit"
    base = ["segment", str(SCENE), "-w", "world", "-p", A, "-o", str(out2), "--no-progress", "--mask", "--prob", "npy",
            "--cutout", "--regions"]
    r = runner.invoke(cli, base + ["--grow", "3", "--feather", "4", "--negative", B])
    assert r.exit_code == 0, r.output
    legend = json.loads((out2 / "prompts.json").read_text())
    (k, entry), = legend["prompts"].items()
    assert entry["prompt"] == f"{A} - {B}" and entry["made_with"]["editing"] == {"grow": 3.0, "feather": 4.0}
    prob = np.load(out2 / f"example-scene.png.{k}.prob.npy")
    t = legend["threshold"]
    e = edit_map(prob, t, MaskOptions(grow=3, feather=4))
    mask = np.asarray(Image.open(out2 / f"example-scene.png.{k}.mask.png"))
    assert np.array_equal(mask, e.matte8())
    rgba = np.asarray(Image.open(out2 / f"example-scene.png.{k}.cutout.png"))
    assert np.array_equal(rgba[..., 3], e.matte8())
    regions = json.loads((out2 / f"example-scene.png.{k}.regions.json").read_text())
    assert regions["count"] == len(find_regions(e.mask)) and regions["prompt"] == f"{A} - {B}"
    # a resumed run with other options is refused instead of mixing masks
    r = runner.invoke(cli, base + ["--grow", "5", "--feather", "4", "--negative", B])
    assert r.exit_code == 2 and "other settings" in r.output and "grow" in r.output


@pytest.mark.parametrize("args, words", [
    (["--feather", "-1"], "--feather must be 0 or more pixels"),
    (["--smooth", "-2"], "--smooth must be 0 or more"),
    (["--min-area", "-3"], "--min-area must be"),
    (["-p", "a | (b"], "unbalanced '('"),
    (["-p", "a |  | b"], "empty term"),
    (["-p", "a | b - c"], "add parentheses"),
    (["--negative", "  "], "negative prompt must be non-empty"),
])
def test_bad_editing_input_is_one_line_before_the_model_loads(tmp_path, args, words):
    r = CliRunner().invoke(cli, ["segment", str(SCENE), "-w", "/nonexistent/weights.safetensors", "-p", A,
                                 "-o", str(tmp_path)] + args)
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output
    assert "cannot load weights" not in r.output  # found before the weights were touched


def test_a_radius_larger_than_the_image_fails_that_image_with_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["segment", str(SCENE), "-w", "world", "-p", A, "-o", str(tmp_path / "o"),
                                 "--grow", "500", "--no-progress"])
    assert r.exit_code == 1
    assert "grow 500 px is larger than the image (128x128)" in r.output and "Traceback" not in r.output
    assert not list((tmp_path / "o").glob("*.mask.png"))


# ---------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from clipseg.server.app import create_app

    return TestClient(create_app(load("world")))


def _png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_algebra_and_editing_through_http(client):
    image = SCENE.read_bytes()
    r = client.post("/segment", files={"image": ("scene.png", image)},
                    data={"prompt": [A, B, f"{A} | {B}", f"{A} & {B}", f"{A} - {B}"], "outputs": "prob_png"})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    a, b, u, i, d = (_png(x["prob_png"]).astype(np.int64) for x in res)  # 16-bit: 0..65535
    assert np.array_equal(u, np.maximum(a, b)) and np.array_equal(i, np.minimum(a, b))  # rounding is monotone
    assert np.abs(d - np.minimum(a, 65535 - b)).max() <= 1  # 1 - b rounds to within one level
    assert res[2]["prompt"] == f"{A} | {B}" and "-" in res[2]["key"]

    data = {"prompt": A, "negative": [B], "grow": "3", "feather": "4", "outputs": "prob_png,mask_png,cutout_png,regions"}
    r = client.post("/segment", files={"image": ("scene.png", image)}, data=data)
    assert r.status_code == 200, r.text
    body = r.json()
    (x,) = body["results"]
    assert x["prompt"] == f"{A} - {B}" and body["editing"] == {"grow": 3.0, "feather": 4.0}
    prob = _png(x["prob_png"]).astype(np.float32) / 65535
    mask, rgba = _png(x["mask_png"]), _png(x["cutout_png"])
    assert mask.shape == (128, 128) and rgba.shape == (128, 128, 4)
    assert np.array_equal(rgba[..., 3], mask)
    e = edit_map(prob, body["threshold"], MaskOptions(grow=3, feather=4))
    assert np.mean(np.abs(mask.astype(int) - e.matte8().astype(int)) > 1) < 0.01  # prob_png is rounded to 16 bits
    assert x["regions"]["count"] >= 1 and x["regions"]["regions"][0]["crop"]

    png = client.post("/segment", files={"image": ("scene.png", image)},
                      data={"prompt": A, "invert": "true", "format": "png", "kind": "mask"})
    plain = client.post("/segment", files={"image": ("scene.png", image)}, data={"prompt": A, "format": "png"})
    inv, m = np.asarray(Image.open(io.BytesIO(png.content))), np.asarray(Image.open(io.BytesIO(plain.content)))
    assert np.array_equal(inv, 255 - m)


@pytest.mark.parametrize("data, code, words", [
    ({"feather": "-1"}, "bad_option", "feather must be 0 or more"),
    ({"grow": "1000"}, "bad_option", "larger than the image"),
    ({"prompt": "a | (b"}, "bad_prompt", "unbalanced"),
    ({"prompt": "a |  | b"}, "bad_prompt", "empty term"),
    ({"prompt": " | ".join(f"t{k}" for k in range(40))}, "bad_prompt", "more than the 32 allowed"),
])
def test_bad_editing_fields_get_422(client, data, code, words):
    r = client.post("/segment", files={"image": ("scene.png", SCENE.read_bytes())}, data={"prompt": A, **data})
    assert r.status_code == 422 and r.json()["error"] == code and words in r.json()["detail"], r.text


def test_a_cutout_by_image_sha256_alone_asks_for_the_image(client):
    first = client.post("/segment", files={"image": ("scene.png", SCENE.read_bytes())}, data={"prompt": A})
    sha = first.json()["image"]["sha256"]
    r = client.post("/segment", data={"image_sha256": sha, "prompt": A, "outputs": "cutout_png"})
    assert r.status_code == 422 and r.json()["error"] == "image_needed"
