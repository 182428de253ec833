"""Object masks from annotation geometry: polygons (PhraseCut, COCO, LVIS) and COCO RLE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

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


def _decode_rle_string(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (pycocotools' `rleFrString`):
    6-bit chunks offset by 48, 5 data bits, bit 0x20 = more chunks, sign-extended, and
    from the third run on stored as the difference to the run two places earlier."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE {"size": [h, w], "counts": list[int] or str} -> (h, w) bool.

    Runs alternate background/foreground starting with background, in column-major order.
    """
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = _decode_rle_string(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(runs) != h * w:
        raise ValueError(f"RLE runs cover {sum(runs)} pixels, expected {h}x{w} = {h * w}")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape(w, h).T


def segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO/LVIS `segmentation` field (polygon list or RLE dict) -> (height, width) bool."""
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation)
        if mask.shape != (height, width):
            raise ValueError(f"RLE size {mask.shape} does not match the image size {(height, width)}")
        return mask
    return rasterize_polygons([_flat_to_points(poly) for poly in segmentation], height, width)
