"""PhraseCut+ (paper Sec. 3.1): PhraseCut with visual supports, negatives, prompt templates
and object-aware crops.

Per item, in this order, from a generator seeded with (seed, epoch, index):
1. crop: a random square crop that keeps > min_object_frac of its area on the object
   (`object_aware_crop`), then resize to image_size;
2. negative with probability negative_prob: the phrase is replaced by a different phrase
   of the split and the mask zeroed;
3. visual support (with_visual): another sample with the (possibly replaced) phrase, made
   into a visual prompt by `engineer_visual_prompt`; None when the phrase is unique;
4. a random prompt template applied to the phrase.
Call `set_epoch(e)` at each epoch for fresh draws (with persistent DataLoader workers, the
workers' copies do not see it: re-create the loader or make workers non-persistent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..prompts.visual import VisualPromptConfig
from .sample import Sample
from .common import PROMPT_TEMPLATES, SampleTransform, make_support, sample_rng
from .crops import object_aware_crop
from .phrasecut import PhraseCut, PhraseCutConfig


@dataclass(frozen=True)
class PhraseCutPlusConfig:
    image_size: int = 352
    templates: tuple[str, ...] = PROMPT_TEMPLATES
    negative_prob: float = 0.2
    with_visual: bool = True
    crop: bool = True
    min_object_frac: float = 0.05  # object share of the crop area
    crop_scale: tuple[float, float] = (1.0, 1.0)  # crop side / shorter image side
    crop_tries: int = 50
    visual_prompt: VisualPromptConfig = field(default_factory=VisualPromptConfig)
    seed: int = 0
    exclude_classes: tuple[str, ...] = ()  # Pascal classes whose prompts are removed


class PhraseCutPlus(Dataset):
    """PhraseCut+ training/evaluation samples (see the module docstring)."""

    def __init__(self, root: str | Path, split: str = "train", config: PhraseCutPlusConfig = PhraseCutPlusConfig()):
        self.config = config
        self.base = PhraseCut(
            root, split, PhraseCutConfig(image_size=config.image_size, exclude_classes=config.exclude_classes)
        )
        self.transform = SampleTransform.of_size(config.image_size)
        self._phrase_index = {p: i for i, p in enumerate(self.base.phrases)}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def _other_phrase(self, phrase: str, rng: np.random.Generator) -> str | None:
        """A uniformly drawn phrase different from `phrase` (None if there is no other)."""
        phrases = self.base.phrases
        if len(phrases) < 2:
            return None
        i = int(rng.integers(len(phrases) - 1))
        return phrases[i if i < self._phrase_index[phrase] else i + 1]

    def _support(self, phrase: str, index: int, rng: np.random.Generator):
        candidates = [j for j in self.base.samples_by_phrase.get(phrase, []) if j != index]
        if not candidates:
            return None
        image, mask, _ = self.base.load(candidates[int(rng.integers(len(candidates)))])
        return make_support(image, mask, self.config.image_size, self.config.visual_prompt)

    def __getitem__(self, index: int) -> Sample:
        cfg = self.config
        rng = sample_rng(cfg.seed, self.epoch, index)
        image, mask, task = self.base.load(index)
        if cfg.crop:
            y0, x0, side = object_aware_crop(mask, rng, cfg.min_object_frac, cfg.crop_scale, cfg.crop_tries)
            image = image.crop((x0, y0, x0 + side, y0 + side))
            mask = mask[y0 : y0 + side, x0 : x0 + side]
        phrase, negative = task.phrase, False
        if rng.random() < cfg.negative_prob:
            other = self._other_phrase(phrase, rng)
            if other is not None:
                phrase, negative = other, True
                mask = np.zeros_like(mask)
        support = self._support(phrase, index, rng) if cfg.with_visual else None
        template = cfg.templates[int(rng.integers(len(cfg.templates)))]
        return Sample(
            image=self.transform.image(image),
            mask=self.transform.mask(mask),
            phrase=template.format(phrase),
            support=support,
            class_name=task.task_id,
            is_negative=negative,
        )
