"""Masks ready for image editing, made from probability maps at the image's own resolution:
smoothing before the threshold, hole filling, small-region removal, grow / shrink by a disk,
inversion, feathered alpha; cut-outs and regions (numpy and OpenCV only: no torch).

    from clipseg.editing import MaskOptions, edit_map, cutout, find_regions
    edited = edit_map(prob, threshold=0.4, options=MaskOptions(grow=16, feather=8))
    edited.matte()            # (H, W) float32 in [0, 1]: the inpainting mask (1 = edit)
    cutout(image, edited)     # RGBA PIL image, alpha = the matte
    find_regions(edited.mask, padding=16)
"""

from __future__ import annotations

from .cutout import cutout
from .mask import EditedMask, edit_map
from .morphology import feather, fill_holes, grow, remove_small_regions, smooth, smoothed_mask
from .options import MaskOptions, MaskOptionsError
from .regions import REGION_ORDERS, Region, find_regions, regions_record

__all__ = ["EditedMask", "MaskOptions", "MaskOptionsError", "REGION_ORDERS", "Region", "cutout", "edit_map", "feather",
           "fill_holes", "find_regions", "grow", "regions_record", "remove_small_regions", "smooth",
           "smoothed_mask"]
