"""Settings of the world pipeline: one flat dataclass, its presets, and the cache keys.

Each field that a stage depends on is marked with it (`CLIP_STAGE`, `DECODER_STAGE`), and a
stage's cache key hashes exactly the marked fields: a new setting cannot be forgotten in a
hand-kept list. Fields of the decoders' architecture (`ARCHITECTURE`) reach each model's key
through the DecoderConfig that model is built from, so a CLIPSeg-only setting (FiLM's step,
the heads) does not re-train CLIP-Deconv. Settings of evaluation and of the machine (threads,
workers) mark nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.records import check_fields
from ..worldgen import WORLD_WORDS, SceneConfig, WorldSplit, fold_split
from ..worldgen.dataset import EVAL_MODES
from ..tokenizer.word import WordTokenizer
from ..model.config import CLIPConfig, CLIPSegConfig, DecoderConfig, TextConfig, VisionConfig
from ..training.clip_pretrain import PretrainConfig

CACHE_ENV = "CLIPSEG_WORLD_CACHE"


def default_cache_dir() -> Path:
    """$CLIPSEG_WORLD_CACHE, else ~/.cache/clipseg/world."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "clipseg" / "world"


def _staged(stage: str, default):
    return dataclasses.field(default=default, metadata={"stages": (stage,)})


def CLIP_STAGE(default):  # noqa: N802 - reads as a marker on the field
    """A field the pretrained CLIP (and so every later stage) depends on."""
    return _staged("clip", default)


def DECODER_STAGE(default):  # noqa: N802
    """A field the decoders' training depends on (their key also holds the CLIP's key)."""
    return _staged("decoders", default)


def ARCHITECTURE(default):  # noqa: N802
    """A field of the decoders' architecture: it reaches a model's key through that model's
    DecoderConfig (`clipseg_config`), so it re-trains only the models it changes."""
    return _staged("architecture", default)


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
    "zero_shot_generalized": "Zero-shot, held-out classes (generalized prompt)",
    "zero_shot_colours": "Zero-shot, held-out colours (colour name)",
    "one_shot": "One-shot, held-out classes (visual prompt)",
}


