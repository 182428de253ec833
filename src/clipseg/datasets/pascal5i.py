"""Pascal-5i one-shot folds (Shaban et al. 2017), in the PANet/HSNet file layout.

  root/JPEGImages/{image_id}.jpg
  root/SegmentationClassAug/{image_id}.png   class index per pixel, 255 = void border
  splits_root/{trn,val}/fold{k}.txt          lines "image_id__classid" (classid 1..20)
splits_root defaults to root/splits/pascal (copy HSNet's data/splits/pascal there).
Fold k holds the classes 5k+1 .. 5k+5 (VOC order). As in HSNet, the val split of fold k
reads val/fold{k}.txt and the train split reads trn/fold{j}.txt of the three other folds.
Void (255) pixels are marked invalid in `Sample.valid`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..io.image_io import load_image
from .common import require
from .oneshot import OneShotConfig, OneShotDataset, check_fold, check_split
from .voc import VOC_CLASSES


def pascal5i_fold_classes(fold: int) -> list[int]:
    """VOC class ids (1-based) of fold `fold`."""
    return list(range(5 * check_fold(fold) + 1, 5 * fold + 6))


def read_fold_list(path: Path) -> list[tuple[str, int]]:
    """Lines 'image_id__classid' -> [(image_id, classid)]; errors name file and line."""
    require(path, "Pascal-5i split list")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, cls = line.strip().rpartition("__")
        if not sep or not name or not cls.isdigit() or not 1 <= int(cls) <= 20:
            raise ValueError(f"{path}:{n}: expected 'image_id__classid' with classid 1..20, got {line!r}")
        records.append((name, int(cls)))
    return records


class Pascal5i(OneShotDataset):
    """One-shot Pascal-5i: query image/mask of a class, support of the same class, class name as phrase."""

    def __init__(
        self,
        root: str | Path,
        split: str = "val",
        fold: int = 0,
        config: OneShotConfig = OneShotConfig(),
        splits_root: str | Path | None = None,
    ):
        self.root = Path(root)
        self.image_dir = require(self.root / "JPEGImages", "Pascal VOC image folder")
        self.label_dir = require(self.root / "SegmentationClassAug", "Pascal VOC SegmentationClassAug folder")
        lists = Path(splits_root) if splits_root is not None else self.root / "splits" / "pascal"
        split, fold = check_split(split), check_fold(fold)
        folds = [fold] if split == "val" else [j for j in range(4) if j != fold]
        records = [r for j in folds for r in read_fold_list(lists / split / f"fold{j}.txt")]
        super().__init__(records, {i + 1: name for i, name in enumerate(VOC_CLASSES)}, config)

    def load(self, key: str, cls: int) -> tuple[Image.Image, np.ndarray, np.ndarray]:
        image = load_image(self.image_dir / f"{key}.jpg")
        path = require(self.label_dir / f"{key}.png", "Pascal VOC label map")
        with Image.open(path) as im:
            labels = np.asarray(im)
        if labels.ndim != 2:
            raise ValueError(f"label map '{path}' must hold one class index per pixel (mode P or L)")
        return image, labels == cls, labels != 255
