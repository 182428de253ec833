"""Shared logic of the one-shot benchmarks (Pascal-5i, COCO-20i): a query (image, class),
a support = another image of the same class as a visual prompt, the class name as phrase.

Negatives (`negative_prob`, for training; the paper's "COCO+N" of Tab. 6 used 10 %): with
that probability the prompt (phrase and support) is of another class of the split that the
records do not list for the query image, and the target is empty (`is_negative`). The
authors' COCO wrapper instead swapped in a support image of another class with an empty
support mask and kept the query mask; here a negative is a prompt of an absent class with an
empty target, as PhraseCut+'s negatives and the paper's Tab. 1 define them."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..constants import EVAL_TEMPLATE

from ..prompts.visual import VisualPromptConfig
from .sample import Sample
from .common import SampleTransform, make_support, sample_rng


@dataclass(frozen=True)
class OneShotConfig:
    image_size: int = 352
    template: str = EVAL_TEMPLATE
    with_support: bool = True
    visual_prompt: VisualPromptConfig = field(default_factory=VisualPromptConfig)
    seed: int = 0
    episodes: int | None = None  # fixed length, cycling over the queries (HSNet tests 1000 episodes)
    negative_prob: float = 0.0  # share of samples prompted with a class absent from the query image


class OneShotDataset(Dataset):
    """Items = records (image key, class id); subclasses implement `load`."""

    def __init__(self, records: list[tuple[Hashable, int]], class_names: dict[int, str], config: OneShotConfig):
        if not records:
            raise ValueError("the split lists no (image, class) pairs")
        if not 0.0 <= config.negative_prob <= 1.0:
            raise ValueError(f"negative_prob must be in [0, 1], not {config.negative_prob}")
        self.records, self.class_names, self.config = records, class_names, config
        self.transform = SampleTransform.of_size(config.image_size)
        by_class: dict[int, dict[Hashable, None]] = {}
        for key, cls in records:
            by_class.setdefault(cls, {})[key] = None
        self.by_class = {cls: list(keys) for cls, keys in by_class.items()}  # class -> image keys
        self._position = {(cls, key): i for cls, keys in self.by_class.items() for i, key in enumerate(keys)}
        self.classes_of: dict[Hashable, set[int]] = {}  # image key -> classes the records list for it
        for key, cls in records:
            self.classes_of.setdefault(key, set()).add(cls)
        self.epoch = 0

    def load(self, key: Hashable, cls: int) -> tuple[Image.Image, np.ndarray, np.ndarray | None]:
        """RGB image, (H, W) bool mask of class `cls`, optional (H, W) bool valid pixels."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.config.episodes or len(self.records)

    def support_key(self, key: Hashable, cls: int, rng: np.random.Generator) -> Hashable | None:
        """Another image of class `cls`, uniformly drawn; None if the query is its only image."""
        keys = self.by_class[cls]
        if len(keys) < 2:
            return None
        i = int(rng.integers(len(keys) - 1))
        return keys[i if i < self._position[cls, key] else i + 1]

    def negative_class(self, key: Hashable, rng: np.random.Generator) -> int | None:
        """A class of the split absent from image `key` (uniform), or None if there is none."""
        absent = sorted(set(self.by_class) - self.classes_of[key])
        return absent[int(rng.integers(len(absent)))] if absent else None

    def __getitem__(self, index: int) -> Sample:
        key, cls = self.records[index % len(self.records)]
        rng = sample_rng(self.config.seed, self.epoch, index)
        image, mask, valid = self.load(key, cls)
        prompt_cls, negative = cls, False
        if self.config.negative_prob > 0 and rng.random() < self.config.negative_prob:
            other = self.negative_class(key, rng)
            if other is not None:
                prompt_cls, negative = other, True
                mask = np.zeros_like(mask)
        support = None
        if self.config.with_support:
            if negative:  # any image of the prompted class (the query image does not show it)
                keys = self.by_class[prompt_cls]
                other_key = keys[int(rng.integers(len(keys)))]
            else:
                other_key = self.support_key(key, cls, rng)
            if other_key is not None:
                s_image, s_mask, _ = self.load(other_key, prompt_cls)
                support = make_support(s_image, s_mask, self.config.image_size, self.config.visual_prompt)
        name = self.class_names[prompt_cls]
        return Sample(
            image=self.transform.image(image),
            mask=self.transform.mask(mask),
            phrase=self.config.template.format(name),
            support=support,
            class_name=name,
            is_negative=negative,
            valid=None if valid is None else self.transform.mask(valid).bool(),
        )


def check_split(split: str) -> str:
    """'train'/'trn' -> 'trn', 'val'/'test' -> 'val' (HSNet's names)."""
    names = {"train": "trn", "trn": "trn", "val": "val", "test": "val"}
    if split not in names:
        raise ValueError(f"split must be 'train' or 'val' (also 'trn', 'test'), not {split!r}")
    return names[split]


def check_fold(fold: int) -> int:
    if fold not in (0, 1, 2, 3):
        raise ValueError(f"fold must be 0, 1, 2 or 3, not {fold}")
    return fold
