"""The whole CLIPSeg pipeline on the generated scene world, offline, on CPU.

Stages (each cached on disk under a key hashed from the settings it depends on):

1. A small CLIP (same code as ViT-B/16, smaller config) pretrained contrastively on
   captioned scenes of ALL shape classes, with the word-level world tokenizer.
2. Three decoders trained on a PhraseCut+-style set of the SEEN classes only
   (`clipseg.data.world.dataset`, negatives p=0.2, visual supports, templates, text /
   visual interpolation by the project's trainer):
   - "clipseg":        CLIPSeg decoder on the pretrained, frozen CLIP;
   - "clip-deconv":    the paper's CLIP-Deconv baseline on the same CLIP;
   - "clipseg-random": CLIPSeg decoder on a randomly initialised (not pretrained) CLIP.
3. Evaluation with the paper's metrics (49 thresholds, best t by mIoU): referring
   expressions on seen classes (text), zero-shot on held-out classes (text), one-shot
   on held-out classes (visual prompts), and negatives (prompts of absent things).

`run_pipeline()` runs (or loads) everything and returns the table; `segment_demo()`
segments a generated scene by any prompt and writes an overlay PNG.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.sample import Sample
from ..data.world import COLOUR_NAMES, SHAPE_CLASSES, SceneConfig, WorldSplit, generate_scene
from ..data.world.dataset import (
    EVAL_MODES,
    WorldCaptionDataset,
    WorldSegmentationConfig,
    WorldSegmentationDataset,
    scene_tensor,
    world_evaluation_sets,
)
from ..evaluation.metrics import FP, THRESHOLDS, TN, BinaryCounts, MetricResult
from ..model.clip import CLIP
from ..model.clipseg import CLIPSeg
from ..model.config import CLIPConfig, CLIPSegConfig, DecoderConfig, TextConfig, VisionConfig
from ..tokenizer.words import WordTokenizer
from ..training.clip_pretrain import PretrainConfig, pretrain_clip, torch_threads, zero_shot_accuracy

MODEL_NAMES: tuple[str, ...] = ("clipseg", "clip-deconv", "clipseg-random")
MODEL_LABELS: dict[str, str] = {
    "clipseg": "CLIPSeg (PC+)",
    "clip-deconv": "CLIP-Deconv (PC+)",
    "clipseg-random": "CLIPSeg, random backbone",
}
EVAL_TASKS: tuple[str, ...] = EVAL_MODES
TASK_LABELS: dict[str, str] = {
    "referring": "Referring, seen classes (text)",
    "zero_shot": "Zero-shot, held-out classes (class name)",
    "zero_shot_phrases": "Zero-shot, held-out classes (attribute phrase)",
    "zero_shot_colours": "Zero-shot, held-out colours (colour name)",
    "one_shot": "One-shot, held-out classes (visual prompt)",
}
CACHE_ENV = "CLIPSEG_WORLD_CACHE"
_CLIP_FILE, _TOKENIZER_FILE = "clip.safetensors", "tokenizer.json"


def default_cache_dir() -> Path:
    """$CLIPSEG_WORLD_CACHE, else ~/.cache/clipseg/world."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "clipseg" / "world"


# ---------------------------------------------------------------- configuration


