"""Object-aware random square crops (PhraseCut+ augmentation)."""

from __future__ import annotations

import numpy as np


def object_aware_crop(
    mask: np.ndarray,
    rng: np.random.Generator,
    min_object_frac: float = 0.05,
    scale: tuple[float, float] = (1.0, 1.0),
    tries: int = 50,
) -> tuple[int, int, int]:
    """Random square crop (y0, x0, side) of a (H, W) bool object mask.

    side = U(scale) * min(H, W) (scale (1, 1): the largest square, as the reference does).
    `tries` random crops are drawn at once; the first whose object pixels exceed
    min_object_frac * side**2 is returned, else the one holding the most object pixels
    (so the object stays as visible as possible). Pixel counts come from one integral image.
    """
    h, w = mask.shape
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
    sides = np.clip(np.round(rng.uniform(lo, hi, tries) * min(h, w)), 1, min(h, w)).astype(np.int64)  # (tries,)
    y0 = rng.integers(0, h - sides + 1)  # (tries,)
    x0 = rng.integers(0, w - sides + 1)
    sat = np.zeros((h + 1, w + 1), dtype=np.int64)
    sat[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    y1, x1 = y0 + sides, x0 + sides
    inside = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]  # object pixels per crop
    ok = inside > min_object_frac * sides.astype(np.float64) ** 2
    i = int(np.argmax(ok)) if ok.any() else int(np.argmax(inside))
    return int(y0[i]), int(x0[i]), int(sides[i])
