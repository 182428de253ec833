"""Generalized prompts on LVIS (paper Sec. 5.5, Tab. 8; mapping from the appendix
"Object-mapping for Affordances and Attributes").

Each prompt (e.g. "sit on") stands for a set of LVIS categories; an item is an image that
contains at least one of them, with the union of all their instances as the target mask.
The paper used "the LVIS test data"; LVIS test annotations are not public, so the default
split reads lvis_v1_val.json. Layout:
  root/lvis_v1_{split}.json      (COCO format, polygon segmentations)
  root/{train2017,val2017}/*.jpg (located through each image's coco_url)
Category names are matched after lower-casing and replacing "_" by " " ("bus_(vehicle)" ==
"bus (vehicle)"), against names and LVIS synonyms; names not found in the file are listed
in `missing_categories`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..io.image_io import load_image
from .sample import Sample
from .coco_json import CocoIndex
from .common import SampleTransform, require

# Copied from the paper's appendix (duplicates as printed; they are removed on use).
GENERALIZED_PROMPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "affordances": {
        "sit on": (
            "armchair", "sofa", "loveseat", "deck chair", "rocking chair", "highchair", "deck chair",
            "folding chair", "chair", "recliner", "wheelchair",
        ),
        "drink from": ("bottle", "beer bottle", "water bottle", "wine bottle", "thermos bottle"),
        "ride on": ("horse", "pony", "motorcycle"),
    },
    "attributes": {
        "can fly": (
            "eagle", "jet plane", "airplane", "fighter jet", "bird", "duck", "gull", "owl", "seabird", "pigeon",
            "goose", "parakeet",
        ),
        "can be driven": ("minivan", "bus (vehicle)", "cab (taxi)", "jeep", "ambulance", "car (automobile)"),
        "can swim": ("duck", "duckling", "water scooter", "penguin", "boat", "kayak", "canoe"),
    },
    "meronymy": {
        "has wheels": (
            "dirt bike", "car (automobile)", "wheelchair", "motorcycle", "bicycle", "cab (taxi)", "minivan",
            "bus (vehicle)", "cab (taxi)", "jeep", "ambulance",
        ),
        "has legs": (
            "armchair", "sofa", "loveseat", "deck chair", "rocking chair", "highchair", "deck chair",
            "folding chair", "chair", "recliner", "wheelchair", "horse", "pony", "eagle", "bird", "duck", "gull",
            "owl", "seabird", "pigeon", "goose", "parakeet", "dog", "cat", "flamingo", "penguin", "cow", "puppy",
            "sheep", "black sheep", "ostrich", "ram (animal)", "chicken (animal)", "person",
        ),
    },
}  # fmt: skip


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


@dataclass(frozen=True)
class LvisGeneralizedConfig:
    image_size: int = 352
    template: str = "{}"  # e.g. "something to {}." for affordances
    subsets: tuple[str, ...] = ("affordances", "attributes", "meronymy")


@dataclass(frozen=True)
class LvisItem:
    image_id: int
    subset: str
    prompt: str
    category_ids: tuple[int, ...]  # the prompt's categories present in the image


class LvisGeneralized(Dataset):
    """(image, generalized prompt) pairs; class_name = the prompt (mIoU over prompts)."""

    def __init__(self, root: str | Path, split: str = "val", config: LvisGeneralizedConfig = LvisGeneralizedConfig()):
        unknown = set(config.subsets) - set(GENERALIZED_PROMPTS)
        if unknown:
            raise ValueError(f"unknown subsets {sorted(unknown)}; choose from {sorted(GENERALIZED_PROMPTS)}")
        self.root, self.config = Path(root), config
        self.transform = SampleTransform.of_size(config.image_size)
        self.index = CocoIndex(require(self.root / f"lvis_v1_{split}.json", "LVIS annotation file"), self.root)
        by_name: dict[str, int] = {}
        for cid, name in self.index.categories.items():
            for n in [name, *self.index.synonyms[cid]]:
                by_name.setdefault(_norm(n), cid)
        categories_in_image: dict[int, set[int]] = {}
        for image_id, cid in self.index.pairs():
            categories_in_image.setdefault(image_id, set()).add(cid)

        self.missing_categories: set[str] = set()
        prompts: list[tuple[str, str, frozenset[int]]] = []
        for subset in config.subsets:
            for prompt, names in GENERALIZED_PROMPTS[subset].items():
                ids = {by_name[_norm(n)] for n in names if _norm(n) in by_name}
                self.missing_categories |= {n for n in names if _norm(n) not in by_name}
                prompts.append((subset, prompt, frozenset(ids)))
        self.items = [
            LvisItem(image_id, subset, prompt, tuple(sorted(ids & present)))
            for image_id, present in sorted(categories_in_image.items())
            for subset, prompt, ids in prompts
            if ids & present
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        image = load_image(self.index.images[item.image_id].path)
        mask = self.index.mask(item.image_id, list(item.category_ids))
        return Sample(
            image=self.transform.image(image),
            mask=self.transform.mask(mask),
            phrase=self.config.template.format(item.prompt),
            support=None,
            class_name=item.prompt,
        )
