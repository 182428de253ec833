"""Drawing one object of the scene world into an RGB canvas.

Every shape is a set of polygons in unit coordinates (the shape fits a circle of
radius ~1 around the origin, y pointing down). They are scaled by size/2, rotated
and translated, rasterised with Pillow (no antialiasing) into a boolean mask, and
the mask's pixels are painted with the object's colour and texture. The mask
returned is therefore exactly the set of pixels that were painted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw

from .vocabulary import RGB, SHAPE_CLASSES, TEXTURES

# A shape part: vertices (N, 2) in unit coordinates and whether it adds (True) or
# cuts out (False) pixels. Parts are applied in order.
Part = tuple[np.ndarray, bool]


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2,
             offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Vertices of a regular n-gon (a circle for large n), first vertex at the top."""
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([offset[0] + radius * np.cos(t), offset[1] + radius * np.sin(t)], 1)


def _star(points: int = 5, outer: float = 1.1, inner: float = 0.45) -> np.ndarray:
    t = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([r * np.cos(t), r * np.sin(t) + 0.1], 1)


def _heart(n: int = 48) -> np.ndarray:
    t = 2 * np.pi * np.arange(n) / n
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x / 16.0, -(y + 2.5) / 15.0], 1)


def _build_shapes() -> Mapping[str, tuple[Part, ...]]:
    w = 0.33  # half width of the cross arms
    shapes: dict[str, tuple[Part, ...]] = {
        "circle": ((_regular(40), True),),
        "square": ((np.array([[-0.78, -0.78], [0.78, -0.78], [0.78, 0.78], [-0.78, 0.78]]), True),),
        "triangle": ((_regular(3, 1.15, offset=(0.0, 0.29)), True),),
        "star": ((_star(), True),),
        "cross": ((np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1],
                             [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w]]), True),),
        "heart": ((_heart(), True),),
        "ring": ((_regular(40), True), (_regular(32, 0.55), False)),
        "diamond": ((np.array([[0, -1.1], [0.68, 0], [0, 1.1], [-0.68, 0]]), True),),
        "hexagon": ((_regular(6, 1.0, phase=0.0), True),),
        "moon": ((_regular(40), True), (_regular(40, 0.85, offset=(0.5, -0.2)), False)),
        "arrow": ((np.array([[-1.0, -0.24], [0.15, -0.24], [0.15, -0.68], [1.05, 0.0],
                             [0.15, 0.68], [0.15, 0.24], [-1.0, 0.24]]), True),),
        "ellipse": ((_regular(40) * np.array([1.05, 0.58]), True),),
    }
    assert tuple(shapes) == SHAPE_CLASSES
    for parts in shapes.values():
        for vertices, _ in parts:
            vertices.setflags(write=False)
    return MappingProxyType(shapes)


SHAPES: Mapping[str, tuple[Part, ...]] = _build_shapes()

# Rotations (degrees) an object may be drawn at; others are symmetric enough or
# read badly when upside down.
MAX_ROTATION: Mapping[str, float] = MappingProxyType(
    {name: (30.0 if name == "heart" else 180.0) for name in SHAPE_CLASSES}
)


@dataclass(frozen=True)
class ObjectSpec:
    """What to draw: shape class, RGB colour, size (px, ~diameter), texture,
    rotation (degrees, counter-clockwise on screen) and centre (x, y) in pixels."""

    shape: str
    colour: RGB
    size_px: float
    texture: str = "plain"
    rotation: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)


def shade(colour: RGB) -> RGB:
    """The darker tone used for stripes and dots of a textured object."""
    return tuple(int(c * 0.55) for c in colour)  # type: ignore[return-value]


def _transform(vertices: np.ndarray, size_px: float, rotation: float,
               centre: tuple[float, float]) -> list[tuple[float, float]]:
    a = np.deg2rad(rotation)
    # Counter-clockwise on screen with y pointing down.
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    pts = vertices @ rot.T * (size_px / 2.0) + np.asarray(centre)
    return [(float(x), float(y)) for x, y in pts]


def shape_mask(shape: str, size_px: float, rotation: float, centre: tuple[float, float],
               hw: tuple[int, int]) -> np.ndarray:
    """Boolean mask (H, W) of a shape of the given size (px), rotation (deg) and centre (x, y)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPE_CLASSES}")
    h, w = hw
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for vertices, additive in SHAPES[shape]:
        draw.polygon(_transform(vertices, size_px, rotation, centre), fill=255 if additive else 0)
    return np.asarray(canvas) > 0


def texture_pattern(texture: str, hw: tuple[int, int], size_px: float, rotation: float,
                    centre: tuple[float, float]) -> np.ndarray:
    """Boolean (H, W): True where the base colour goes, False where the darker shade goes.

    Stripes and dots are laid out in the object's own frame, with a period of about a
    quarter of the object (at least 4 px), so they turn and scale with the object.
    """
    h, w = hw
    if texture == "plain":
        return np.ones((h, w), dtype=bool)
    if texture not in TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; known: {TEXTURES}")
    period = max(4.0, size_px / 4.0)
    a = np.deg2rad(rotation + 45.0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs -= centre[0]
    ys -= centre[1]
    u = xs * np.cos(a) - ys * np.sin(a)
    v = xs * np.sin(a) + ys * np.cos(a)
    if texture == "striped":
        return np.floor(u / (period / 2.0)) % 2 == 0
    du = np.mod(u, period) - period / 2.0
    dv = np.mod(v, period) - period / 2.0
    return du * du + dv * dv > (0.3 * period) ** 2


def erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion of a boolean mask (pixels outside the image count as False)."""
    p = np.pad(mask, 1, constant_values=False)
    return mask & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def paint(canvas: np.ndarray, mask: np.ndarray, colour: RGB, texture: str, size_px: float,
          rotation: float, centre: tuple[float, float]) -> None:
    """Paint the pixels of `mask` (H, W bool) of `canvas` (H, W, 3 uint8) in place.

    The texture's darker shade only goes inside a one-pixel rim of the base colour,
    so stripes and dots never eat into the silhouette.
    """
    canvas[mask] = colour
    if texture != "plain":
        pattern = texture_pattern(texture, mask.shape, size_px, rotation, centre)
        canvas[erode(mask) & ~pattern] = shade(colour)


def draw_object(canvas: np.ndarray, spec: ObjectSpec) -> np.ndarray:
    """Draw `spec` into `canvas` (H, W, 3 uint8, in place); returns the painted mask (H, W bool)."""
    mask = shape_mask(spec.shape, spec.size_px, spec.rotation, spec.centre, canvas.shape[:2])
    paint(canvas, mask, spec.colour, spec.texture, spec.size_px, spec.rotation, spec.centre)
    return mask
