"""Cut-outs: the image with the mask as its alpha channel."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .mask import EditedMask


def cutout(image: Image.Image | np.ndarray, edited: EditedMask | np.ndarray) -> Image.Image:
    """RGBA image at the image's size: alpha = the (feathered) mask, colour = the image where
    alpha > 0 and black where it is 0 (nothing of the background is kept in the file)."""
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a cut-out needs an RGB image, got an array of shape {rgb.shape}")
    if isinstance(edited, EditedMask):
        alpha = edited.matte8()
    else:
        m = np.asarray(edited)
        alpha = m.astype(np.uint8) * 255 if m.dtype == bool else np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"the mask is {alpha.shape[1]}x{alpha.shape[0]}, the image {rgb.shape[1]}x{rgb.shape[0]}")
    visible = cv2.bitwise_and(np.ascontiguousarray(rgb), np.ascontiguousarray(rgb), mask=(alpha > 0).view(np.uint8))
    return Image.fromarray(cv2.merge([*cv2.split(visible), alpha]), "RGBA")
