"""Reading user images into RGB, with clear errors for bad input.

Every entry point of the library (Predictor, CLI, server, data sets) goes through
`load_image`, so grayscale, palette, RGBA, CMYK, 16-bit and EXIF-rotated images are
handled the same way everywhere, and a corrupt, truncated, empty, non-image or
gigantic file raises `ImageError` naming the problem instead of a deep traceback.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

# Pillow's own default bomb limit is ~89 Mpx (warning) / 179 Mpx (error). We refuse
# anything above this many pixels up front, before decoding.
DEFAULT_MAX_PIXELS = 64_000_000

ImageInput = Union[str, Path, bytes, Image.Image, np.ndarray]


class ImageError(ValueError):
    """An input could not be read as an image (the message says why)."""


def _describe(source: object) -> str:
    if isinstance(source, (str, Path)):
        return f"'{source}'"
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def _open(source: str | Path | bytes, max_pixels: int) -> Image.Image:
    name = _describe(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"image file {name} does not exist")
        if path.is_dir():
            raise ImageError(f"image path {name} is a directory, not a file")
        if path.stat().st_size == 0:
            raise ImageError(f"image file {name} is empty (0 bytes)")
        fp: io.IOBase | str = str(path)
    else:
        if len(source) == 0:
            raise ImageError("image data is empty (0 bytes)")
        fp = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(
                    f"image {name} is {w}x{h} = {w * h / 1e6:.1f} Mpx, above the limit of "
                    f"{max_pixels / 1e6:.1f} Mpx (possible decompression bomb)"
                )
            if w == 0 or h == 0:
                raise ImageError(f"image {name} has zero size ({w}x{h})")
            img.load()  # decode now so truncation errors surface here
    except ImageError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageError(f"image {name} is too large to decode safely: {e}") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name} is not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"image {name} is corrupt or truncated: {e}") from None
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB. Alpha is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if img.mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo)
        img = Image.fromarray((scaled * 255.0 + 0.5).clip(0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def array_to_image(array: np.ndarray) -> Image.Image:
    """HxW or HxWxC (C in 1, 3, 4) array, uint8/uint16/bool/float in [0, 1] -> RGB image."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"image array must be HxW or HxWx3/4, got shape {a.shape}")
    if a.size == 0:
        raise ImageError(f"image array is empty, shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("image array contains NaN or infinite values")
        a = (a.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageError(f"unsupported image array dtype {a.dtype}")
    return _to_rgb(Image.fromarray(np.ascontiguousarray(a)))


def load_image(source: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read a path, encoded bytes, PIL image or numpy array as an 8-bit RGB PIL image.

    EXIF orientation is applied, so the result is upright as a viewer shows it.
    Raises `ImageError` for anything that is not a readable image.
    """
    if isinstance(source, np.ndarray):
        return array_to_image(source)
    if isinstance(source, Image.Image):
        img = source
        if img.width * img.height > max_pixels:
            raise ImageError(f"image of {img.width}x{img.height} is above the {max_pixels / 1e6:.1f} Mpx limit")
        if img.width == 0 or img.height == 0:
            raise ImageError(f"image has zero size ({img.width}x{img.height})")
    elif isinstance(source, (str, Path, bytes)):
        img = _open(source, max_pixels)
    else:
        raise ImageError(f"cannot read an image from {type(source).__name__}")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF block: keep the pixels as stored
        pass
    return _to_rgb(img)


# formats that may hold several frames or pages (animated GIF / PNG / WebP, multi-page TIFF, MPO)
MULTI_FRAME_SUFFIXES = {".gif", ".png", ".apng", ".webp", ".tif", ".tiff", ".mpo"}


def frame_count(source: ImageInput) -> int:
    """Frames (pages) of an image file or encoded bytes; 1 for single-frame ones and anything
    unreadable. `load_image` reads the first: callers say so when there are more."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() not in MULTI_FRAME_SUFFIXES:
        return 1
    if not isinstance(source, (str, Path, bytes)):
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as img:
                return max(1, int(getattr(img, "n_frames", 1)))
    except Exception:  # the read itself reports unreadable files
        return 1


def load_mask(source: ImageInput, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask (path, image or array) as a HxW bool array; nonzero = foreground.

    `size` = (width, height) resizes it (nearest) to match an image.
    """
    if isinstance(source, np.ndarray):
        m = np.asarray(source)
        if m.ndim == 3:
            m = m.max(axis=2)
        if m.ndim != 2:
            raise ImageError(f"mask array must be HxW, got shape {source.shape}")
        mask = m > (0.5 if np.issubdtype(m.dtype, np.floating) else 0)
    else:
        img = source if isinstance(source, Image.Image) else _open(source, DEFAULT_MAX_PIXELS)
        if img.mode in ("RGBA", "LA"):
            alpha = np.asarray(img.getchannel("A"))
            mask = alpha > 0 if alpha.min() < 255 else np.asarray(img.convert("L")) > 0
        else:
            mask = np.asarray(img.convert("L")) > 0
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    return mask
