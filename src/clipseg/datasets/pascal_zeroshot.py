"""Pascal VOC 2012 generalized zero-shot segmentation (paper Sec. 5.2, Tab. 4).

Unseen class sets follow ZS3Net (Bucher et al., NeurIPS 2019, valeoai/ZS3
`data/pascal_voc_unseen_classes.txt`), which JoEm's `get_unseen_idx` (used by the authors'
evaluation) reproduces; each set extends the previous one:
  unseen-2: cow, motorbike
  unseen-4: + aeroplane, sofa
  unseen-6: + cat, tv monitor
  unseen-8: + train, bottle
  unseen-10: + chair, potted plant
(The authors' repository has the same pairs commented out as WordNet synsets.)

Evaluation items are multi-label: the image, its full label map and the 20 class prompts;
the model predicts one binary map per class and each pixel takes the class of highest
probability (`MultiClassIoU` in clipseg.evaluation.metrics scores it).

Training on PhraseCut(+) must not see unseen classes: `PromptFilter` / `is_prompt_allowed`
remove prompts that name an unseen class or one of its hyponyms (word lists in voc.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..constants import EVAL_TEMPLATE

from ..io.image_io import load_image
from .common import SampleTransform, require
from .voc import VOC_CLASSES, VOC_WORDS, voc_class

_UNSEEN_ORDER = (
    "cow", "motorbike", "aeroplane", "sofa", "cat", "tv monitor", "train", "bottle", "chair", "potted plant",
)  # fmt: skip


def unseen_classes(n_unseen: int) -> tuple[str, ...]:
    """The ZS3 unseen set with n_unseen in {2, 4, 6, 8, 10} classes (VOC names)."""
    if n_unseen not in (2, 4, 6, 8, 10):
        raise ValueError(f"n_unseen must be 2, 4, 6, 8 or 10, not {n_unseen}")
    return _UNSEEN_ORDER[:n_unseen]


# --- prompt filter ------------------------------------------------------------------------
_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "oxen": "ox", "geese": "goose",
    "mice": "mouse", "feet": "foot", "teeth": "tooth", "calves": "calf", "wolves": "wolf", "knives": "knife",
    "leaves": "leaf", "shelves": "shelf", "babies": "baby", "ponies": "pony", "puppies": "puppy",
    "kitties": "kitty", "sheep": "sheep", "bus": "bus", "buses": "bus", "glass": "glass", "grass": "grass",
}  # fmt: skip


def _lemma(word: str) -> str:
    """Crude singular of an English noun (stands in for WordNet's lemmatizer)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass(frozen=True)
class PromptFilter:
    """Callable phrase -> bool: False if the phrase names one of `unseen` (VOC class names,
    aliases accepted) or a hyponym/synonym from VOC_WORDS. Words are compared lower-cased and
    singularised; multi-word terms ("potted plant") must appear as consecutive words."""

    unseen: tuple[str, ...]
    _single: frozenset = field(init=False, repr=False)
    _multi: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        terms = {tuple(_lemma(w) for w in _words(term)) for c in self.unseen for term in VOC_WORDS[voc_class(c)]}
        object.__setattr__(self, "_single", frozenset(t[0] for t in terms if len(t) == 1))
        object.__setattr__(self, "_multi", tuple(sorted(" " + " ".join(t) + " " for t in terms if len(t) > 1)))

    def __call__(self, phrase: str) -> bool:
        raw = _words(phrase)
        for words in (raw, [_lemma(w) for w in raw]):
            if self._single.intersection(words):
                return False
            joined = " " + " ".join(words) + " "
            if any(term in joined for term in self._multi):
                return False
        return True


def is_prompt_allowed(phrase: str, unseen: Iterable[str] | int) -> bool:
    """True unless `phrase` names an unseen VOC class or one of its hyponyms.

    unseen: VOC class names, or n_unseen (2, 4, ..., 10) for the ZS3 sets. For many phrases
    build one `PromptFilter` and call it instead.
    """
    classes = unseen_classes(unseen) if isinstance(unseen, int) else tuple(unseen)
    return PromptFilter(classes)(phrase)


# --- evaluation data set ------------------------------------------------------------------
@dataclass
class ZeroShotItem:
    """One evaluation image with all its labels.

    image: (3, H, W) normalized; labels: (H, W) int64, 0 background, i + 1 = VOC_CLASSES[i],
    255 void; prompts: the 20 class prompts (after the template), index i <-> label i + 1;
    unseen: label indices (1-based) of the unseen classes.
    """

    image: torch.Tensor
    labels: torch.Tensor
    image_id: str
    prompts: list[str]
    class_names: list[str]
    unseen: tuple[int, ...]


@dataclass(frozen=True)
class PascalZeroShotConfig:
    n_unseen: int = 10
    image_size: int = 352
    template: str = EVAL_TEMPLATE
    label_dir: str = "SegmentationClass"  # or "SegmentationClassAug"
    drop_unseen_images: bool = False  # e.g. for a train split: skip images showing an unseen class


class PascalZeroShot(Dataset):
    """Pascal VOC 2012 (root = the VOC2012 folder: JPEGImages/, ImageSets/Segmentation/{split}.txt,
    SegmentationClass/ palette PNGs of class indices)."""

    def __init__(self, root: str | Path, split: str = "val", config: PascalZeroShotConfig = PascalZeroShotConfig()):
        self.root, self.config = Path(root), config
        self.transform = SampleTransform.of_size(config.image_size)
        self.image_dir = require(self.root / "JPEGImages", "Pascal VOC image folder")
        self.label_dir = require(self.root / config.label_dir, "Pascal VOC label folder")
        list_file = require(self.root / "ImageSets" / "Segmentation" / f"{split}.txt", f"Pascal VOC '{split}' list")
        self.ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        self.unseen = tuple(VOC_CLASSES.index(c) + 1 for c in unseen_classes(config.n_unseen))
        if config.drop_unseen_images:
            self.ids = [i for i in self.ids if not set(np.unique(self._labels(i))) & set(self.unseen)]

    def _labels(self, image_id: str) -> np.ndarray:
        path = require(self.label_dir / f"{image_id}.png", "Pascal VOC label map")
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise ValueError(f"label map '{path}' must be a palette or grayscale PNG of class indices ({im.mode})")
            return np.asarray(im).copy()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> ZeroShotItem:
        image_id = self.ids[index]
        image = load_image(self.image_dir / f"{image_id}.jpg")
        labels = self._labels(image_id)
        return ZeroShotItem(
            image=self.transform.image(image),
            labels=self.transform.labels(labels),
            image_id=image_id,
            prompts=[self.config.template.format(c) for c in VOC_CLASSES],
            class_names=list(VOC_CLASSES),
            unseen=self.unseen,
        )
