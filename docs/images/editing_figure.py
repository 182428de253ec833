"""Makes docs/images/masks-for-editing.png: the world model's mask of an expression on its
example scene (scaled to 320 px), the mask grown and feathered, and the cut-out.

    python docs/images/editing_figure.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import clipseg
from clipseg.weights.registry import ASSETS_DIR

SIZE = 320
PROMPT = "a heart | a cloud"
OUT = Path(__file__).parent / "masks-for-editing.png"


def checkerboard(w: int, h: int, cell: int = 16) -> Image.Image:
    yy, xx = np.mgrid[:h, :w]
    light = ((yy // cell + xx // cell) % 2 == 0)
    return Image.fromarray(np.where(light, 235, 200).astype(np.uint8), "L").convert("RGB")


def main() -> None:
    image = Image.open(ASSETS_DIR / "world" / "example-scene.png").convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)
    predictor = clipseg.Predictor(clipseg.load("world"))
    predictor.set_image(image)
    (plain,) = predictor.edit([PROMPT])
    (soft,) = predictor.edit([PROMPT], grow=8, feather=10)
    cut = clipseg.cutout(image, soft)
    shown = checkerboard(SIZE, SIZE)
    shown.paste(cut, (0, 0), cut)
    panels = [(image, "image"), (Image.fromarray(plain.matte8()).convert("RGB"), f'mask of "{PROMPT}"'),
              (Image.fromarray(soft.matte8()).convert("RGB"), "grow 8 px, feather 10 px"),
              (shown, "cut-out (RGBA) over a checkerboard")]
    pad, caption = 8, 22
    fig = Image.new("RGB", (len(panels) * (SIZE + pad) + pad, SIZE + caption + 2 * pad), "white")
    draw = ImageDraw.Draw(fig)
    for k, (panel, text) in enumerate(panels):
        x = pad + k * (SIZE + pad)
        fig.paste(panel, (x, pad))
        draw.text((x, SIZE + pad + 5), text, fill="black")
    fig.save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
