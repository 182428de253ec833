"""Visual prompt engineering (paper Sec. 3.2 / Tab. 2).

An example image and a mask become the image that CLIP encodes as the conditional
vector. The paper's best variant: crop around the object with some context, blur
and darken the background. Following the reference implementations, the blending
happens on the *normalized* tensor by default (`space="normalized"`), which is what
the released weights were trained with; `space="pixel"` darkens in [0, 1] RGB.

Two crop styles:

- `style="authors"` (default) is the authors' `crop_blur_highlight352` (timojl/clipseg,
  `datasets/utils.py` -> `evaluation_utils.img_preprocess`, `object_crop`, `crop_mask`,
  `pad_to_square`), the input `rd64-uni` was trained with: blur (15x15, sigma 3,
  reflect-101 borders) and darken the whole image, cut the mask's bounding rectangle with
  10 % context on each side clamped to the image, pad it to a square with zeros around
  its centre and resize it to `size` with nearest-neighbour sampling. One deliberate
  difference: their `crop_mask` clamps the right edge to the image height and the bottom
  edge to its width; on non-square images with an object past that line it returns a cut
  (or empty) crop, here the right image side is used. On square images, as in their
  training (352 x 352 crops), the two agree everywhere.
- `style="square-context"`: a square window of real image around the object (objects at
  the border re-centred, zeros only outside the image), resized bilinearly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..io.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize, normalize
from .visual_geometry import authors_crop_box, square_padding


@dataclass(frozen=True)
class VisualPromptConfig:
    """Settings of visual prompt engineering; defaults = the paper's best (Tab. 2)."""

    size: int = 352  # output side (square)
    crop: bool = True
    context: float = 0.1  # crop margin on each side, as a fraction of the object size
    blur_kernel: int = 15  # 0 disables blurring
    blur_sigma: float = 3.0
    background: float = 0.1  # background intensity factor (1.0 = not darkened)
    space: str = "normalized"  # or "pixel"
    style: str = "authors"  # or "square-context" (see the module docstring)

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"visual prompt style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.space not in ("normalized", "pixel"):
            raise ValueError(f"visual prompt space must be 'normalized' or 'pixel', got {self.space!r}")


STYLES = ("authors", "square-context")


def gaussian_blur(x: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) or (B, C, H, W) with reflect padding."""
    squeeze = x.dim() == 3
    if squeeze:
        x = x[None]
    half = (kernel - 1) / 2
    t = torch.linspace(-half, half, kernel, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad = kernel // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    y = F.pad(x, (pad, pad, pad, pad), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, kernel).expand(c, 1, 1, kernel), groups=c)
    y = F.conv2d(y, k.view(1, 1, kernel, 1).expand(c, 1, kernel, 1), groups=c)
    return y[0] if squeeze else y


def _square_crop_box(mask: torch.Tensor, context: float) -> tuple[int, int, int, int]:
    """Square box (y0, y1, x0, x1) around the mask with `context` margin; may exceed the image."""
    ys = torch.nonzero(mask.any(dim=1)).flatten()
    xs = torch.nonzero(mask.any(dim=0)).flatten()
    y0, y1 = int(ys[0]), int(ys[-1]) + 1
    x0, x1 = int(xs[0]), int(xs[-1]) + 1
    h, w = y1 - y0, x1 - x0
    y0, y1 = y0 - context * h, y1 + context * h
    x0, x1 = x0 - context * w, x1 + context * w
    side = max(y1 - y0, x1 - x0)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    y0, x0 = math.floor(cy - side / 2), math.floor(cx - side / 2)
    side = math.ceil(side)
    return y0, y0 + side, x0, x0 + side


def _pad_to_square(x: torch.Tensor) -> torch.Tensor:
    """(C, h, w) -> (C, s, s), s = max(h, w), zeros split around the centre (the authors' pad_to_square)."""
    return F.pad(x, square_padding(*x.shape[1:]))


def _crop_padded(x: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """Crop (C, H, W) to box, zero-padding where the box leaves the image."""
    y0, y1, x0, x1 = box
    _, h, w = x.shape
    pad = (max(0, -x0), max(0, x1 - w), max(0, -y0), max(0, y1 - h))
    x = F.pad(x, pad)
    y0, x0 = y0 + pad[2], x0 + pad[0]
    return x[:, y0 : y0 + (y1 - box[0]), x0 : x0 + (x1 - box[2])]


def engineer_visual_prompt(
    image: torch.Tensor,
    mask: torch.Tensor,
    config: VisualPromptConfig = VisualPromptConfig(),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> torch.Tensor:
    """Make the conditional image of a visual prompt.

    image: (3, H, W) normalized tensor; mask: (H, W) bool/float (resized to the image if needed).
    Returns (3, size, size) normalized tensor.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"visual prompt image must be (3, H, W), got {tuple(image.shape)}")
    mask = mask.to(image.device).float()
    if mask.dim() == 3:
        mask = mask[0]
    if mask.shape != image.shape[1:]:
        mask = F.interpolate(mask[None, None], size=image.shape[1:], mode="nearest")[0, 0]
    if not bool((mask > 0.5).any()):
        raise ValueError("visual prompt mask is empty: it must mark the example object")
    x = denormalize(image, mean, std) if config.space == "pixel" else image
    background = gaussian_blur(x, config.blur_kernel, config.blur_sigma) if config.blur_kernel > 0 else x
    m = mask[None]
    x = x * m + config.background * background * (1 - m)
    if config.space == "pixel":
        x = normalize(x, mean, std)
    if config.style == "authors":
        if config.crop:
            y0, y1, x0, x1 = authors_crop_box((mask > 0.5).cpu().numpy(), config.context)
            x = x[:, y0:y1, x0:x1]
        return F.interpolate(_pad_to_square(x)[None], size=(config.size, config.size), mode="nearest")[0]
    if config.crop:
        box = _square_crop_box(mask > 0.5, config.context)
        x = _crop_padded(x, box)
    else:  # pad to square around the centre
        _, h, w = x.shape
        side = max(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        x = _crop_padded(x, (y0, y0 + side, x0, x0 + side))
    return F.interpolate(x[None], size=(config.size, config.size), mode="bilinear", align_corners=False)[0]
