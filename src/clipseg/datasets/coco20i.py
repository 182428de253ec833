"""COCO-20i one-shot folds (Nguyen & Todorovic 2019), with HSNet's fold definition.

  root/train2014/*.jpg, root/val2014/*.jpg         (file_name of the json, relative to these)
  root/annotations/instances_train2014.json, instances_val2014.json
The 80 categories are numbered 0..79 in order of their COCO id; fold k holds those with
index % 4 == k, i.e. 1-based classes {4m + k + 1 : m = 0..19} (fold 0: person, airplane,
boat, ...). This interleaved split is HSNet's `build_class_ids` (not the consecutive blocks
of some other papers). The val split uses val2014 and the fold's classes, the train split
train2014 and the other 60 classes. A query is every (image, class) pair with an
annotation; the mask is the union of the class's annotations (crowd regions included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..io.image_io import load_image
from .coco_json import CocoIndex
from .common import require
from .oneshot import OneShotConfig, OneShotDataset, check_fold, check_split


def coco20i_fold_category_ids(category_ids: list[int], fold: int) -> list[int]:
    """COCO category ids of fold `fold` (HSNet: contiguous index % 4 == fold)."""
    check_fold(fold)
    return [cid for i, cid in enumerate(sorted(category_ids)) if i % 4 == fold]


class Coco20i(OneShotDataset):
    """One-shot COCO-20i: query image/mask of a class, support of the same class, class name as phrase."""

    def __init__(self, root: str | Path, split: str = "val", fold: int = 0, config: OneShotConfig = OneShotConfig()):
        self.root = Path(root)
        split = check_split(split)
        subset = "val2014" if split == "val" else "train2014"
        image_root = require(self.root / subset, f"COCO {subset} image folder")
        self.index = CocoIndex(self.root / "annotations" / f"instances_{subset}.json", image_root)
        fold_ids = set(coco20i_fold_category_ids(list(self.index.categories), fold))
        wanted = fold_ids if split == "val" else set(self.index.categories) - fold_ids
        records = [(img, cid) for img, cid in self.index.pairs() if cid in wanted]
        super().__init__(records, dict(self.index.categories), config)

    def load(self, key: int, cls: int) -> tuple[Image.Image, np.ndarray, None]:
        return load_image(self.index.images[key].path), self.index.mask(key, cls), None
