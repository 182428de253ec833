"""Stage 1 of the world pipeline: a small CLIP pretrained on captions of all classes, and its
zero-shot classification of single objects (the measure of what it knows)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..data.world import COLOUR_NAMES, SHAPE_CLASSES, generate_scene
from ..data.world.dataset import WorldCaptionDataset, scene_tensor
from ..data.world.tokenizer import WordTokenizer
from ..model.clip import CLIP
from ..training.clip_pretrain import pretrain_clip, torch_threads, zero_shot_accuracy
from ..weights.native import load_clip, save_clip
from .config import PRESETS, WorldPipelineConfig, default_cache_dir
from .runlog import log

CLIP_FILE, TOKENIZER_FILE = "clip.safetensors", "tokenizer.json"


def _single_object_set(config: WorldPipelineConfig,
                       n: int = 600) -> tuple[torch.Tensor, torch.Tensor, list[int], list[int]]:
    """Scenes with one object each (fixed seeds, disjoint from all others), the same scenes as
    close-up views of the object (crop of 1.6 x its size, centred), the class and the colour indices."""
    from ..data.world.dataset import crop_resize

    scene_config = dataclasses.replace(config.scene, min_objects=1, max_objects=1)
    scenes, views, labels, colours = [], [], [], []
    for i in range(n):
        scene = generate_scene(90_000_000 + i, scene_config)
        image = scene_tensor(scene)
        x0, y0, x1, y1 = scene.objects[0].bbox
        scenes.append(image)
        views.append(crop_resize(image, (x0 + x1) / 2, (y0 + y1) / 2, 1.6 * max(x1 - x0, y1 - y0), scene.hw))
        labels.append(SHAPE_CLASSES.index(scene.objects[0].shape))
        colours.append(COLOUR_NAMES.index(scene.objects[0].colour))
    return torch.stack(scenes), torch.stack(views), labels, colours


def clip_classification_accuracy(clip: CLIP, tokenizer: WordTokenizer, config: WorldPipelineConfig) -> dict[str, float]:
    """Zero-shot classification among all 12 classes ("a photo of a {}.") of single-object
    scenes ("seen", "unseen") and of close-up views of the same objects ("seen_views",
    "unseen_views"); and of the colour of those scenes among the 8 colours ("colour",
    "a photo of a {} object.")."""
    scenes, views, labels, colours = _single_object_set(config)
    prompts = [f"a photo of a {c}." for c in SHAPE_CLASSES]
    out = {}
    for part, classes in (("seen", config.split.seen_classes()), ("unseen", config.split.unseen_classes())):
        rows = [i for i, y in enumerate(labels) if SHAPE_CLASSES[y] in classes]
        ys = [labels[i] for i in rows]
        out[part] = zero_shot_accuracy(clip, tokenizer, scenes[rows], ys, prompts)
        out[f"{part}_views"] = zero_shot_accuracy(clip, tokenizer, views[rows], ys, prompts)
    out["chance"] = 1 / len(SHAPE_CLASSES)
    out["colour"] = zero_shot_accuracy(clip, tokenizer, scenes, colours, [f"a photo of a {c} object." for c in COLOUR_NAMES])
    return out


def caption_dataset(config: WorldPipelineConfig) -> WorldCaptionDataset:
    """The (image, caption) pairs of CLIP pretraining: scenes of all classes and close-ups of their objects."""
    return WorldCaptionDataset(
        config.pretrain_scenes, config.captions_per_scene, seed=config.seed,
        scene_config=dataclasses.replace(config.scene, max_objects=config.pretrain_max_objects),
        object_crop_prob=config.pretrain_object_crops, crop_scale=config.pretrain_crop_scale,
        crop_size=config.pretrain_crop_size)


def pretrained_clip(config: WorldPipelineConfig | None = None, cache_dir: str | Path | None = None,
                    progress: bool = True, force: bool = False) -> tuple[CLIP, WordTokenizer, dict[str, Any]]:
    """The pretrained world CLIP, its tokenizer and info {"seconds", "loaded", "accuracy", ...}.

    Loaded from `cache_dir/clip-<key>/` when there, else trained and saved there.
    """
    config = config or PRESETS["default"]
    folder = Path(cache_dir or default_cache_dir()) / f"clip-{config.clip_key()}"
    path, tok_path = folder / CLIP_FILE, folder / TOKENIZER_FILE
    if path.exists() and tok_path.exists() and not force:
        clip, meta = load_clip(path)
        return clip, WordTokenizer.load(tok_path), {**meta, "loaded": True, "path": str(path)}
    tokenizer = config.tokenizer()
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        clip = CLIP(config.clip_config())
        dataset = caption_dataset(config)
        log(progress, f"[world] pretraining CLIP ({config.pretrain_steps} steps of {config.pretrain_batch})")
        result = pretrain_clip(clip, dataset, config.pretrain_config(), tokenizer, progress=progress)
        accuracy = clip_classification_accuracy(clip, tokenizer, config)
    meta = {"seconds": result.seconds, "final_loss": result.final_loss, "final_accuracy": result.final_accuracy,
            "accuracy": accuracy, "history": result.history}
    log(progress, f"[world] CLIP: loss {result.final_loss:.3f}, single-object classification "
                   f"seen {accuracy['seen']:.2f} / held-out {accuracy['unseen']:.2f} ({result.seconds:.0f} s)")
    save_clip(clip, path, meta)
    tokenizer.save(tok_path)
    return clip, tokenizer, {**meta, "loaded": False, "path": str(path)}
