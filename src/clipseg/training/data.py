"""Data sets by name, for the command lines (training and evaluation).

    build_dataset("phrasecut+", root, "train", {"negative_prob": 0.2}, image_size=352)

`options` are fields of the reader's config dataclass (lists become tuples, a nested
"visual_prompt" dict a VisualPromptConfig); the one-shot readers also take "fold" and
"world" takes the fields of WorldSegmentationConfig ("mode" defaults to the split).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from .. import datasets as ds
from ..worldgen.dataset import WorldSegmentationConfig, WorldSegmentationDataset
from ..worldgen.scenes import SceneConfig
from ..prompts.visual import VisualPromptConfig
from ..io.records import check_fields

Builder = Callable[[str, str, dict[str, Any], int], Dataset]


def json_tuples(options: dict[str, Any]) -> dict[str, Any]:
    """JSON lists -> tuples (the config dataclasses are frozen and hold tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def reader_config(cls, options: dict[str, Any], image_size: int):
    """Instantiate a reader config dataclass from JSON-style options."""
    check_fields(cls, options, f"options of {cls.__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    values = json_tuples(options)
    if isinstance(values.get("visual_prompt"), dict):
        values["visual_prompt"] = VisualPromptConfig(**{"size": image_size, **values["visual_prompt"]})
    elif "visual_prompt" in names and "visual_prompt" not in values:
        values["visual_prompt"] = VisualPromptConfig(size=image_size)
    if "image_size" in names:
        values.setdefault("image_size", image_size)
    return cls(**values)


def _one_shot(cls) -> Builder:
    def build(root: str, split: str, options: dict[str, Any], image_size: int) -> Dataset:
        options = dict(options)
        fold = options.pop("fold", 0)
        return cls(root, split, fold, reader_config(ds.OneShotConfig, options, image_size))

    return build


def _simple(cls, config_cls) -> Builder:
    def build(root: str, split: str, options: dict[str, Any], image_size: int) -> Dataset:
        return cls(root, split, reader_config(config_cls, options, image_size))

    return build


def _world(root: str, split: str, options: dict[str, Any], image_size: int) -> Dataset:
    """The generated scene world (no files: `root` is ignored); split = mode unless given,
    a nested "scene" dict = SceneConfig fields. `image_size` is not applied: the scenes
    have the size of options.scene.image_size (64 by default, the tiny model's input)."""
    values = {"mode": split, **json_tuples(options)}
    if isinstance(values.get("scene"), dict):
        values["scene"] = SceneConfig(**values["scene"])
    return WorldSegmentationDataset(WorldSegmentationConfig(**values))


DATASETS: dict[str, Builder] = {
    "phrasecut": _simple(ds.PhraseCut, ds.PhraseCutConfig),
    "phrasecut+": _simple(ds.PhraseCutPlus, ds.PhraseCutPlusConfig),
    "pascal5i": _one_shot(ds.Pascal5i),
    "coco20i": _one_shot(ds.Coco20i),
    "pascal-zeroshot": _simple(ds.PascalZeroShot, ds.PascalZeroShotConfig),
    "lvis-generalized": _simple(ds.LvisGeneralized, ds.LvisGeneralizedConfig),
    "lvis-objects": _simple(ds.LvisObjects, ds.LvisObjectsConfig),  # the visual prompt analysis (Tab. 2)
    "folder": _simple(ds.PhraseFolder, ds.FolderConfig),
    "coco-folder": _simple(ds.CocoFolder, ds.FolderConfig),
    "world": _world,
}


def build_dataset(name: str, root: str, split: str, options: dict[str, Any] | None = None, image_size: int = 352) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown data set '{name}'; known: {', '.join(DATASETS)}")
    return DATASETS[name](root, split, dict(options or {}), image_size)
