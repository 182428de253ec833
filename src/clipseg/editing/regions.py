"""Regions for detail passes: the connected parts of a mask, with boxes and crop boxes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .morphology import bounding_box

REGION_ORDERS = ("area", "left-to-right")


@dataclass(frozen=True)
class Region:
    """One 8-connected part of a mask. Boxes are in pixels of the image: bbox [x, y, w, h]
    (COCO) and crop [x0, y0, x1, y1] (the bbox with `padding` px of context, within the image)."""

    bbox: tuple[int, int, int, int]
    area: int
    centroid: tuple[float, float]  # (x, y)
    crop: tuple[int, int, int, int]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def find_regions(mask: np.ndarray, padding: int = 0, order: str = "area", min_area: int = 1) -> list[Region]:
    """The mask's 8-connected regions of at least min_area pixels, largest first (`order`
    'area'; ties left to right) or left to right ('left-to-right'; ties top to bottom)."""
    if order not in REGION_ORDERS:
        raise ValueError(f"region order must be one of {', '.join(REGION_ORDERS)}, got {order!r}")
    if padding < 0:
        raise ValueError(f"region padding must be 0 or more pixels, got {padding}")
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    box = bounding_box(mask, 0)
    if box is None:
        return []
    y0, x0 = int(box[0].start), int(box[1].start)  # the components of the mask's bounding box (offset below)
    sub = mask[box].view(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(sub, connectivity=8)
    regions = []
    for k in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[k])
        x, y = x + x0, y + y0
        if area < min_area:
            continue
        crop = (max(0, x - padding), max(0, y - padding), min(w, x + bw + padding), min(h, y + bh + padding))
        cx, cy = centroids[k][0] + x0, centroids[k][1] + y0
        regions.append(Region((x, y, bw, bh), area, (round(float(cx), 2), round(float(cy), 2)), crop))
    if order == "area":
        regions.sort(key=lambda r: (-r.area, r.bbox[0], r.bbox[1]))
    else:
        regions.sort(key=lambda r: (r.bbox[0], r.bbox[1], -r.area))
    return regions


def regions_record(regions: list[Region], height: int, width: int, padding: int, order: str,
                   limit: int = 1000) -> dict:
    """The JSON of a mask's regions (at most `limit` of them; `omitted` counts the rest)."""
    return {"width": width, "height": height, "padding": padding, "order": order, "count": len(regions),
            "omitted": max(0, len(regions) - limit), "regions": [r.to_dict() for r in regions[:limit]]}
