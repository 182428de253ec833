"""Full resolution: edge-aware refinement and tiled inference, in the library, the command
line and HTTP (video: tests/test_video.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from clipseg import load
from clipseg.cli.main import cli
from clipseg.evaluation.boundary import boundary_f, boundary_tolerance
from clipseg.inference import Predictor
from clipseg.inference.refine import EdgeRefiner, box_mean
from clipseg.inference.tiles import TileBlender, auto_tiles, tile_grid
from clipseg.worldgen.scenes import SceneConfig, generate_scene

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(load("world"))


def _scene(seed: int, size: int, **kw):
    return generate_scene(seed, SceneConfig(image_size=size, min_objects=2, max_objects=4, **kw))


def _class_targets(scene):
    out = {}
    for o in scene.objects:
        out[o.shape] = out.get(o.shape, np.zeros(scene.hw, bool)) | o.mask
    return out


# ---------------------------------------------------------------- refinement


def test_box_mean_is_the_clipped_window_mean():
    x = torch.rand(2, 17, 23)
    for r in (1, 4, 30):
        brute = torch.stack([torch.stack([x[:, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean((1, 2))
                                          for j in range(23)], -1) for i in range(17)], -2)
        assert torch.allclose(box_mean(x, r), brute, atol=1e-6)


def test_refinement_leaves_a_constant_map_and_an_absent_answer_unchanged():
    scene = _scene(3, 300)
    refiner = EdgeRefiner(scene.image, (8, 8))
    for c in (0.0, 0.3, 1.0):
        const = torch.full(scene.hw, c)
        assert torch.equal(refiner(const, 0.2), const)
    absent = torch.zeros(scene.hw)
    absent[:5, :5] = 0.9  # 25 px of 90,000: under the 1 % presence rule
    assert torch.equal(refiner(absent, 0.5), absent)


def test_refinement_changes_only_the_band_around_the_coarse_border():
    scene = _scene(4, 400)
    refiner = EdgeRefiner(scene.image, (8, 8))
    prob = torch.zeros(scene.hw)
    prob[:120, :160] = 0.9  # an object in the top-left corner
    q = refiner(prob, 0.5)
    far = np.zeros(scene.hw, bool)
    far[300:, :] = True
    far[:, 330:] = True
    assert torch.equal(q[torch.from_numpy(far)], prob[torch.from_numpy(far)])  # far from the border: as it was
    assert not torch.equal(q, prob)


def test_refinement_improves_the_boundary_over_bilinear_upsampling(predictor):
    """Generated scenes at 640 px (the world model decides on an 8 x 8 grid): the refined masks'
    boundary F-score against the exact polygons beats bilinear upsampling's."""
    plain, refined = [], []
    for seed in range(4):
        scene = _scene(100 + seed, 640)
        predictor.set_image(scene.image)
        tol = boundary_tolerance(*scene.hw)
        for shape, target in _class_targets(scene).items():
            a, b = (predictor.predict([f"a photo of a {shape}."], refine=r)[0] >= predictor.threshold
                    for r in (False, True))
            plain.append(boundary_f(a, target, tol))
            refined.append(boundary_f(b, target, tol))
    assert np.mean(refined) > np.mean(plain)


# ---------------------------------------------------------------- tiles


def test_tiles_equal_the_global_pass_on_an_image_no_larger_than_one_tile(predictor):
    scene = _scene(5, 150)
    predictor.set_image(scene.image)
    whole = predictor.predict(["a photo of a heart.", "a red circle"])
    assert auto_tiles(150, 150, predictor.transform.size) == 1
    for tiles in (1, "auto"):
        predictor.set_image(scene.image, tiles=tiles)
        assert predictor.image_state.tiles is None
        assert np.array_equal(predictor.predict(["a photo of a heart.", "a red circle"]), whole)


def test_a_three_tile_image_goes_through_the_backbone_in_one_batch(predictor):
    image = (np.random.default_rng(0).random((200, 600, 3)) * 255).astype(np.uint8)
    calls = []
    encode = predictor.model.encode_image
    predictor.model.encode_image = lambda x: (calls.append(x.shape[0]), encode(x))[1]
    try:
        predictor.set_image(image, tiles=3)
    finally:
        del predictor.model.encode_image
    assert len(tile_grid(200, 600, 3)) == 3
    assert calls == [1, 3]  # the whole image, then the three crops together
    probs = predictor.predict(["a photo of a heart."])
    assert probs.shape == (1, 200, 600) and 0 <= probs.min() and probs.max() <= 1


