"""One probability map -> the mask an editor wants, by `MaskOptions`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import PRESENCE_MIN_FRACTION
from . import morphology
from .options import MaskOptions


@dataclass
class EditedMask:
    """A mask made for editing.

    mask:    (H, W) bool, after every option but the feather (inverted when asked)
    alpha:   (H, W) float32 in [0, 1], the feathered mask; None without a feather
    present: the "not present" answer for the object, on the mask before grow / shrink and
             invert (an inverted mask of an absent object is the whole image, present=False)
    """

    mask: np.ndarray
    alpha: np.ndarray | None
    present: bool

    def matte(self) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the alpha, or the mask as 0 / 1 (1 = the object, or what to edit)."""
        return self.alpha if self.alpha is not None else self.mask.astype(np.float32)

    def matte8(self) -> np.ndarray:
        """(H, W) uint8: the matte as 0..255, single channel (an inpainting mask: 255 = edit)."""
        if self.alpha is None:
            return self.mask.astype(np.uint8) * 255
        return np.round(self.alpha * 255.0).astype(np.uint8)


def present_by_area(area_fraction: float, min_fraction: float = PRESENCE_MIN_FRACTION) -> bool:
    """The "not present" rule: is at least `min_fraction` of the image in the mask?"""
    return bool(area_fraction >= min_fraction)


def edit_map(prob: np.ndarray, threshold: float, options: MaskOptions | None = None,
             min_fraction: float = PRESENCE_MIN_FRACTION) -> EditedMask:
    """An (H, W) probability map -> EditedMask: smooth, threshold (>=), fill holes, remove
    small regions, decide presence, grow / shrink, invert, feather (see `MaskOptions`)."""
    options = options or MaskOptions()
    prob = np.asarray(prob, dtype=np.float32)
    options.check_size(*prob.shape)
    mask = morphology.smoothed_mask(prob, options.smooth, threshold)
    if options.fill_holes:
        mask = morphology.fill_holes(mask)
    if options.min_area:
        mask = morphology.remove_small_regions(mask, options.min_area)
    present = present_by_area(np.count_nonzero(mask) / mask.size if mask.size else 0.0, min_fraction)
    if options.grow:
        mask = morphology.grow(mask, options.grow)
    if options.invert:
        mask = ~mask
    alpha = morphology.feather(mask, options.feather) if options.feather else None
    return EditedMask(mask, alpha, present)
