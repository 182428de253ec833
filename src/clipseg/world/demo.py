"""Segmenting a generated scene (or any image) with a world model, as an overlay PNG."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..worldgen import generate_scene
from ..training.clip_pretrain import torch_threads
from .config import DEFAULT_PRESET, PRESETS, WorldPipelineConfig
from .decoder_stage import load_world_models


@dataclass
class DemoResult:
    path: Path
    prompt: str
    scene_seed: int | None
    probs: np.ndarray  # (H, W) in [0, 1]
    threshold: float
    unknown_words: list[str]
    objects: list[str]  # descriptions of the scene's objects ("large striped red star")
    foreground: float  # share of pixels above the threshold


def segment_demo(prompt: str, out_png: str | Path, scene_seed: int = 0, config: WorldPipelineConfig | None = None,
                 cache_dir: str | Path | None = None, progress: bool = True, model: str = "clipseg",
                 threshold: float | None = None, image: Any = None, scale: int = 4,
                 on_log: Callable[[str], None] | None = None, shipped: bool = False) -> DemoResult:
    """Segment a generated scene (or `image`) by a text prompt with a world model; write an overlay PNG.

    With `shipped`, the models shipped with the package; otherwise those of `config` from the
    cache, trained and cached first when missing. The PNG is `clipseg demo`'s figure for one
    prompt: the scene, the part at or above `threshold` (default: the model's own) tinted and
    outlined, and a legend line.
    """
    from PIL import Image

    from ..inference import Predictor
    from ..inference.figure import result_figure

    config = config or PRESETS[DEFAULT_PRESET]
    if shipped:  # the models shipped with the package (the full preset's fold 0): nothing is trained
        from ..factory import load
        from ..weights.registry import WORLD_MODELS

        models = {model: load(WORLD_MODELS[model])}
        tokenizer = models[model].tokenizer
    else:
        models, tokenizer, _ = load_world_models(config, (model,), cache_dir, progress)
    objects: list[str] = []
    if image is None:
        scene = generate_scene(scene_seed, config.scene)
        pixels = scene.image
        objects = [f"{o.size} {o.texture} {o.colour} {o.shape}" for o in scene.objects]
    else:
        from ..io.image_io import load_image

        pixels = np.asarray(load_image(image).convert("RGB").resize((config.image_size, config.image_size)))
        scene_seed = None
    with torch_threads(config.threads):
        predictor = Predictor(models[model], tokenizer, truncate_prompts=True, threshold=threshold,
                              warn_unknown_words=False)  # DemoResult.unknown_words says them
        threshold = predictor.threshold
        predictor.set_image(pixels)
        probs = predictor.predict([prompt])[0]
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    result_figure(Image.fromarray(pixels), probs[None], [prompt], threshold,
                  tile=scale * max(pixels.shape[:2])).save(out_png)
    return DemoResult(out_png, prompt, scene_seed, probs, threshold, tokenizer.unknown_words(prompt), objects,
                      float((probs >= threshold).mean()))
