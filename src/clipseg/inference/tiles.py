"""Tiled inference for large images: overlapping crops, each seen by the model at its input
size, blended with linear ramps, and gated by one pass over the whole image.

CLIPSeg decides on a grid of 16 px patches at its input size, so on a large photo a small
object covers a patch or two. Crops give it more pixels per object; but a crop loses the
context of the whole image, and a crop's map can invent an object the image does not hold.
So the whole-image pass gates the crops: where it shows nothing near a pixel (its logit not
above its own background, see `TileBlender.term_map`), the tiled map may not exceed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..io.transforms import resize_maps

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1) in image pixels, ends exclusive
DEFAULT_GATE = 2.0  # see TileBlender.term_map; measured in benchmarks/bench_full_resolution.py


@dataclass(frozen=True)
class TileGrid:
    """The crops of one image: boxes of about `side` px overlapping by `overlap` px."""

    size: tuple[int, int]  # (H, W) of the image
    boxes: tuple[Box, ...]
    overlap: int

    def __len__(self) -> int:
        return len(self.boxes)


def _starts(length: int, side: int, overlap: int) -> list[int]:
    if side >= length:
        return [0]
    count = math.ceil((length - side) / max(1, side - overlap)) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def tile_grid(height: int, width: int, tiles: int, overlap: float = 0.25) -> TileGrid:
    """`tiles` crops along the longer side (square, clipped to the shorter side), overlapping
    by `overlap` of their side; tiles=1 is one crop, the whole image."""
    if tiles < 1:
        raise ValueError(f"tiles must be at least 1, got {tiles}")
    long = max(height, width)
    side = long if tiles == 1 else math.ceil(long / (tiles - (tiles - 1) * overlap))
    ov = round(side * overlap) if tiles > 1 else 0
    hs, ws = min(side, height), min(side, width)
    boxes = tuple((y, x, y + hs, x + ws) for y in _starts(height, hs, ov) for x in _starts(width, ws, ov))
    return TileGrid((height, width), boxes, ov)


def auto_tiles(height: int, width: int, input_size: int) -> int:
    """Crops of about 1.5 times the model's input size: 1 (no tiling) up to 528 px for a
    352 px model, 4 per side at 2048 px, 8 at most."""
    return int(min(8, max(1, round(max(height, width) / (1.5 * input_size)))))


def tile_count(tiles: int | str, height: int, width: int, input_size: int) -> int:
    """Crops per side for a `tiles` request: a whole number (1 or more) or "auto"."""
    if tiles == "auto":
        return auto_tiles(height, width, input_size)
    if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
        raise ValueError(f"tiles must be a whole number of crops per side (1 or more) or 'auto', got {tiles!r}")
    return tiles


def _ramp(length: int, start_inside: bool, end_inside: bool, width: int) -> torch.Tensor:
    """(length,) weights: rising over `width` px from an edge inside the image, 1 elsewhere."""
    w = torch.ones(length)
    if width > 0:
        up = (torch.arange(min(width, length)) + 0.5) / width
        if start_inside:
            w[: up.numel()] = torch.minimum(w[: up.numel()], up)
        if end_inside:
            w[length - up.numel():] = torch.minimum(w[length - up.numel():], up.flip(0))
    return w


class TileBlender:
    """Full-resolution maps of a tiled image, one term at a time.

    tile_logits: (K, T, h, w) the crops' logits (crop k of `grid.boxes`, term t);
    global_logits: (T, h', w') the whole image's; gate: see `term_map`.
    """

    def __init__(self, grid: TileGrid, tile_logits: torch.Tensor, global_logits: torch.Tensor,
                 gate: float | None = DEFAULT_GATE):
        self.grid, self.tile_logits, self.global_logits, self.gate = grid, tile_logits, global_logits, gate

    def term_map(self, i: int) -> torch.Tensor:
        """(H, W) probability map of term i: the crops blended where the whole-image pass
        supports it, elsewhere the smaller of the two. A cell of the whole image's grid is
        support when its logit (the largest of the 3 x 3 cells around it) rises above the map's
        own median by more than `gate` times its median absolute deviation: the whole image
        shows something there, however faint. `gate` None: no gating."""
        H, W = self.grid.size
        device = self.tile_logits.device
        acc = torch.zeros((H, W), device=device)
        weight = torch.zeros((H, W), device=device)
        for k, (y0, x0, y1, x1) in enumerate(self.grid.boxes):
            p = resize_maps(self.tile_logits[k, i : i + 1].float(), (y1 - y0, x1 - x0))[0].sigmoid_()
            wy = _ramp(y1 - y0, y0 > 0, y1 < H, self.grid.overlap).to(device)
            wx = _ramp(x1 - x0, x0 > 0, x1 < W, self.grid.overlap).to(device)
            w = wy[:, None] * wx[None, :]
            acc[y0:y1, x0:x1].add_(p * w)
            weight[y0:y1, x0:x1].add_(w)
        tiled = acc.div_(weight)
        if self.gate is None:
            return tiled
        coarse = self.global_logits[i].float()  # (h', w') on the model's grid
        median = coarse.median()
        spread = (coarse - median).abs().median()
        near = torch.nn.functional.max_pool2d(coarse[None, None], 3, stride=1, padding=1)[0, 0]
        support = (near > median + self.gate * spread).float()
        support = torch.nn.functional.interpolate(support[None, None], size=(H, W), mode="nearest")[0, 0] > 0
        whole = resize_maps(self.global_logits[i : i + 1].float(), (H, W))[0].sigmoid_()
        return torch.where(support, tiled, torch.minimum(tiled, whole))


def crops(rgb: np.ndarray, grid: TileGrid) -> list[np.ndarray]:
    """The (h, w, 3) uint8 crops of an image, in the grid's order."""
    return [rgb[y0:y1, x0:x1] for (y0, x0, y1, x1) in grid.boxes]


def tile_inputs(rgb: np.ndarray, tiles: int | str, input_size: int,
                prepare: Callable[[Image.Image], object]) -> tuple[TileGrid, list] | None:
    """The grid of a `tiles` request on an image and its crops as model inputs (`prepare` of
    each crop, all of one shape); None when one crop is the whole image (the global pass)."""
    h, w = rgb.shape[:2]
    grid = tile_grid(h, w, tile_count(tiles, h, w, input_size))
    if len(grid) == 1:
        return None
    return grid, [prepare(Image.fromarray(c)) for c in crops(rgb, grid)]
