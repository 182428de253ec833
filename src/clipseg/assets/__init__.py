"""Files shipped with clipseg, by path: the example photograph (a CC0 coffee cup, with a
hand-drawn mask of the cup for visual prompts), the generated world's example scene and visual
prompt, and `write_examples`, which puts the files the README's commands name into a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def example_image() -> Path:
    """The example photograph: a coffee cup on a saucer with a spoon, 600 x 400 (photos/LICENSE.md)."""
    return FOLDER / "photos" / "coffee.jpg"


def example_support() -> tuple[Path, Path]:
    """A visual prompt: the example photograph and a hand-drawn mask of its cup (white = the object)."""
    return example_image(), FOLDER / "photos" / "coffee-cup-mask.png"


def example_scene() -> Path:
    """The generated world's example scene (what the world model knows: shapes, colours, textures)."""
    return FOLDER / "world" / "example-scene.png"


def write_examples(folder: str | Path, video: bool = True) -> dict[str, Path]:
    """Write the README's example files into `folder` and return them by name: photo.jpg,
    photos/ (the photo and the world scene), example.jpg + example_mask.png (a visual prompt),
    poster.png (the photo at 3 x: a large image for tiles) and, with PyAV and `video`, clip.mov
    (16 frames panning over the photo). Existing files are kept as they are."""
    from PIL import Image

    out = Path(folder)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    photo, mask = example_support()
    files = {"photo.jpg": photo, "photos/coffee.jpg": photo, "photos/scene.png": example_scene(),
             "example.jpg": photo, "example_mask.png": mask}
    written: dict[str, Path] = {}
    for name, source in files.items():
        if not (out / name).exists():
            shutil.copyfile(source, out / name)
        written[name] = out / name
    image = Image.open(photo).convert("RGB")
    if not (out / "poster.png").exists():
        image.resize((image.width * 3, image.height * 3), Image.Resampling.BICUBIC).save(out / "poster.png")
    written["poster.png"] = out / "poster.png"
    if video:
        try:
            written["clip.mov"] = _write_clip(image, out / "clip.mov")
        except ImportError:  # no PyAV: the video example needs the `video` extra
            pass
    return written


def _write_clip(image, path: Path, frames: int = 16) -> Path:
    """A short pan across `image`: 320 x 240 crops moving left to right, lossless, 8 frames/s."""
    import numpy as np

    from ..io.video import write_lossless_video

    if path.exists():
        return path
    rgb = np.asarray(image)
    h, w = 240, 320
    xs = np.linspace(0, rgb.shape[1] - w, frames).round().astype(int)
    y = (rgb.shape[0] - h) // 2
    return write_lossless_video(path, (rgb[y : y + h, x : x + w] for x in xs), fps=8)
