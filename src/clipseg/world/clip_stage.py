"""Stage 1 of the world pipeline: a small CLIP pretrained on captions of all classes, and its
zero-shot classification of single objects (the measure of what it knows)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..worldgen import COLOUR_NAMES, SHAPE_CLASSES, generate_scene
from ..worldgen.dataset import WorldCaptionDataset, scene_tensor
from ..tokenizer.word import WordTokenizer
from ..model.clip import CLIP
from ..training.clip_pretrain import pretrain_clip, torch_threads, zero_shot_predictions
from ..weights.native import load_clip, save_clip
from .config import DEFAULT_PRESET, PRESETS, WorldPipelineConfig, default_cache_dir
from .runlog import log, machine

CLIP_FILE, TOKENIZER_FILE = "clip.safetensors", "tokenizer.json"


def _single_object_set(config: WorldPipelineConfig,
                       per_class: int = 30) -> tuple[torch.Tensor, torch.Tensor, list[int], list[int]]:
    """`per_class` one-object scenes of every class (fixed seeds, disjoint from all others), the
    same objects as close-ups (a centred crop of 1.6 x the object's size at the close-up side of
    pretraining), the class and the colour indices."""
    from ..worldgen.dataset import crop_resize

    scene_config = dataclasses.replace(config.scene, min_objects=1, max_objects=1)
    side = config.pretrain_crop_size or config.image_size
    scenes, views, labels, colours = [], [], [], []
    for i in range(per_class * len(SHAPE_CLASSES)):
        cls = SHAPE_CLASSES[i % len(SHAPE_CLASSES)]
        scene = generate_scene(90_000_000 + i, scene_config, (cls,))
        image = scene_tensor(scene)
        x0, y0, x1, y1 = scene.objects[0].bbox
        scenes.append(image)
        views.append(crop_resize(image, (x0 + x1) / 2, (y0 + y1) / 2, 1.6 * max(x1 - x0, y1 - y0), (side, side)))
        labels.append(SHAPE_CLASSES.index(cls))
        colours.append(COLOUR_NAMES.index(scene.objects[0].colour))
    return torch.stack(scenes), torch.stack(views), labels, colours


def clip_classification_accuracy(clip: CLIP, tokenizer: WordTokenizer, config: WorldPipelineConfig,
                                 per_class: int = 30) -> dict[str, Any]:
    """Zero-shot classification among all classes ("a photo of a {}.") of close-ups of single
    objects and of the whole one-object scenes, and of their colour among all colours ("a photo
    of a {} object."), like CLIP's zero-shot ImageNet test.

    Returns {"views": {class: accuracy}, "scenes": {class: accuracy}, "colours": {colour: accuracy},
    "views_all", "views_held_out", "views_seen", "scenes_all", "scenes_held_out", "colour", "chance"}
    (held out: the classes of `config.split`).
    """
    scenes, views, labels, colours = _single_object_set(config, per_class)
    y = torch.tensor(labels)
    out: dict[str, Any] = {"chance": 1 / len(SHAPE_CLASSES)}
    held_out = set(config.split.unseen_classes())
    for part, images in (("views", views), ("scenes", scenes)):
        hit = zero_shot_predictions(clip, tokenizer, images, [f"a photo of a {c}." for c in SHAPE_CLASSES]) == y
        per = {c: float(hit[y == k].float().mean()) for k, c in enumerate(SHAPE_CLASSES)}
        out[part] = per
        out[f"{part}_all"] = float(hit.float().mean())
        out[f"{part}_held_out"] = float(np.mean([per[c] for c in SHAPE_CLASSES if c in held_out]))
        out[f"{part}_seen"] = float(np.mean([per[c] for c in SHAPE_CLASSES if c not in held_out]))
    yc = torch.tensor(colours)
    hit = zero_shot_predictions(clip, tokenizer, scenes, [f"a photo of a {c} object." for c in COLOUR_NAMES]) == yc
    out["colours"] = {c: float(hit[yc == k].float().mean()) for k, c in enumerate(COLOUR_NAMES) if (yc == k).any()}
    out["colour"] = float(hit.float().mean())
    return out


class _Monitor:
    """Pretraining callback: a log line per history entry, and every `config.pretrain_eval_every`
    steps the close-up accuracy on a small fixed set (4 per class) and a snapshot of the weights
    (`clip.partial.safetensors`), so that a long run shows whether it is learning."""

    def __init__(self, clip: CLIP, tokenizer: WordTokenizer, config: WorldPipelineConfig, folder: Path,
                 progress: bool) -> None:
        self.clip, self.tokenizer, self.config, self.folder, self.progress = clip, tokenizer, config, folder, progress
        self.start = time.perf_counter()
        self._set: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, step: int, entry: dict) -> None:
        line = (f"[world] CLIP step {step}: loss {entry['loss']:.3f}, in-batch accuracy {entry['accuracy']:.3f}, "
                f"lr {entry['lr']:.2e} ({time.perf_counter() - self.start:.0f} s)")
        every = self.config.pretrain_eval_every
        if every and (step % every == 0 or step == self.config.pretrain_steps):
            if self._set is None:
                _, views, labels, _ = _single_object_set(self.config, per_class=4)
                self._set = views, torch.tensor(labels)
            views, y = self._set
            hit = zero_shot_predictions(self.clip, self.tokenizer, views, [f"a photo of a {c}." for c in SHAPE_CLASSES]) == y
            self.clip.train()
            line += f"; close-ups {float(hit.float().mean()):.3f}"
            self.folder.mkdir(parents=True, exist_ok=True)
            save_clip(self.clip, self.folder / "clip.partial.safetensors", {"step": step})
        log(self.progress, line)


def caption_dataset(config: WorldPipelineConfig) -> WorldCaptionDataset:
    """The (image, caption) pairs of CLIP pretraining: scenes of all classes and close-ups of their objects."""
    return WorldCaptionDataset(
        config.pretrain_scenes, config.captions_per_scene, seed=config.seed,
        scene_config=dataclasses.replace(config.scene, max_objects=config.pretrain_max_objects),
        object_crop_prob=config.pretrain_object_crops, crop_scale=config.pretrain_crop_scale,
        crop_size=config.pretrain_crop_size, bare_caption_prob=config.pretrain_bare_captions)


def pretrained_clip(config: WorldPipelineConfig | None = None, cache_dir: str | Path | None = None,
                    progress: bool = True, force: bool = False) -> tuple[CLIP, WordTokenizer, dict[str, Any]]:
    """The pretrained world CLIP, its tokenizer and info {"seconds", "loaded", "accuracy", ...}.

    Loaded from `cache_dir/clip-<key>/` when there, else trained and saved there.
    """
    config = config or PRESETS[DEFAULT_PRESET]
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
        monitor = _Monitor(clip, tokenizer, config, folder, progress)
        result = pretrain_clip(clip, dataset, config.pretrain_config(), tokenizer, progress=progress,
                               callback=monitor)
        accuracy = clip_classification_accuracy(clip, tokenizer, config)
    meta = {"seconds": result.seconds, "final_loss": result.final_loss, "final_accuracy": result.final_accuracy,
            "accuracy": accuracy, "history": result.history, "machine": machine()}
    log(progress, f"[world] CLIP: loss {result.final_loss:.3f}, close-up classification all "
                   f"{accuracy['views_all']:.2f} / held-out {accuracy['views_held_out']:.2f}, colour "
                   f"{accuracy['colour']:.2f} ({result.seconds:.0f} s)")
    save_clip(clip, path, meta)
    tokenizer.save(tok_path)
    return clip, tokenizer, {**meta, "loaded": False, "path": str(path)}
