"""The Ray Data adapter on a local Ray instance (skipped where ray is not installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the optional ray extra is not installed")
pytest.importorskip("ray.data")

from clipseg.io import rle  # noqa: E402
from clipseg.inference import Predictor  # noqa: E402
from clipseg import load as load_model  # noqa: E402
from clipseg.inference.ray_data import SegmentBatch  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_read_images_map_batches_equals_the_predictor(local_ray, tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"im{i}.png": (rng.random((h, w, 3)) * 255).astype(np.uint8)
              for i, (h, w) in enumerate([(30, 40), (64, 64), (30, 40), (25, 70)])}
    for name, a in arrays.items():
        Image.fromarray(a).save(tmp_path / name)
    prompts = ["a cat", "grass"]
    ds = ray.data.read_images(str(tmp_path), include_paths=True, mode="RGB")
    out = ds.map_batches(SegmentBatch, fn_constructor_kwargs={"weights": "tiny:random", "prompts": prompts,
                                                              "device": "cpu"},
                         batch_size=2, concurrency=1, batch_format="numpy").take_all()
    assert len(out) == 4
    reference = Predictor(load_model("tiny:random"))
    for row in out:
        name = row["path"].rsplit("/", 1)[-1]
        expected = reference.segment(arrays[name], prompts) >= 0.5
        masks = [rle.decode(r) for r in json.loads(row["rle"])]
        assert json.loads(row["prompts"]) == prompts
        assert all(np.array_equal(m, e) for m, e in zip(masks, expected)), name