@dataclass
class WorldPipelineConfig:
    """Every setting of the world pipeline (flat, JSON-able; hashed for the cache)."""

    seed: int = CLIP_STAGE(0)
    image_size: int = CLIP_STAGE(128)  # side of the generated scenes (and of CLIPSeg's input)
    # held out of segmentation training: fold `fold` of the four folds of 11 classes
    # (data.world.fold_split), or the classes of `unseen` when it is not empty
    fold: int = DECODER_STAGE(0)
    unseen: tuple[str, ...] = DECODER_STAGE(())
    # colours held out of segmentation training (never drawn there, never named; CLIP knows them),
    # evaluated zero-shot by colour name; e.g. ("orange", "purple"), see docs/world.md
    unseen_colours: tuple[str, ...] = DECODER_STAGE(())
    unseen_colours_drawn: bool = DECODER_STAGE(False)  # True: objects of those colours still appear in training, unnamed
    # the small CLIP (ViT code path of ViT-B/16): 16 px patches like ViT-B/16, pretrained on
    # close-ups at `clip_image_size` (a 4 x 4 grid) and on whole scenes (8 x 8)
    clip_image_size: int = CLIP_STAGE(64)
    patch_size: int = CLIP_STAGE(16)
    vision_width: int = CLIP_STAGE(128)
    vision_layers: int = CLIP_STAGE(6)
    vision_heads: int = CLIP_STAGE(4)
    text_width: int = CLIP_STAGE(128)
    text_layers: int = CLIP_STAGE(3)
    text_heads: int = CLIP_STAGE(4)
    context_length: int = CLIP_STAGE(24)
    embed_dim: int = CLIP_STAGE(128)
    # contrastive pretraining
    pretrain_steps: int = CLIP_STAGE(15000)
    pretrain_batch: int = CLIP_STAGE(128)
    pretrain_lr: float = CLIP_STAGE(1e-3)
    pretrain_warmup: int = CLIP_STAGE(200)
    pretrain_precision: str = CLIP_STAGE("bf16")  # autocast of the towers (PretrainConfig.amp)
    pretrain_scenes: int = CLIP_STAGE(40000)
    captions_per_scene: int = CLIP_STAGE(6)
    pretrain_max_objects: int = CLIP_STAGE(4)
    pretrain_object_crops: float = CLIP_STAGE(0.85)  # share of close-up views of one object (see WorldCaptionDataset)
    pretrain_crop_scale: tuple[float, float] = CLIP_STAGE((1.3, 2.0))  # close-up side / object size
    pretrain_crop_size: int | None = CLIP_STAGE(64)  # close-ups rendered at this side (None: image_size)
    pretrain_bare_captions: float = CLIP_STAGE(0.5)  # share of close-up captions naming the class only
    pretrain_workers: int = 1  # DataLoader workers generating the captioned images
    pretrain_eval_every: int = 500  # steps between progress checks (close-up accuracy, a weight snapshot)
    # decoders
    extract_layers: tuple[int, ...] = ARCHITECTURE((1, 3, 5))
    reduce_dim: int = ARCHITECTURE(64)
    decoder_heads: int = ARCHITECTURE(4)
    decoder_mlp: int = ARCHITECTURE(256)
    decoder_cond_layer: int = ARCHITECTURE(2)  # the decoder step FiLM conditions (DecoderConfig.cond_layer); docs/world.md
    decoder_refined: bool = ARCHITECTURE(True)  # rd64-uni-refined's upsampling (3x3 conv, two 4x4 deconvs)
    deconv_hidden: int = ARCHITECTURE(256)
    # CLIPSeg training (PhraseCut+-style world set)
    train_iterations: int = DECODER_STAGE(1000)
    train_batch: int = DECODER_STAGE(32)
    train_lr: float = DECODER_STAGE(3e-3)  # the paper's 1e-3 is for 20k iterations; this run has fewer
    train_lr_min: float = DECODER_STAGE(3e-4)
    negative_prob: float = DECODER_STAGE(0.2)
    support_prob: float = DECODER_STAGE(0.5)
    num_workers: int = 1  # DataLoader workers generating the training samples
    # evaluation
    eval_size: int = 1000  # samples per evaluation set
    eval_folds: tuple[int, ...] = (0, 1)  # folds `run_pipeline` trains and evaluates (the first is shipped)
    bootstrap: int = 1000  # bootstrap resamples of the confidence intervals
    # machine
    threads: int | None = 2  # torch threads for CLIP pretraining and evaluation (None: leave as is)
    train_threads: int | None = 1  # torch threads for decoder training (+ num_workers data processes)

    def __post_init__(self) -> None:
        self.unseen = tuple(self.unseen)
        self.eval_folds = tuple(self.eval_folds)
        self.unseen_colours = tuple(self.unseen_colours)
        self.extract_layers = tuple(self.extract_layers)
        self.pretrain_crop_scale = tuple(self.pretrain_crop_scale)
        for side in (self.image_size, self.clip_image_size, self.pretrain_crop_size or self.image_size):
            if side % self.patch_size:
                raise ValueError(f"image sizes must be multiples of patch_size {self.patch_size}, got {side}")
        if max(self.extract_layers) >= self.vision_layers:
            raise ValueError(f"extract_layers {self.extract_layers} exceed the {self.vision_layers} vision layers")
        self.split  # validates the held-out classes
        for name in MODEL_NAMES:
            self.clipseg_config(name)  # validates the architecture (e.g. FiLM's step among the decoder's)

    @property
    def split(self) -> WorldSplit:
        unseen = self.unseen or fold_split(self.fold).unseen
        return WorldSplit(unseen=unseen, unseen_colours=self.unseen_colours,
                          unseen_colours_drawn=self.unseen_colours_drawn)

    def for_fold(self, fold: int) -> "WorldPipelineConfig":
        """This config with fold `fold` held out (and no explicit `unseen`)."""
        return dataclasses.replace(self, fold=fold, unseen=())

    @property
    def scene(self) -> SceneConfig:
        return SceneConfig(image_size=self.image_size)

    def tokenizer(self) -> WordTokenizer:
        return WordTokenizer(WORLD_WORDS, context_length=self.context_length)

    def clip_config(self) -> CLIPConfig:
        return CLIPConfig(
            vision=VisionConfig(image_size=self.clip_image_size, patch_size=self.patch_size, width=self.vision_width,
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
                                    heads=self.decoder_heads, mlp_dim=self.decoder_mlp,
                                    cond_layer=self.decoder_cond_layer, refined=self.decoder_refined)
        return CLIPSegConfig(clip=self.clip_config(), decoder=decoder, input_size=self.image_size)

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(steps=self.pretrain_steps, batch_size=self.pretrain_batch, lr=self.pretrain_lr,
                              warmup=min(self.pretrain_warmup, self.pretrain_steps // 10 + 1), seed=self.seed,
                              num_workers=self.pretrain_workers, amp=self.pretrain_precision,
                              log_every=max(1, min(50, self.pretrain_steps // 4)))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorldPipelineConfig":
        check_fields(cls, d, "world pipeline settings")
        return cls(**d)

    # -- cache keys: each stage hashes the fields marked with it (`stage` metadata) ----------
    def stage_fields(self, stage: str) -> dict[str, Any]:
        """The settings a stage depends on ("clip", "decoders"), as marked on the fields."""
        d = self.to_dict()
        return {f.name: d[f.name] for f in dataclasses.fields(self) if stage in f.metadata.get("stages", ())}

    def clip_key(self) -> str:
        return _hash(self.stage_fields("clip"))

    def model_key(self, name: str) -> str:
        decoder = dataclasses.asdict(self.clipseg_config(name).decoder)  # the ARCHITECTURE fields, as this model has them
        return _hash({"clip": self.clip_key(), "model": name, "decoder": decoder, **self.stage_fields("decoders")})

    def results_key(self) -> str:
        return _hash({"models": [self.for_fold(f).model_key(n) for f in self.eval_folds for n in MODEL_NAMES],
                      "eval_size": self.eval_size, "bootstrap": self.bootstrap, "version": _RESULTS_VERSION})


_RESULTS_VERSION = 6


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


PRESETS: dict[str, WorldPipelineConfig] = {
    # The shipped models (clipseg/assets/world, docs/world.md): about 2.5 hours on 2 CPU cores.
    "full": WorldPipelineConfig(),
    # Seconds, for tests and smoke runs: same code, tiny numbers.
    "tiny": WorldPipelineConfig(
        image_size=64, clip_image_size=32, pretrain_crop_size=32, vision_width=32, vision_layers=2, vision_heads=2,
        text_width=32, text_layers=1, text_heads=2, embed_dim=32, pretrain_steps=4, pretrain_batch=16,
        pretrain_scenes=64, captions_per_scene=1, pretrain_workers=0, extract_layers=(0, 1), reduce_dim=16,
        decoder_heads=2, decoder_mlp=32, decoder_cond_layer=1, deconv_hidden=32, train_iterations=4, train_batch=8, num_workers=0,
        eval_size=8, eval_folds=(0,), bootstrap=20,
    ),
}
DEFAULT_PRESET = "full"


def world_config(preset: str = DEFAULT_PRESET, **overrides) -> WorldPipelineConfig:
    """A copy of a preset with fields replaced."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[preset], **overrides)


def world_tokenizer(config: WorldPipelineConfig | None = None) -> WordTokenizer:
    return (config or PRESETS[DEFAULT_PRESET]).tokenizer()

