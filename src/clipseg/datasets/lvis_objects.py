"""Single LVIS objects for the visual prompt engineering analysis (paper Sec. 4, Tab. 2).

The paper: "We base this analysis on the LVIS dataset since its images contain multiple
objects and a rich set of categories. We sample 1,600 images and mask one target object out
of all objects present in this image." Following the authors' notebook
(Visual_Feature_Engineering.ipynb), CLIP then chooses between the target's name and the
names of the other categories annotated in the same image, and only images showing at least
two other categories count (three or more candidates).

An item is an `ObjectSample`: the image, the mask of ONE annotated instance, its category
name (class_name; "_" read as " ": "bus_(vehicle)" -> "bus (vehicle)") and `candidates` =
(target name, other category names of the image). The draw is reproducible: images with an
eligible instance (area >= `min_area` of the image, >= `min_others` other categories) are
shuffled with `seed`, the first `images` kept, and one eligible instance picked per image.
Layout as `LvisGeneralized`: root/lvis_v1_{split}.json, images through coco_url under root/.

What the paper leaves open: the LVIS split (default "val" here; the authors' notebook drew
from its own LVIS one-shot export of train and val images) and the object size filter (their
loader was built with min_area=0.1, read here as 10 % of the image area).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..io.image_io import load_image
from .sample import Sample
from .coco_json import CocoIndex
from .common import SampleTransform, require


@dataclass
class ObjectSample(Sample):
    """A Sample with the class names CLIP must choose between (target first)."""

    candidates: tuple[str, ...] = ()


def lvis_name(name: str) -> str:
    """LVIS category name as a phrase: "bus_(vehicle)" -> "bus (vehicle)"."""
    return " ".join(name.replace("_", " ").split())


@dataclass(frozen=True)
class LvisObjectsConfig:
    image_size: int = 352
    images: int | None = 1600  # number of images (one object each); None: every eligible image
    min_area: float = 0.1  # instance area / image area
    min_others: int = 2  # other categories the image must show
    seed: int = 0


@dataclass(frozen=True)
class ObjectItem:
    image_id: int
    category_id: int
    instance: int  # annotation index within (image, category)
    candidates: tuple[str, ...]


class LvisObjects(Dataset):
    """One masked object per sampled LVIS image, with the image's other categories as distractors."""

    def __init__(self, root: str | Path, split: str = "val", config: LvisObjectsConfig = LvisObjectsConfig()):
        if not 0 <= config.min_area < 1:
            raise ValueError(f"min_area is a fraction of the image area in [0, 1), not {config.min_area}")
        if config.images is not None and config.images < 1:
            raise ValueError(f"images must be positive (or null for all), not {config.images}")
        self.root, self.config = Path(root), config
        self.transform = SampleTransform.of_size(config.image_size)
        self.index = CocoIndex(require(self.root / f"lvis_v1_{split}.json", "LVIS annotation file"), self.root)
        categories_in_image: dict[int, list[int]] = {}
        for image_id, cid in self.index.pairs():
            categories_in_image.setdefault(image_id, []).append(cid)

        eligible: dict[int, list[tuple[int, int]]] = {}  # image -> [(category, instance)]
        for image_id, cids in categories_in_image.items():
            if len(cids) < 1 + config.min_others:
                continue
            image = self.index.images[image_id]
            min_pixels = config.min_area * image.height * image.width
            objects = [
                (cid, k)
                for cid in cids
                for k in range(self.index.instances(image_id, cid))
                if self.index.instance_area(image_id, cid, k) >= max(min_pixels, 1.0)
            ]
            if objects:
                eligible[image_id] = objects
        if not eligible:
            raise ValueError(
                f"'{self.index.annotation_file}': no image has an object of >= {config.min_area:.0%} of the image "
                f"and >= {config.min_others} other categories (lower min_area / min_others?)"
            )
        rng = np.random.default_rng(config.seed)
        order = [int(i) for i in rng.permutation(sorted(eligible))]
        self.items: list[ObjectItem] = []
        for image_id in order[: config.images]:
            objects = eligible[image_id]
            cid, k = objects[int(rng.integers(len(objects)))]
            names = self.index.categories
            others = sorted({lvis_name(names[c]) for c in categories_in_image[image_id]} - {lvis_name(names[cid])})
            self.items.append(ObjectItem(image_id, cid, k, (lvis_name(names[cid]), *others)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ObjectSample:
        item = self.items[index]
        image = load_image(self.index.images[item.image_id].path)
        mask = self.index.instance_mask(item.image_id, item.category_id, item.instance)
        name = item.candidates[0]
        return ObjectSample(
            image=self.transform.image(image),
            mask=self.transform.mask(mask),
            phrase=name,
            support=None,
            class_name=name,
            candidates=item.candidates,
        )
