"""The default visual prompt engineering (style "authors", see visual.py) in numpy, for the
torch-free ONNX runtime; equal to `PromptEncoder.visual_prompt_tensor` within float rounding."""

from __future__ import annotations

import numpy as np

from ..io.arrays import gaussian_blur, normalize_array, pil_to_array, resize_bilinear, resize_nearest
from ..io.image_io import ImageInput, load_image, load_mask
from .types import PromptError
from .visual_geometry import authors_crop_box, square_padding, support_size


def visual_prompt_array(image: ImageInput, mask: ImageInput, settings: dict, mean, std) -> np.ndarray:
    """(3, S, S) float32 engineered visual prompt. settings: the export's "visual_prompt"
    (size, crop, context, blur_kernel, blur_sigma, background, space, style)."""
    if settings.get("style", "authors") != "authors" or settings.get("space", "normalized") != "normalized":
        raise PromptError("the torch-free runtime engineers visual prompts in the default style only "
                          "(style 'authors', space 'normalized')")
    size = int(settings["size"])
    pil = load_image(image)
    m = load_mask(mask, size=pil.size).astype(np.float32)[None]  # (1, H, W)
    x = pil_to_array(pil)  # (3, H, W) in [0, 1]
    hw = support_size(pil.height, pil.width, size)
    if hw != (pil.height, pil.width):
        x = resize_bilinear(x, hw, align_corners=True)
        m = resize_nearest(m, hw)
    if not (m > 0.5).any():
        raise PromptError("visual prompt mask is empty: it must mark the example object")
    x = normalize_array(x, mean, std)
    k = int(settings.get("blur_kernel", 15))
    background = gaussian_blur(x, k, float(settings.get("blur_sigma", 3.0))) if k > 0 else x
    x = x * m + np.float32(settings.get("background", 0.1)) * background * (1 - m)
    if settings.get("crop", True):
        y0, y1, x0, x1 = authors_crop_box(m[0] > 0.5, float(settings.get("context", 0.1)))
        x = x[:, y0:y1, x0:x1]
    left, right, top, bottom = square_padding(*x.shape[1:])
    x = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    return resize_nearest(x, (size, size)).astype(np.float32)
