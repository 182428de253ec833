"""The sample format every data set returns and the training/evaluation loops consume."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Sample:
    """One (query image, target mask, prompt) triple.

    image: (3, H, W) float, normalized with ImageNet mean/std.
    mask: (1, H, W) float in {0, 1}; all zeros for a negative sample.
    phrase: text prompt after the prompt template; "" if the sample has none.
    support: (3, S, S) visual prompt after visual prompt engineering, or None.
    class_name: key for per-key metrics (class name; a sample id for PhraseCut); "" if n/a.
    is_negative: the prompt refers to nothing in the image (mask is empty by construction).
    valid: optional (1, H, W) bool, False on pixels to ignore in training and metrics
        (e.g. the 255 "void" border of Pascal VOC masks); None means every pixel counts.
    """

    image: torch.Tensor
    mask: torch.Tensor
    phrase: str
    support: torch.Tensor | None
    class_name: str = ""
    is_negative: bool = False
    valid: torch.Tensor | None = None


def collate(samples: list[Sample]) -> dict:
    """Batch samples for a DataLoader (`collate_fn=collate`).

    Returns {"image": (B,3,H,W), "mask": (B,1,H,W), "phrase": list[str],
    "support": (B,3,S,S) with zeros where a sample has no support, "has_support": (B,) bool,
    "class_name": list[str], "is_negative": (B,) bool, "valid": (B,1,H,W) bool}.
    When no sample has a support, "support" is zeros of the image size (B,3,H,W).
    Images (and supports) must share one size: readers resize to the model input size.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    images = torch.stack([s.image for s in samples])  # (B, 3, H, W)
    masks = torch.stack([s.mask for s in samples])  # (B, 1, H, W)
    present = [s.support for s in samples if s.support is not None]
    support_shape = present[0].shape if present else images.shape[1:]
    zeros = torch.zeros(support_shape, dtype=images.dtype)
    supports = torch.stack([s.support if s.support is not None else zeros for s in samples])  # (B, 3, S, S)
    valid = torch.stack(
        [s.valid.bool() if s.valid is not None else torch.ones_like(s.mask, dtype=torch.bool) for s in samples]
    )  # (B, 1, H, W)
    return {
        "image": images,
        "mask": masks,
        "phrase": [s.phrase for s in samples],
        "support": supports,
        "has_support": torch.tensor([s.support is not None for s in samples], dtype=torch.bool),
        "class_name": [s.class_name for s in samples],
        "is_negative": torch.tensor([s.is_negative for s in samples], dtype=torch.bool),
        "valid": valid,
    }
