"""Encoding segmentation results as files: probability maps, masks, overlays, label maps, RLE.

Shared by the command line and the HTTP service. Every writer is atomic
(`data.atomic`: temporary file in the same folder, then rename), so an interrupted run
never leaves a half-written output that a resumed run would mistake for a finished one.
File names are `naming`'s.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import rle as rle_mod
from ..io.atomic import atomic_write, write_bytes
from ..io.arrays import mask_outline
from .masks import labels_of_best, present_by_area

# Distinct colours for prompts 1..N (0 = none / background), reused cyclically.
PALETTE: list[tuple[int, int, int]] = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
]


def colour(k: int) -> tuple[int, int, int]:
    """Colour of prompt index k (0-based)."""
    return PALETTE[k % len(PALETTE)]


# ---------------------------------------------------------------- encoders (bytes)


def png_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def prob_image16(prob: np.ndarray) -> Image.Image:
    """HxW probabilities in [0, 1] -> 16-bit grayscale image (0..65535)."""
    a = np.round(np.clip(prob, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return Image.fromarray(a)  # mode I;16


def prob_image8(prob: np.ndarray) -> Image.Image:
    a = np.round(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(a, "L")


def mask_image(mask: np.ndarray) -> Image.Image:
    """HxW bool -> 8-bit grayscale PNG-ready image, 0 / 255."""
    return Image.fromarray((np.asarray(mask) != 0).astype(np.uint8) * 255, "L")


class RunningBest:
    """The most likely prompt per pixel, accumulated one probability map at a time:
    `index` (H, W) int32 (0-based, the first on ties, as argmax) and `prob` (H, W)."""

    def __init__(self, shape: tuple[int, int]):
        self.index = np.zeros(shape, np.int32)
        self.prob = np.full(shape, -1.0, np.float32)
        self.count = 0

    def add(self, prob: np.ndarray) -> None:
        better = prob > self.prob
        self.index[better] = self.count
        np.maximum(self.prob, prob, out=self.prob)
        self.count += 1

    @classmethod
    def of(cls, probs: np.ndarray) -> "RunningBest":
        best = cls(probs.shape[-2:])
        for prob in probs:
            best.add(prob)
        return best

    def labels(self, none_threshold: float) -> np.ndarray:
        """Label map: 0 = none (max probability below none_threshold), k = prompt k - 1."""
        return labels_of_best(self.index, self.prob, none_threshold)


def outline_width(height: int, width: int) -> int:
    """Outline stroke of an overlay: 3 px up to 1200 px images, then growing with the longer side
    (9 px at 4000 px), so that it stays visible when the image is viewed scaled down."""
    return 2 * max(1, round(max(height, width) / 900)) + 1


def contrast(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever stands out from `rgb` (by its luma)."""
    r, g, b = rgb
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _disk(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def overlay_image(image: Image.Image, probs: np.ndarray | RunningBest, alpha: float = 0.6,
                  threshold: float | None = None, names: Sequence[str] | None = None) -> Image.Image:
    """The image with each prompt's probability map painted in its colour.

    probs: (N, H, W), or a RunningBest of them. Each pixel takes the colour of its most
    likely prompt, blended in proportion to that probability (times alpha); with a
    threshold, pixels below it are left as they are, and each mask is outlined in its colour
    (`outline_width`) over a black or white halo, so that it shows on objects of its own colour.
    names: a legend strip below the image, a swatch and name per prompt (`legend_strip`).
    """
    import cv2

    if not isinstance(probs, RunningBest):
        probs = np.asarray(probs, dtype=np.float32)
        probs = RunningBest.of(probs[None] if probs.ndim == 2 else probs)
    best, p = probs.index, probs.prob
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = np.array([colour(k) for k in range(max(1, probs.count))], dtype=np.float32)
    tint = colours[best]
    weight = alpha * p
    if threshold is not None:
        weight = np.where(p >= threshold, weight, 0.0)
    out = base * (1.0 - weight[..., None]) + tint * weight[..., None]
    if threshold is not None:
        w = outline_width(*p.shape)
        inner, halo = _disk(w // 2), _disk(w // 2 + max(1, w // 4))  # the halo: a rim of a quarter stroke
        above = p >= threshold
        shown = np.flatnonzero(np.bincount(best[above], minlength=probs.count))  # prompts with pixels
        for k in shown:
            edge = mask_outline(above & (best == k)).astype(np.uint8)
            out[cv2.dilate(edge, halo).astype(bool)] = contrast(colour(k))
            out[cv2.dilate(edge, inner).astype(bool)] = colour(k)
    result = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
    return result if not names else legend_strip(result, names)


def legend_strip(image: Image.Image, names: Sequence[str]) -> Image.Image:
    """`image` with a white strip below it: each prompt's colour swatch and its name (at most
    60 characters), wrapped to the image's width, in a font that grows with the image."""
    from PIL import ImageDraw, ImageFont

    size = max(12, round(image.width / 60))
    font = ImageFont.load_default(size=size)
    pad, swatch = size // 2, size
    labels = [n if len(n) <= 60 else n[:59] + "…" for n in names]
    widths = [swatch + pad // 2 + round(font.getlength(t)) + 2 * pad for t in labels]
    rows, x = [[]], 0  # entries of each row
    for k, w in enumerate(widths):
        if rows[-1] and x + w > image.width:
            rows.append([])
            x = 0
        rows[-1].append(k)
        x += w
    line = size + pad
    strip = Image.new("RGB", (image.width, len(rows) * line + pad), "white")
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        x, y = pad, pad + r * line
        for k in row:
            draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=colour(k), outline="black")
            draw.text((x + swatch + pad // 2, y + swatch // 2), labels[k], fill="black", font=font, anchor="lm")
            x += widths[k]
    out = Image.new("RGB", (image.width, image.height + strip.height), "white")
    out.paste(image, (0, 0))
    out.paste(strip, (0, image.height))
    return out


def label_image(labels: np.ndarray) -> Image.Image:
    """(H, W) int labels (0 = none, k = prompt k) -> palette PNG whose pixel values are the labels."""
    n = int(labels.max()) if labels.size else 0
    if n > 255:
        raise ValueError(f"a label map PNG holds at most 255 prompts, got {n}")
    img = Image.fromarray(labels.astype(np.uint8), "P")
    pal = [0, 0, 0]
    for k in range(255):
        pal.extend(colour(k))
    img.putpalette(pal)
    return img


def mask_annotation(k: int, prob: np.ndarray, name: str, mask: np.ndarray, segmentation: bool = True) -> dict:
    """COCO-style annotation of prompt k's mask: its RLE (if `segmentation`), area (also as a
    share of the image, and the "present" answer it gives), bbox and the probability map's max
    and mean. The RLE files of the CLI and the HTTP JSON both use it."""
    ann = {"index": k, "prompt": name}
    if segmentation:
        ann["segmentation"] = rle_mod.encode(mask)
    area = int(mask.sum())
    fraction = area / mask.size if mask.size else 0.0
    ann.update({
        "area": area,
        "area_fraction": fraction,
        "present": present_by_area(fraction),
        "bbox": rle_mod.bbox(mask),
        "score": float(prob.max()) if prob.size else 0.0,
        "mean_probability": float(prob.mean()) if prob.size else 0.0,
    })
    return ann


def rle_annotation(k: int, prob: np.ndarray, name: str, threshold: float) -> dict:
    """`mask_annotation` of the mask at `threshold`."""
    return mask_annotation(k, prob, name, prob >= threshold)


# ---------------------------------------------------------------- atomic file writing


def write_png(path: Path, img: Image.Image) -> Path:
    return atomic_write(path, lambda f: img.save(f, format="PNG"))


def write_npy(path: Path, array: np.ndarray) -> Path:
    return atomic_write(path, lambda f: np.save(f, array))


def write_json(path: Path, obj) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())
