"""An index over a COCO-format instances file (COCO 2014/2017, LVIS v1, user exports).

Only the fields the readers need are used: images[{id, width, height, file_name or
coco_url}], annotations[{image_id, category_id, segmentation, iscrowd?}],
categories[{id, name, synonyms?}].
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import read_json
from .masks import segmentation_to_mask


@dataclass(frozen=True)
class CocoImage:
    id: int
    path: Path
    height: int
    width: int


def _image_path(image: dict, image_root: Path) -> Path:
    """`file_name` relative to image_root; LVIS has none and names the image by `coco_url`
    (".../val2017/000000397133.jpg" -> image_root/val2017/000000397133.jpg)."""
    if image.get("file_name"):
        return image_root / image["file_name"]
    if image.get("coco_url"):
        parts = image["coco_url"].rstrip("/").split("/")
        return image_root / parts[-2] / parts[-1]
    raise ValueError(f"image {image.get('id')} has neither 'file_name' nor 'coco_url'")


class CocoIndex:
    """Images, categories and per-(image, category) annotations of one instances json."""

    def __init__(self, annotation_file: Path, image_root: Path) -> None:
        data = read_json(annotation_file, "COCO-style annotation file")
        for field in ("images", "annotations", "categories"):
            if field not in data:
                raise ValueError(f"annotation file '{annotation_file}' has no '{field}' list")
        self.annotation_file = annotation_file
        try:
            self.images = {
                int(im["id"]): CocoImage(
                    int(im["id"]), _image_path(im, image_root), int(im["height"]), int(im["width"])
                )
                for im in data["images"]
            }
            self.categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
            self.synonyms = {int(c["id"]): [str(s) for s in c.get("synonyms", [])] for c in data["categories"]}
            self._segs: dict[tuple[int, int], list] = defaultdict(list)  # one entry per annotation (instance)
            self._areas: dict[tuple[int, int], list[float | None]] = defaultdict(list)  # its "area", if given
            for ann in data["annotations"]:
                key = int(ann["image_id"]), int(ann["category_id"])
                self._segs[key].append(ann["segmentation"])
                self._areas[key].append(float(ann["area"]) if ann.get("area") is not None else None)
        except KeyError as e:
            raise ValueError(f"annotation file '{annotation_file}' misses the field {e} in an entry") from None
        unknown = {img for img, _ in self._segs} - set(self.images)
        if unknown:
            raise ValueError(f"annotation file '{annotation_file}' annotates unknown image ids {sorted(unknown)[:5]}")

    def pairs(self) -> list[tuple[int, int]]:
        """All (image_id, category_id) with at least one annotation, sorted."""
        return sorted(self._segs)

    def instances(self, image_id: int, category_id: int) -> int:
        """Number of annotations (instances) of a category in an image."""
        return len(self._segs.get((image_id, category_id), []))

    def instance_area(self, image_id: int, category_id: int, k: int) -> float:
        """Pixel area of annotation k of (image, category): its "area" field, else counted from its mask."""
        area = self._areas[image_id, category_id][k]
        return area if area is not None else float(self.instance_mask(image_id, category_id, k).sum())

    def instance_mask(self, image_id: int, category_id: int, k: int) -> np.ndarray:
        """(H, W) bool mask of annotation k (0-based, file order) of (image, category)."""
        image = self.images[image_id]
        return segmentation_to_mask(self._segs[image_id, category_id][k], image.height, image.width)

    def mask(self, image_id: int, category_ids: int | list[int]) -> np.ndarray:
        """(H, W) bool union of all annotations of the given categories in the image."""
        image = self.images[image_id]
        ids = [category_ids] if isinstance(category_ids, int) else category_ids
        mask = np.zeros((image.height, image.width), dtype=bool)
        for cid in ids:
            for seg in self._segs.get((image_id, cid), []):
                mask |= segmentation_to_mask(seg, image.height, image.width)
        return mask
