"""Where the visual prompt's crop, padding and scale go: plain integer geometry, shared by the
PyTorch engineering (`visual.py`) and the torch-free one (`visual_arrays.py`)."""

from __future__ import annotations

import numpy as np


def authors_crop_box(mask: np.ndarray, context: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the authors' `crop_mask(context=...)` rectangle of a (H, W) bool
    mask, clamped to the image (their clamp mixes width and height; see visual.py)."""
    h, w = mask.shape
    xs = np.flatnonzero(mask.any(axis=0))
    ys = np.flatnonzero(mask.any(axis=1))
    x0, x1 = int(xs[0]), int(xs[-1]) + 1
    y0, y1 = int(ys[0]), int(ys[-1]) + 1
    span_x, span_y = x1 - x0, y1 - y0  # their "height" and "width"
    return (int(max(0, y0 - context * span_y)), int(min(h, y1 + context * span_y)),
            int(max(0, x0 - context * span_x)), int(min(w, x1 + context * span_x)))


def square_padding(h: int, w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zeros that make (h, w) square around its centre (pad_to_square)."""
    if h > w:
        return (h - w) // 2, h - w - (h - w) // 2, 0, 0
    if w > h:
        return 0, 0, (w - h) // 2, w - h - (w - h) // 2
    return 0, 0, 0, 0


def support_size(h: int, w: int, size: int) -> tuple[int, int]:
    """The support image's size at the scale the released weights were trained with:
    shorter side = size (their loader resized 352 px square crops), longer side at most 4 size."""
    scale = min(size / min(h, w), 4 * size / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))
