"""The image operations of inference in numpy, for the torch-free ONNX runtime: the model
input, bilinear resizes as torch's `F.interpolate` computes them, nearest resize, and the
Gaussian blur of visual prompts. `transforms.to_input` is `to_input_array`; the others are
tested against their torch counterparts (within 1e-6)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_input_array(image: Image.Image, hw: tuple[int, int], mean, std) -> np.ndarray:
    """RGB PIL image -> normalized float32 (3, H, W), resized (PIL bilinear) to hw = (H, W) where it differs."""
    h, w = hw
    if (image.width, image.height) != (w, h):
        image = image.resize((w, h), Image.BILINEAR)
    return normalize_array(pil_to_array(image), mean, std)


def pil_to_array(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> float32 (3, H, W) in [0, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)).astype(np.float32) / np.float32(255.0)


def normalize_array(x: np.ndarray, mean, std) -> np.ndarray:
    m = np.asarray(mean, np.float32).reshape(3, 1, 1)
    s = np.asarray(std, np.float32).reshape(3, 1, 1)
    return (x - m) / s


def _linear_weights(n_in: int, n_out: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices i0, i1 and weights of i1 for each output position (torch's rule)."""
    out = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((out + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear(x: np.ndarray, size: tuple[int, int], align_corners: bool = False) -> np.ndarray:
    """(C, h, w) -> (C, H, W) float32, bilinear as `F.interpolate(mode="bilinear")` without antialias."""
    h, w = x.shape[-2:]
    H, W = size
    if (h, w) == (H, W):
        return x.astype(np.float32, copy=False)
    y0, y1, wy = _linear_weights(h, H, align_corners)
    x0, x1, wx = _linear_weights(w, W, align_corners)
    rows = x[:, y0, :] * (1 - wy)[None, :, None] + x[:, y1, :] * wy[None, :, None]  # (C, H, w)
    return (rows[:, :, x0] * (1 - wx)[None, None, :] + rows[:, :, x1] * wx[None, None, :]).astype(np.float32)


def resize_nearest(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) -> (C, H, W) as `F.interpolate(mode="nearest")`: source floor(dst * in / out)."""
    h, w = x.shape[-2:]
    H, W = size
    ys = np.minimum(np.floor(np.arange(H) * (h / H)).astype(np.int64), h - 1)
    xs = np.minimum(np.floor(np.arange(W) * (w / W)).astype(np.int64), w - 1)
    return x[:, ys][:, :, xs]


def gaussian_blur(x: np.ndarray, kernel: int, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (C, H, W), reflect-101 borders (replicate on tiny images)."""
    half = (kernel - 1) / 2
    t = np.linspace(-half, half, kernel, dtype=np.float32)
    k = np.exp(-0.5 * (t / np.float32(sigma)) ** 2).astype(np.float32)
    k /= k.sum()
    pad = kernel // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "edge"
    y = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode=mode)
    h, w = x.shape[-2:]
    cols = sum(k[i] * y[:, :, i : i + w] for i in range(kernel))  # (C, H + 2 pad, W)
    return sum(k[i] * cols[:, i : i + h, :] for i in range(kernel)).astype(np.float32)


def mix_conditions(text, visual, text_weight):
    """The paper's mixed prompt (Sec. 3.2): w * text + (1 - w) * visual, for numpy arrays and
    torch tensors alike (a (N,) tensor of weights mixes row-wise)."""
    w = text_weight[:, None] if getattr(text_weight, "ndim", 0) == 1 else text_weight
    return w * text + (1 - w) * visual


def mask_outline(mask: np.ndarray, image_border: bool = False) -> np.ndarray:
    """(H, W) bool: the pixels of `mask` with a 4-neighbour outside it. image_border: pixels
    on the image's border count as outline too (else only edges inside the image do)."""
    padded = np.pad(mask, 1, constant_values=False) if image_border else np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner
