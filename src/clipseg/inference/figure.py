"""One picture of a multi-prompt result: the image, one overlay per prompt, and a legend."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io.arrays import mask_outline
from .masks import DEFAULT_THRESHOLD, is_present
from .outputs import colour

_GAP, _PAD, _LINE = 8, 10, 16


def _tint(image: Image.Image, prob: np.ndarray, rgb: tuple[int, int, int], threshold: float) -> Image.Image:
    """The image dimmed outside the mask, the mask tinted in `rgb` and outlined."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    mask = prob >= threshold
    out = base * 0.45
    out[mask] = base[mask] * 0.5 + np.asarray(rgb, np.float32) * 0.5
    out[mask_outline(mask)] = rgb
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def result_figure(image: Image.Image, probs: np.ndarray, names: Sequence[str], threshold: float = DEFAULT_THRESHOLD,
                  tile: int = 256, notes: Sequence[str] | None = None) -> Image.Image:
    """[image | prompt 1 | prompt 2 | ...] tiles of side `tile` with a legend below: each prompt's
    colour (the same as in the overlays and label maps), its text, whether it is present and its
    share of pixels. probs: (N, H, W) at the image's size."""
    probs = np.asarray(probs)
    if probs.ndim != 3 or len(probs) != len(names):
        raise ValueError(f"need one (H, W) map per name, got {probs.shape} for {len(names)} names")
    w, h = image.size
    scale = tile / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
    tiles = [image.convert("RGB").resize(size, resample)]
    for k, prob in enumerate(probs):
        tinted = _tint(image, prob, colour(k), threshold)
        tiles.append(tinted.resize(size, resample))
    font = ImageFont.load_default()
    legend_h = _PAD * 2 + _LINE * len(names)
    width = len(tiles) * (size[0] + _GAP) + _GAP
    fig = Image.new("RGB", (width, size[1] + 2 * _GAP + legend_h), "white")
    draw = ImageDraw.Draw(fig)
    for i, t in enumerate(tiles):
        x = _GAP + i * (size[0] + _GAP)
        fig.paste(t, (x, _GAP))
        label = "image" if i == 0 else f"{i}"
        draw.text((x + 4, _GAP + 2), label, fill="white", font=font, stroke_width=2, stroke_fill="black")
    y = size[1] + 2 * _GAP + _PAD
    for k, (name, prob) in enumerate(zip(names, probs)):
        present = "present" if is_present(prob, threshold) else "not present"
        share = 100.0 * float((prob >= threshold).mean())
        note = f"  ({notes[k]})" if notes and notes[k] else ""
        draw.rectangle([_GAP, y + 2, _GAP + 11, y + 13], fill=colour(k), outline="black")
        draw.text((_GAP + 18, y + 1), f"{k + 1}. {name}{note}: {present}, {share:.1f} % of pixels",
                  fill="black", font=font)
        y += _LINE
    return fig