@dataclass
class WorldPipelineConfig:
    """Every setting of the world pipeline (flat, JSON-able; hashed for the cache)."""

    seed: int = 0
    image_size: int = 64
    unseen: tuple[str, ...] = ("star", "heart", "hexagon")  # held out of segmentation training
    # colours held out of segmentation training (never drawn there, never named; CLIP knows them),
    # evaluated zero-shot by colour name; e.g. ("orange", "purple"), see docs/world.md
    unseen_colours: tuple[str, ...] = ()
    unseen_colours_drawn: bool = False  # True: objects of those colours still appear in training, unnamed
    # the small CLIP (ViT code path of ViT-B/16)
    patch_size: int = 8
    vision_width: int = 64
    vision_layers: int = 4
    vision_heads: int = 4
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    context_length: int = 24
    embed_dim: int = 64
    # contrastive pretraining
    pretrain_steps: int = 1200
    pretrain_batch: int = 128
    pretrain_lr: float = 2e-3
    pretrain_scenes: int = 8000
    captions_per_scene: int = 8
    pretrain_max_objects: int = 4
    pretrain_object_crops: float = 0.7  # share of close-up views of one object (see WorldCaptionDataset)
    pretrain_crop_scale: tuple[float, float] = (1.3, 2.6)  # close-up side / object size
    pretrain_crop_size: int | None = None  # close-ups rendered at this side (None: image_size)
    # decoders
    extract_layers: tuple[int, ...] = (1, 2, 3)
    reduce_dim: int = 64
    decoder_heads: int = 4
    decoder_mlp: int = 256
    deconv_hidden: int = 256
    # CLIPSeg training (PhraseCut+-style world set)
    train_iterations: int = 600
    train_batch: int = 64
    train_lr: float = 3e-3  # the paper's 1e-3 is for 20k iterations; this run has 600
    train_lr_min: float = 3e-4
    negative_prob: float = 0.2
    support_prob: float = 0.5
    num_workers: int = 1  # DataLoader workers generating the training samples
    # evaluation
    eval_size: int = 300  # samples per evaluation set
    # machine
    threads: int | None = 2  # torch threads for CLIP pretraining and evaluation (None: leave as is)
    train_threads: int | None = 1  # torch threads for decoder training (+ num_workers data processes)

    def __post_init__(self) -> None:
        self.unseen = tuple(self.unseen)
        self.unseen_colours = tuple(self.unseen_colours)
        self.extract_layers = tuple(self.extract_layers)
        self.pretrain_crop_scale = tuple(self.pretrain_crop_scale)
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        if max(self.extract_layers) >= self.vision_layers:
            raise ValueError(f"extract_layers {self.extract_layers} exceed the {self.vision_layers} vision layers")
        self.split  # validates the held-out classes

    @property
    def split(self) -> WorldSplit:
        return WorldSplit(unseen=self.unseen, unseen_colours=self.unseen_colours,
                          unseen_colours_drawn=self.unseen_colours_drawn)

    @property
    def scene(self) -> SceneConfig:
        return SceneConfig(image_size=self.image_size)

    def tokenizer(self) -> WordTokenizer:
        return WordTokenizer(context_length=self.context_length)

    def clip_config(self) -> CLIPConfig:
        return CLIPConfig(
            vision=VisionConfig(image_size=self.image_size, patch_size=self.patch_size, width=self.vision_width,
                                layers=self.vision_layers, heads=self.vision_heads),
            text=TextConfig(context_length=self.context_length, vocab_size=self.tokenizer().vocab_size,
                            width=self.text_width, layers=self.text_layers, heads=self.text_heads),
            embed_dim=self.embed_dim,
        )

    def clipseg_config(self, name: str) -> CLIPSegConfig:
        """The CLIPSegConfig of model `name` (one of MODEL_NAMES)."""
        if name not in MODEL_NAMES:
            raise KeyError(f"unknown world model {name!r}; known: {MODEL_NAMES}")
        if name == "clip-deconv":
            decoder = DecoderConfig(kind="deconv", reduce_dim=self.reduce_dim, extract_layers=(max(self.extract_layers),),
                                    deconv_hidden=self.deconv_hidden)
        else:
            decoder = DecoderConfig(reduce_dim=self.reduce_dim, extract_layers=self.extract_layers,
                                    heads=self.decoder_heads, mlp_dim=self.decoder_mlp)
        return CLIPSegConfig(clip=self.clip_config(), decoder=decoder, input_size=self.image_size)

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(steps=self.pretrain_steps, batch_size=self.pretrain_batch, lr=self.pretrain_lr,
                              warmup=min(50, self.pretrain_steps // 10 + 1), seed=self.seed,
                              log_every=max(1, min(50, self.pretrain_steps // 4)))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorldPipelineConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown world pipeline setting(s): {', '.join(unknown)}")
        return cls(**d)

    # -- cache keys: each stage hashes only what it depends on ---------------------------
    _CLIP_FIELDS = ("seed", "image_size", "patch_size", "vision_width", "vision_layers", "vision_heads", "text_width",
                    "text_layers", "text_heads", "context_length", "embed_dim", "pretrain_steps", "pretrain_batch",
                    "pretrain_lr", "pretrain_scenes", "captions_per_scene", "pretrain_max_objects",
                    "pretrain_object_crops", "pretrain_crop_scale", "pretrain_crop_size")
    _TRAIN_FIELDS = ("unseen", "unseen_colours", "unseen_colours_drawn", "extract_layers", "reduce_dim",
                     "decoder_heads", "decoder_mlp", "deconv_hidden", "train_iterations", "train_batch", "train_lr", "train_lr_min", "negative_prob", "support_prob")

    def clip_key(self) -> str:
        d = self.to_dict()
        return _hash({k: d[k] for k in self._CLIP_FIELDS})

    def model_key(self, name: str) -> str:
        d = self.to_dict()
        return _hash({"clip": self.clip_key(), "model": name, **{k: d[k] for k in self._TRAIN_FIELDS}})

    def results_key(self) -> str:
        return _hash({"models": [self.model_key(n) for n in MODEL_NAMES], "eval_size": self.eval_size,
                      "version": _RESULTS_VERSION})


_RESULTS_VERSION = 4


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


PRESETS: dict[str, WorldPipelineConfig] = {
    # The default run (docs/world.md table): about 10-12 minutes on 2 shared CPU cores.
    "default": WorldPipelineConfig(),
    # Seconds, for tests and smoke runs: same code, tiny numbers.
    "tiny": WorldPipelineConfig(
        vision_width=32, vision_layers=2, vision_heads=2, text_width=32, text_layers=1, text_heads=2, embed_dim=32,
        pretrain_steps=4, pretrain_batch=16, pretrain_scenes=64, captions_per_scene=1, extract_layers=(0, 1),
        reduce_dim=16, decoder_heads=2, decoder_mlp=32, deconv_hidden=32, train_iterations=4, train_batch=8,
        num_workers=0, eval_size=8,
    ),
}


def world_config(preset: str = "default", **overrides) -> WorldPipelineConfig:
    """A copy of a preset with fields replaced."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[preset], **overrides)


def world_tokenizer(config: WorldPipelineConfig | None = None) -> WordTokenizer:
    return (config or PRESETS["default"]).tokenizer()


# ---------------------------------------------------------------- results


@dataclass
class PipelineResult:
    """What `run_pipeline` returns (and caches as results-<key>.json)."""

    config: dict[str, Any]
    rows: list[dict[str, Any]]  # per model: {"model", "label", "referring": {...}, "zero_shot": ..., ...}
    clip_accuracy: dict[str, float]  # zero-shot classification of single objects by the pretrained CLIP
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage in this call
    loaded: dict[str, bool] = field(default_factory=dict)  # stage -> taken from the cache
    seconds: float = 0.0  # wall time of this call
    compute_seconds: float = 0.0  # wall time of the stages when they were computed (summed over runs)
    cache_dir: str = ""

    @property
    def table(self) -> str:
        return format_table(self.rows, self.clip_accuracy)

    def row(self, model: str) -> dict[str, Any]:
        return next(r for r in self.rows if r["model"] == model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


# ---------------------------------------------------------------- helpers


class _Timer:
    """Seconds per named stage: `with timer("clip"): ...` adds the block's wall time."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def _log(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def save_clip(model: CLIP, path: Path, meta: dict[str, Any] | None = None) -> Path:
    """A CLIP as safetensors with its config (and `meta`) in the metadata."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "clipseg-clip", "clip_config": json.dumps(dataclasses.asdict(model.config)),
                "meta": json.dumps(meta or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def load_clip(path: Path) -> tuple[CLIP, dict[str, Any]]:
    """Inverse of `save_clip`: the model (eval mode) and the saved `meta`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    c = json.loads(metadata["clip_config"])
    config = CLIPConfig(vision=VisionConfig(**c["vision"]), text=TextConfig(**c["text"]), embed_dim=c["embed_dim"])
    model = CLIP(config)
    model.load_state_dict(load_file(str(path)))
    return model.eval(), json.loads(metadata.get("meta", "{}"))


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


# ---------------------------------------------------------------- stage 1: CLIP


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
    path, tok_path = folder / _CLIP_FILE, folder / _TOKENIZER_FILE
    if path.exists() and tok_path.exists() and not force:
        clip, meta = load_clip(path)
        return clip, WordTokenizer.load(tok_path), {**meta, "loaded": True, "path": str(path)}
    tokenizer = config.tokenizer()
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        clip = CLIP(config.clip_config())
        dataset = caption_dataset(config)
        _log(progress, f"[world] pretraining CLIP ({config.pretrain_steps} steps of {config.pretrain_batch})")
        result = pretrain_clip(clip, dataset, config.pretrain_config(), tokenizer, progress=progress)
        accuracy = clip_classification_accuracy(clip, tokenizer, config)
    meta = {"seconds": result.seconds, "final_loss": result.final_loss, "final_accuracy": result.final_accuracy,
            "accuracy": accuracy, "history": result.history}
    _log(progress, f"[world] CLIP: loss {result.final_loss:.3f}, single-object classification "
                   f"seen {accuracy['seen']:.2f} / held-out {accuracy['unseen']:.2f} ({result.seconds:.0f} s)")
    save_clip(clip, path, meta)
    tokenizer.save(tok_path)
    return clip, tokenizer, {**meta, "loaded": False, "path": str(path)}


# ---------------------------------------------------------------- stage 2: decoders


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
        return load_clipseg(path), {**json.loads(info_path.read_text()), "loaded": True, "path": str(path)}
    with torch_threads(config.train_threads):
        model = build_world_model(name, config, clip)
        train_config = TrainConfig(
            iterations=config.train_iterations, batch_size=config.train_batch, lr=config.train_lr,
            lr_min=config.train_lr_min, amp="off", checkpoint_every=max(1, config.train_iterations // 4),
            log_every=max(1, config.train_iterations // 20), out_dir=str(cache / "runs" / f"{name}-{key}"),
            seed=config.seed, num_workers=config.num_workers, device="cpu", export="none")
        _log(progress, f"[world] training {MODEL_LABELS[name]} ({config.train_iterations} iterations "
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
    config = config or PRESETS["default"]
    info: dict[str, dict] = {}
    # Every model needs the tokenizer, which is saved with the CLIP (and the random-backbone
    # model's key depends on the CLIP's key), so the CLIP stage always runs or loads.
    clip, tokenizer, info["clip"] = pretrained_clip(config, cache_dir, progress, force)
    models = {}
    for name in names:
        models[name], info[name] = trained_model(name, config, clip, tokenizer, cache_dir, progress, force)
    return models, tokenizer, info


# ---------------------------------------------------------------- stage 3: evaluation


class _ListDataset(Dataset):
    def __init__(self, items: list[Sample]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        return self.items[i]


def evaluation_sets(config: WorldPipelineConfig) -> dict[str, Dataset]:
    """The four evaluation sets, generated once (fixed seeds) and held in memory."""
    sets = world_evaluation_sets(config.eval_size, seed=config.seed, scene=config.scene, split=config.split)
    return {task: _ListDataset([ds[i] for i in range(len(ds))]) for task, ds in sets.items()}


def _metrics(r: MetricResult) -> dict[str, float]:
    return {"t": r.threshold, "miou": r.miou, "iou_fg": r.iou_fg, "iou_bin": r.iou_bin, "ap": r.ap}


def negative_scores(counts: BinaryCounts, threshold: float, max_fraction: float = 0.01) -> dict[str, float]:
    """On a set of negatives (empty targets): the share of pixels predicted foreground at
    `threshold` and the share of samples "rejected" (under `max_fraction` of their pixels)."""
    i = int(np.argmin(np.abs(THRESHOLDS - threshold)))
    c = counts.counts.numpy()
    fp_rate = float(c[FP, i] / max(1, c[FP, i] + c[TN, i]))
    per = [k.numpy() for k in counts.key_counts.values()]
    rejected = float(np.mean([p[FP, i] / max(1, p[FP, i] + p[TN, i]) < max_fraction for p in per])) if per else math.nan
    return {"t": float(THRESHOLDS[i]), "fp_rate": fp_rate, "rejected": rejected}


def evaluate_world_model(model: CLIPSeg, tokenizer: WordTokenizer, sets: dict[str, Dataset],
                         batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Scores of one model on the evaluation sets (best threshold by mIoU per task; negatives
    at the model's best referring threshold)."""
    from ..evaluation.predict import accumulate

    out: dict[str, dict[str, float]] = {}
    for task in (t for t in TASK_LABELS if t in sets):
        prompt = "visual" if task == "one_shot" else "text"
        counts = accumulate(model, tokenizer, sets[task], prompt, batch_size).groups["all"]
        out[task] = _metrics(counts.result(select="miou"))
    counts = accumulate(model, tokenizer, sets["negative"], "text", batch_size).groups["all"]
    out["negative"] = negative_scores(counts, out["referring"]["t"])
    return out


def format_table(rows: list[dict[str, Any]], clip_accuracy: dict[str, float] | None = None) -> str:
    """The paper-style table of the world pipeline (scores in percent)."""
    from ..evaluation.tables import grid, pct

    header = ["Task", "Model", "t", "mIoU", "IoU_FG", "IoU_BIN", "AP"]
    body = []
    for task, label in ((t, label) for t, label in TASK_LABELS.items() if rows and t in rows[0]):
        for k, r in enumerate(rows):
            m = r[task]
            body.append([label if k == 0 else "", r["label"], f"{m['t']:.2f}", pct(m["miou"]), pct(m["iou_fg"]),
                         pct(m["iou_bin"]), pct(m["ap"])])
    for k, r in enumerate(rows):
        n = r["negative"]
        body.append(["Negatives (absent things)" if k == 0 else "", r["label"], f"{n['t']:.2f}",
                     f"FP px {pct(n['fp_rate'])}", f"rejected {pct(n['rejected'])}", "", ""])
    note = ("t = best of the 49 thresholds by mIoU; mIoU over samples (referring) or over classes (the others); "
            "IoU_FG, IoU_BIN, AP (Simpson's rule over the 49 thresholds) from the summed pixel counts.\n"
            "Negatives: prompts of things absent from the scene, at the model's referring t: share of pixels "
            "predicted foreground (lower is better), share of samples with < 1 % foreground (higher is better).")
    if clip_accuracy:
        note += (f"\nPretrained CLIP, zero-shot classification among the {len(SHAPE_CLASSES)} classes "
                 f"(chance {pct(clip_accuracy['chance'])} %): single-object scenes seen {pct(clip_accuracy['seen'])} %, "
                 f"held-out {pct(clip_accuracy['unseen'])} %; close-ups of the same objects seen "
                 f"{pct(clip_accuracy.get('seen_views'))} %, held-out {pct(clip_accuracy.get('unseen_views'))} %"
                 + (f"; colours of the single-object scenes among {len(COLOUR_NAMES)} "
                    f"{pct(clip_accuracy['colour'])} %." if "colour" in clip_accuracy else "."))
    return grid("CLIPSeg on the generated world (scores in %)", header, body, note)


# ---------------------------------------------------------------- the pipeline


def run_pipeline(config: WorldPipelineConfig | None = None, progress: bool = True,
                 cache_dir: str | Path | None = None, force: bool = False) -> PipelineResult:
    """Pretrain, train the three models, evaluate, and return the table (every stage cached).

    force=True recomputes every stage (and overwrites the cache).
    """
    config = config or PRESETS["default"]
    cache = Path(cache_dir or default_cache_dir())
    start = time.perf_counter()
    results_path = cache / f"results-{config.results_key()}.json"
    if results_path.exists() and not force:
        d = json.loads(results_path.read_text())
        d.update(timings={}, loaded={k: True for k in ("clip", *MODEL_NAMES, "evaluation")},
                 seconds=time.perf_counter() - start, cache_dir=str(cache))
        return PipelineResult(**d)
    timer = _Timer()
    with timer("clip"):
        clip, tokenizer, clip_info = pretrained_clip(config, cache, progress, force)
    models, infos = {}, {"clip": clip_info}
    for name in MODEL_NAMES:
        with timer(name):
            models[name], infos[name] = trained_model(name, config, clip, tokenizer, cache, progress, force)
    with timer("evaluation"), torch_threads(config.threads):
        _log(progress, f"[world] evaluating ({config.eval_size} samples per task)")
        sets = evaluation_sets(config)
        rows = [{"model": n, "label": MODEL_LABELS[n], **evaluate_world_model(models[n], tokenizer, sets)}
                for n in MODEL_NAMES]
        clip_accuracy = clip_classification_accuracy(clip, tokenizer, config)
    eval_seconds = timer.timings["evaluation"]
    compute = sum(i.get("seconds", 0.0) for i in infos.values()) + eval_seconds
    result = PipelineResult(
        config=config.to_dict(), rows=rows, clip_accuracy=clip_accuracy, timings=timer.timings,
        loaded={k: bool(v.get("loaded")) for k, v in infos.items()} | {"evaluation": False},
        seconds=time.perf_counter() - start, compute_seconds=compute, cache_dir=str(cache))
    results_path.parent.mkdir(parents=True, exist_ok=True)
    saved = result.to_dict()
    for k in ("timings", "loaded", "seconds", "cache_dir"):
        saved.pop(k)
    results_path.write_text(json.dumps(saved, indent=1) + "\n")
    return result


# ---------------------------------------------------------------- demo


def _overlay(image: np.ndarray, probs: np.ndarray, threshold: float, scale: int) -> np.ndarray:
    """[scene | heat overlay | mask outline] side by side, upscaled (nearest) by `scale`."""
    from ..data.world.sheet import mask_outline

    img = image.astype(np.float32)
    heat = np.zeros_like(img)
    heat[..., 0] = 255.0
    alpha = 0.65 * probs[..., None]
    blended = img * (1 - alpha) + heat * alpha
    mask = probs > threshold
    cut = img * 0.35
    cut[mask] = img[mask]
    panels = [img, blended, cut]
    up = [np.repeat(np.repeat(p, scale, 0), scale, 1) for p in panels]
    outline = mask_outline(np.repeat(np.repeat(mask, scale, 0), scale, 1))
    up[2][outline] = (255, 255, 255)
    gap = np.full((up[0].shape[0], 4, 3), 255, np.float32)
    return np.clip(np.concatenate([up[0], gap, up[1], gap, up[2]], axis=1), 0, 255).astype(np.uint8)


def segment_demo(prompt: str, out_png: str | Path, scene_seed: int = 0, config: WorldPipelineConfig | None = None,
                 cache_dir: str | Path | None = None, progress: bool = True, model: str = "clipseg",
                 threshold: float = 0.5, image: Any = None, scale: int = 4,
                 on_log: Callable[[str], None] | None = None) -> DemoResult:
    """Segment a generated scene (or `image`) by a text prompt with a world model; write an overlay PNG.

    Trains and caches what is missing first (the CLIP and `model`; minutes on the first
    call, a second on later ones). The PNG shows the scene, the probability as a red
    overlay, and the part above `threshold` with its outline.
    """
    from PIL import Image

    from ..inference import Predictor

    config = config or PRESETS["default"]
    models, tokenizer, _ = load_world_models(config, (model,), cache_dir, progress)
    objects: list[str] = []
    if image is None:
        scene = generate_scene(scene_seed, config.scene)
        pixels = scene.image
        objects = [f"{o.size} {o.texture} {o.colour} {o.shape}" for o in scene.objects]
    else:
        from ..data.image_io import load_image

        pixels = np.asarray(load_image(image).convert("RGB").resize((config.image_size, config.image_size)))
        scene_seed = None
    with torch_threads(config.threads):
        predictor = Predictor(models[model], tokenizer, truncate_prompts=True)
        predictor.set_image(pixels)
        probs = predictor.predict([prompt])[0]
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_overlay(pixels, probs, threshold, scale)).save(out_png)
    return DemoResult(out_png, prompt, scene_seed, probs, threshold, tokenizer.unknown_words(prompt), objects,
                      float((probs > threshold).mean()))
