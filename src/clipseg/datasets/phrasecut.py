"""PhraseCut (VGPhraseCut_v0, Wu et al. CVPR 2020) reader.

On-disk layout (as the dataset's download_dataset.py writes it):
  root/refer_{train,val,test,miniv}.json   list of tasks (phrase-region pairs)
  root/images/{image_id}.jpg                Visual Genome images
Fields of a task used here (names as in the PhraseCutDataset README):
  task_id (str, unique), image_id (int, Visual Genome id), phrase (str),
  Polygons: one entry per referred instance, each a list of polygons, each a list of
  [x, y] points in image pixels.
Ignored: instance_boxes (xywh per instance, redundant with Polygons), ann_ids,
phrase_structure. Image sizes are taken from the image files (image_data_split3000.json
is not needed; the authors found it wrong for a few images).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..io.image_io import load_image
from .sample import Sample
from .common import SampleTransform, read_json, require
from .masks import rasterize_polygons
from .pascal_zeroshot import PromptFilter

SPLITS = ("train", "val", "test", "miniv")


@dataclass(frozen=True)
class PhraseCutTask:
    task_id: str
    image_id: int
    phrase: str
    polygons: list  # [instance][polygon][point] = [x, y]


@dataclass(frozen=True)
class PhraseCutConfig:
    image_size: int = 352
    template: str = "{}"
    exclude_classes: tuple[str, ...] = ()  # Pascal classes whose prompts are removed (zero-shot training)


def _parse_task(entry: dict, index: int, path: Path) -> PhraseCutTask:
    try:
        polygons = entry["Polygons"]
        if not isinstance(polygons, list) or not all(isinstance(inst, list) for inst in polygons):
            raise ValueError("'Polygons' must be a list (instances) of lists of polygons")
        return PhraseCutTask(str(entry["task_id"]), int(entry["image_id"]), str(entry["phrase"]), polygons)
    except KeyError as e:
        raise ValueError(f"'{path}': task {index} has no field {e}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"'{path}': task {index} is malformed: {e}") from None


class PhraseCut(Dataset):
    """PhraseCut phrase-region pairs as `Sample`s (class_name = task_id: PhraseCut's mIoU
    averages over samples)."""

    def __init__(self, root: str | Path, split: str = "train", config: PhraseCutConfig = PhraseCutConfig()):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        self.root, self.split, self.config = Path(root), split, config
        self.transform = SampleTransform.of_size(config.image_size)
        require(self.root, "PhraseCut root (VGPhraseCut_v0)")
        self.image_dir = require(self.root / "images", "PhraseCut image folder")
        refer = self.root / f"refer_{split}.json"
        entries = read_json(refer, f"PhraseCut '{split}' annotations")
        if not isinstance(entries, list):
            raise ValueError(f"'{refer}' must hold a list of tasks")
        tasks = [_parse_task(e, i, refer) for i, e in enumerate(entries)]
        if config.exclude_classes:
            allowed = PromptFilter(tuple(config.exclude_classes))
            tasks = [t for t in tasks if allowed(t.phrase)]
        self.tasks = tasks
        by_phrase: dict[str, list[int]] = defaultdict(list)
        for i, t in enumerate(tasks):
            by_phrase[t.phrase].append(i)
        self.samples_by_phrase = dict(by_phrase)  # phrase -> task indices
        self.phrases = sorted(by_phrase)

    def __len__(self) -> int:
        return len(self.tasks)

    def load(self, index: int) -> tuple[Image.Image, np.ndarray, PhraseCutTask]:
        """Raw RGB image, (H, W) bool mask of all referred instances, and the task."""
        task = self.tasks[index]
        image = load_image(self.image_dir / f"{task.image_id}.jpg")
        polygons = [poly for instance in task.polygons for poly in instance]
        return image, rasterize_polygons(polygons, image.height, image.width), task

    def __getitem__(self, index: int) -> Sample:
        image, mask, task = self.load(index)
        return Sample(
            image=self.transform.image(image),
            mask=self.transform.mask(mask),
            phrase=self.config.template.format(task.phrase),
            support=None,
            class_name=task.task_id,
        )
