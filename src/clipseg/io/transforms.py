"""Image <-> tensor conversions and the resize rules of the model input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from .arrays import pil_to_array, to_input_array

from ..constants import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class InputTransform:
    """How an image becomes the model's input tensor.

    size: side of the square input (352 for the released models); with keep_aspect the
        longer side is `size` and the shorter one keeps the aspect ratio.
    multiple: sides are rounded to a multiple of this (the ViT patch size).
    """

    size: int = 352
    keep_aspect: bool = False
    multiple: int = 16
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def input_hw(self, height: int, width: int) -> tuple[int, int]:
        """Model input (H, W) for an image of the given size."""
        if not self.keep_aspect:
            return self.size, self.size
        scale = self.size / max(height, width)
        h = max(self.multiple, round(height * scale / self.multiple) * self.multiple)
        w = max(self.multiple, round(width * scale / self.multiple) * self.multiple)
        return h, w

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """RGB PIL image -> normalized float tensor (3, H, W) at the model's input size."""
        return to_input(image, self.input_hw(image.height, image.width), self.mean, self.std)


def to_input(image: Image.Image, hw: tuple[int, int], mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """RGB PIL image -> normalized float tensor (3, H, W), resized (bilinear) to hw = (H, W) where it
    differs: `arrays.to_input_array`, the one implementation the torch-free runtime shares."""
    return torch.from_numpy(to_input_array(image, hw, mean, std))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    return torch.from_numpy(pil_to_array(image))


def normalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """(..., 3, H, W) in [0, 1] -> normalized with per-channel mean/std."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def denormalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return x * s + m


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) logits or probabilities -> (N, H, W), bilinear (size = (H, W))."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
