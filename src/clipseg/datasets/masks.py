"""Object masks from annotation geometry: polygons (PhraseCut, COCO, LVIS) and COCO RLE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..io.rle import decode as decode_rle  # noqa: F401  (re-exported for readers)

Point = Sequence[float]  # (x, y) in pixels


def rasterize_polygons(polygons: Sequence[Sequence[Point]], height: int, width: int) -> np.ndarray:
    """Union of polygons [[x, y], ...] -> (height, width) bool.

    Filled with PIL ImageDraw, outline included, as the PhraseCut repository's own
    `polygons_to_mask` does; a polygon of two points draws a line, fewer is skipped.
    """
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        points = [(float(x), float(y)) for x, y in polygon]
        if len(points) >= 2:
            draw.polygon(points, fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


def _flat_to_points(flat: Sequence[float]) -> list[tuple[float, float]]:
    """COCO polygon [x1, y1, x2, y2, ...] -> [(x1, y1), ...]."""
    return list(zip(flat[0::2], flat[1::2]))


def segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO/LVIS `segmentation` field (polygon list or RLE dict) -> (height, width) bool."""
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation)
        if mask.shape != (height, width):
            raise ValueError(f"RLE size {mask.shape} does not match the image size {(height, width)}")
        return mask
    return rasterize_polygons([_flat_to_points(poly) for poly in segmentation], height, width)
