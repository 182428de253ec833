"""A Ray Data adapter: segment a data set of images on a Ray cluster.

    import ray
    from clipseg.inference.ray_data import SegmentBatch

    ds = ray.data.read_images("s3://bucket/photos/", include_paths=True, mode="RGB")
    out = ds.map_batches(SegmentBatch, fn_constructor_kwargs={"weights": "CIDAS/clipseg-rd64-refined",
                                                              "prompts": ["a cat", "a dog"]},
                         batch_size=16, concurrency=4, num_gpus=1)   # one model per actor
    out.write_parquet("s3://bucket/masks/")

Each actor loads the model once and encodes the prompts once; every batch of images goes
through `Predictor.predict_batch`. A row gets, per prompt, the COCO RLE of its mask at
`threshold` (JSON), its area and its highest probability; `path` is kept when the source
has it. Prompts may be expressions, `negative` prompts are subtracted from each, and
`editing` (a `clipseg.editing.MaskOptions` or its fields as a dict) shapes the masks. Needs the `ray` extra (`pip install 'clipseg[ray]'`).
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from ..editing import MaskOptions, edit_map
from ..io import rle
from .masks import DEFAULT_THRESHOLD


class SegmentBatch:
    """Callable class for `Dataset.map_batches` (numpy batch format, an "image" column)."""

    def __init__(self, weights: str, prompts: Sequence[str], threshold: float = DEFAULT_THRESHOLD, device: str = "auto",
                 batch_size: int = 16, tokenizer=None, negative: Sequence[str] = (),
                 editing: MaskOptions | dict | None = None):
        from ..factory import load
        from .predictor import Predictor

        if not prompts:
            raise ValueError("SegmentBatch needs at least one prompt")
        self.prompts, self.threshold, self.batch_size = list(prompts), float(threshold), batch_size
        self.editing = editing if isinstance(editing, MaskOptions) else MaskOptions(**(editing or {}))
        self.predictor = Predictor(load(weights, device=device), tokenizer)
        self.plan = self.predictor.plan(self.prompts, negative)  # expressions read once per actor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = [np.asarray(img, dtype=np.uint8) for img in batch["image"]]  # (H, W, 3), sizes may differ
        maps = self.predictor.predict_batch(images, self.plan, batch_size=self.batch_size)
        out = {k: v for k, v in batch.items() if k != "image"}
        masks = [[edit_map(p, self.threshold, self.editing).mask for p in image_maps] for image_maps in maps]
        out["prompts"] = np.array([json.dumps(self.plan.names)] * len(images), dtype=object)
        out["rle"] = np.array([json.dumps([rle.encode(m) for m in image_masks]) for image_masks in masks], dtype=object)
        out["area"] = np.array([json.dumps([int(m.sum()) for m in image_masks]) for image_masks in masks], dtype=object)
        out["score"] = np.array([json.dumps([float(p.max()) for p in image_maps]) for image_maps in maps], dtype=object)
        return out
