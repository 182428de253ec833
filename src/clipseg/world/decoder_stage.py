"""Stage 2 of the world pipeline: CLIPSeg, CLIP-Deconv and CLIPSeg on a random backbone,
trained on a PhraseCut+-style set of the seen classes by the project's trainer (cached)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..worldgen.dataset import WorldSegmentationConfig, WorldSegmentationDataset
from ..tokenizer.word import WordTokenizer
from ..model.clip import CLIP
from ..model.clipseg import CLIPSeg
from ..training.clip_pretrain import torch_threads
from .clip_stage import pretrained_clip
from .config import MODEL_LABELS, MODEL_NAMES, DEFAULT_PRESET, PRESETS, WorldPipelineConfig, default_cache_dir
from .runlog import log


def training_set(config: WorldPipelineConfig) -> WorldSegmentationDataset:
    """The PhraseCut+-style world training set (one fresh sample per index)."""
    return WorldSegmentationDataset(WorldSegmentationConfig(
        mode="train", size=config.train_iterations * config.train_batch, seed=config.seed, scene=config.scene,
        split=config.split, negative_prob=config.negative_prob, support_prob=config.support_prob))


def build_world_model(name: str, config: WorldPipelineConfig, clip: CLIP | None) -> CLIPSeg:
    """An untrained CLIPSeg of `name`; its backbone is `clip` (copied) or random ("clipseg-random")."""
    torch.manual_seed(config.seed + 1 + MODEL_NAMES.index(name))
    model = CLIPSeg(config.clipseg_config(name))
    if name != "clipseg-random":
        if clip is None:
            raise ValueError(f"model {name!r} needs the pretrained CLIP")
        model.clip.load_state_dict(clip.state_dict())
    return model


def trained_model(name: str, config: WorldPipelineConfig, clip: CLIP | None, tokenizer: WordTokenizer,
                  cache_dir: str | Path | None = None, progress: bool = True,
                  force: bool = False) -> tuple[CLIPSeg, dict[str, Any]]:
    """World model `name` trained on the seen classes (cached as <name>-<key>.safetensors)."""
    from ..training import TrainConfig, train
    from ..weights import load_clipseg, save_clipseg

    cache = Path(cache_dir or default_cache_dir())
    key = config.model_key(name)
    path = cache / f"{name}-{key}.safetensors"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists() and not force:
        model = load_clipseg(path)
        model.identity.tokenizer = tokenizer  # cached files written before the tokenizer travelled with them
        return model, {**json.loads(info_path.read_text()), "loaded": True, "path": str(path)}
    with torch_threads(config.train_threads):
        model = build_world_model(name, config, clip)
        model.identity.tokenizer = tokenizer  # saved with the model
        train_config = TrainConfig(
            iterations=config.train_iterations, batch_size=config.train_batch, lr=config.train_lr,
            lr_min=config.train_lr_min, amp="off", checkpoint_every=max(1, config.train_iterations // 4),
            log_every=max(1, config.train_iterations // 20), out_dir=str(cache / "runs" / f"{name}-{key}"),
            seed=config.seed, num_workers=config.num_workers, device="cpu", export="none")
        log(progress, f"[world] training {MODEL_LABELS[name]} ({config.train_iterations} iterations "
                       f"of {config.train_batch})")
        result = train(model, training_set(config), train_config, tokenizer, progress=progress, resume=not force)
    losses = result.losses
    k = max(1, len(losses) // 10)
    info = {"seconds": result.seconds, "iterations": result.iteration,
            "first_loss": float(np.mean(losses[:k])) if losses else math.nan,
            "final_loss": float(np.mean(losses[-k:])) if losses else math.nan}
    save_clipseg(model.eval(), path)
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(train_config.out_dir, ignore_errors=True)  # the resumable checkpoint is no longer needed
    return model.eval(), {**info, "loaded": False, "path": str(path)}


def load_world_models(config: WorldPipelineConfig | None = None, names: tuple[str, ...] = MODEL_NAMES,
                      cache_dir: str | Path | None = None, progress: bool = True,
                      force: bool = False) -> tuple[dict[str, CLIPSeg], WordTokenizer, dict[str, dict]]:
    """The trained world models `names` (trained first where not cached), the tokenizer, and per-stage info."""
    config = config or PRESETS[DEFAULT_PRESET]
    info: dict[str, dict] = {}
    # Every model needs the tokenizer, which is saved with the CLIP (and the random-backbone
    # model's key depends on the CLIP's key), so the CLIP stage always runs or loads.
    clip, tokenizer, info["clip"] = pretrained_clip(config, cache_dir, progress, force)
    models = {}
    for name in names:
        models[name], info[name] = trained_model(name, config, clip, tokenizer, cache_dir, progress, force)
    return models, tokenizer, info