def test_a_tile_cannot_invent_what_the_whole_image_does_not_support():
    grid = tile_grid(64, 128, 2)
    tile_logits = torch.full((len(grid), 1, 16, 16), 4.0)  # every crop: "here", p = 0.98
    global_logits = torch.full((1, 16, 16), -4.0)  # the whole image: nothing anywhere
    global_logits[0, 4:8, 4:8] = 3.0  # ... except one spot
    m = TileBlender(grid, tile_logits, global_logits).term_map(0)
    whole = torch.sigmoid(torch.nn.functional.interpolate(global_logits[None], size=(64, 128), mode="bilinear")[0, 0])
    assert (m <= torch.maximum(whole, torch.tensor(0.0)) + 1e-6)[40:, 80:].all()  # far from the spot: capped
    assert m[20, 24] > 0.97  # where the whole image supports it: the crops' answer
    ungated = TileBlender(grid, tile_logits, global_logits, gate=None).term_map(0)
    assert (ungated > 0.97).all()


def test_tile_blending_is_seamless_for_equal_crops():
    grid = tile_grid(90, 200, 3)
    logits = torch.full((len(grid), 2, 8, 8), 1.5)
    m = TileBlender(grid, logits, torch.full((2, 8, 8), 1.5)).term_map(1)
    assert torch.allclose(m, torch.sigmoid(torch.tensor(1.5)).expand(90, 200), atol=1e-6)


# ---------------------------------------------------------------- front ends


def test_refine_and_tiles_through_the_command_line_equal_the_library(predictor, tmp_path):
    scene = _scene(6, 700)
    Image.fromarray(scene.image).save(tmp_path / "scene.png")
    prompt = "a photo of a heart."
    r = CliRunner().invoke(cli, ["segment", str(tmp_path / "scene.png"), "-w", "world", "-p", prompt, "--refine",
                                 "--tiles", "3", "--prob", "npy", "-o", str(tmp_path / "out"), "--no-progress"])
    assert r.exit_code == 0, r.output
    (npy,) = (tmp_path / "out").glob("*.prob.npy")
    predictor.set_image(scene.image, tiles=3)
    assert np.abs(np.load(npy) - predictor.predict([prompt], refine=True)[0]).max() <= 1e-5
    bad = CliRunner().invoke(cli, ["segment", str(tmp_path / "scene.png"), "-w", "world", "-p", prompt, "--tiles", "0"])
    assert bad.exit_code == 2 and "--tiles takes a whole number" in bad.output


def test_refine_and_tiles_through_http(predictor):
    pytest.importorskip("fastapi")
    import base64
    import io

    from fastapi.testclient import TestClient

    from clipseg.server.app import create_app

    client = TestClient(create_app(load("world")))
    scene = _scene(7, 400)
    buf = io.BytesIO()
    Image.fromarray(scene.image).save(buf, format="PNG")
    data = buf.getvalue()
    prompt = "a photo of a heart."
    r = client.post("/segment", files={"image": ("s.png", data)},
                    data={"prompt": prompt, "refine": "true", "tiles": "2", "outputs": "prob_png"})
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["results"][0]["prob_png"])))) / 65535
    predictor.set_image(scene.image, tiles=2)
    assert np.abs(got - predictor.predict([prompt], refine=True)[0]).max() <= 2e-5
    sha = r.json()["image"]["sha256"]
    again = client.post("/segment", data={"image_sha256": sha, "prompt": prompt, "tiles": "2"})  # cached crops
    assert again.status_code == 200 and again.json()["image"]["cached"]
    refine_by_sha = client.post("/segment", data={"image_sha256": sha, "prompt": prompt, "refine": "true"})
    assert refine_by_sha.status_code == 422 and refine_by_sha.json()["error"] == "image_needed"
    bad = client.post("/segment", files={"image": ("s.png", data)}, data={"prompt": prompt, "tiles": "x"})
    assert bad.status_code == 422 and "tiles must be" in bad.json()["detail"]
