"""A contact sheet of scenes with mask outlines, for looking at the world."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..io.arrays import mask_outline
from .scenes import Scene


def contact_sheet(scenes: Sequence[Scene], columns: int = 4, scale: int = 3,
                  outlines: bool = True, gap: int = 4) -> np.ndarray:
    """Tile scenes (optionally with white mask outlines, drawn at `scale`) into one RGB array."""
    h, w = scenes[0].hw
    rows = -(-len(scenes) // columns)
    sh, sw = h * scale, w * scale
    sheet = np.full((rows * (sh + gap) + gap, columns * (sw + gap) + gap, 3), 255, np.uint8)
    for k, scene in enumerate(scenes):
        tile = np.asarray(Image.fromarray(scene.image).resize((sw, sh), Image.Resampling.NEAREST)).copy()
        if outlines:
            for obj in scene.objects:
                big = np.repeat(np.repeat(obj.mask, scale, 0), scale, 1)
                tile[mask_outline(big, image_border=True)] = (255, 255, 255)
        r, c = divmod(k, columns)
        y, x = gap + r * (sh + gap), gap + c * (sw + gap)
        sheet[y:y + sh, x:x + sw] = tile
    return sheet
