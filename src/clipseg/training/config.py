"""Training settings (paper appendix "Experimental Setup", SPEC "Training") and experiment files.

An experiment file (configs/*.json) holds three sections:

    {"name": ..., "description": ..., "notes": ...,
     "model": {"variant": "rd64-uni", "decoder": {...DecoderConfig overrides}, "backbone": "clip"},
     "data":  {"dataset": "phrasecut+", "split": "train", "options": {...reader config}},
     "train": {...TrainConfig fields}}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.machine import available_cpus
from ..io.records import check_fields, check_types

AMP_MODES = ("auto", "off", "bf16", "fp16")
EXPORT_MODES = ("decoder", "full", "none")
BACKBONES = ("clip", "clip-text", "random")


def _from_dict(cls, d: dict[str, Any], where: str):
    """Build dataclass `cls` from d, naming unknown keys and values of the wrong type in the error."""
    check_fields(cls, d, where)
    check_types(cls, d, where)
    return cls(**d)


@dataclass
class TrainConfig:
    """How to train a CLIPSeg decoder. Defaults: the paper's PhraseCut runs."""

    iterations: int = 20_000
    batch_size: int = 64  # GLOBAL batch: split evenly across distributed ranks
    lr: float = 1e-3  # cosine-decayed per iteration to lr_min, no warm-up
    lr_min: float = 1e-4
    weight_decay: float = 0.01  # AdamW's default (the references do not set it)
    amp: str = "auto"  # auto: bf16 (else fp16) autocast on CUDA, off on CPU; or off / bf16 / fp16
    max_text_weight: float = 0.5  # with a visual support: cond = w*text + (1-w)*visual, w ~ U(0, this)
    checkpoint_every: int = 1000  # iterations between checkpoints (one is always written at the end)
    log_every: int = 50  # iterations between CSV log rows
    out_dir: str = "runs/clipseg"
    seed: int = 0
    num_workers: int | None = None  # DataLoader workers per rank; None: 4, at most the CPUs available
    device: str = "auto"  # auto: cuda:LOCAL_RANK if available, else cpu
    text_cache_size: int = 50_000  # text embeddings kept, by phrase string (LRU)
    export: str = "decoder"  # weights written at the end: decoder (+backbone needed to load), full, none

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be positive")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, not {self.amp!r}")
        if self.export not in EXPORT_MODES:
            raise ValueError(f"export must be one of {EXPORT_MODES}, not {self.export!r}")
        if not 0.0 <= self.max_text_weight <= 1.0:
            raise ValueError("max_text_weight must lie in [0, 1]")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("checkpoint_every and log_every must be positive")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError("num_workers must be 0 or more")

    @property
    def workers(self) -> int:
        """num_workers, or its default: 4, at most the CPUs this process may use."""
        return min(4, available_cpus()) if self.num_workers is None else self.num_workers

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, d, "train config")


@dataclass
class ModelSpec:
    """Which model to train: a named variant plus DecoderConfig overrides.

    backbone: where the frozen towers come from. "clip": CLIP weights, given on the command
    line (OpenAI ViT-B-16.pt, open_clip, HF CLIPModel); "clip-text": the paper's ViTSeg
    baseline - CLIP's text tower and, as the visual tower, the ImageNet ViT named by
    `visual` (timm vit_base_patch16_224 weights or an HF ViTModel folder such as
    google/vit-base-patch16-224; `--visual-backbone` overrides it); without one the visual
    tower stays randomly initialised, with a warning; "random": no weights at all (tests).
    """

    variant: str = "rd64-uni"
    decoder: dict[str, Any] = field(default_factory=dict)
    backbone: str = "clip"
    visual: str | None = None

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"model.backbone must be one of {BACKBONES}, not {self.backbone!r}")


@dataclass
class DataSpec:
    """Which training data: a reader name known to `clipseg.training.data`, its split and options."""

    dataset: str = "phrasecut"
    split: str | None = "train"  # None: every row of an own-data list
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Experiment:
    """One training run as written in configs/*.json."""

    name: str
    description: str = ""
    notes: str = ""  # caveats for readers of the file
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: str | None = None  # the weights fine-tuned (`train --init`); the model section is then not used
    trained: dict[str, Any] = field(default_factory=dict)  # the model actually trained: source, backbone, config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Experiment":
        d = dict(d)
        sections = {
            "model": _from_dict(ModelSpec, d.pop("model", {}), "model section"),
            "data": _from_dict(DataSpec, d.pop("data", {}), "data section"),
            "train": TrainConfig.from_dict(d.pop("train", {})),
        }
        return _from_dict(cls, {**d, **sections}, "experiment")

    @classmethod
    def load(cls, path: str | Path) -> "Experiment":
        """An experiment file, or the name of one shipped with the package (`clipseg-pc-plus`)."""
        path = resolve_config(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise ValueError(f"experiment file '{path}' is not valid JSON: {e}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def shipped_configs() -> dict[str, Path]:
    """The experiment files that come with the package, by name (file name without .json)."""
    folder = Path(__file__).resolve().parents[1] / "configs"
    return {f.stem: f for f in sorted(folder.glob("*.json"))}


def resolve_config(spec: str | Path) -> Path:
    """A path as given when it exists, else a shipped experiment of that name (with or without .json)."""
    path = Path(spec)
    if path.exists():
        return path
    shipped = shipped_configs()
    name = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    if len(path.parts) <= 2 and name in shipped:  # `name`, `name.json` or `configs/name.json`
        return shipped[name]
    raise ValueError(f"experiment file '{spec}' does not exist, and it is not a shipped experiment "
                     f"({', '.join(shipped)})")
