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


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def _ellipse(cx: float, cy: float, rx: float, ry: float | None = None, n: int = 40) -> np.ndarray:
    return _regular(n, 1.0) * np.array([rx, rx if ry is None else ry]) + np.array([cx, cy])


def _poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=float)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24) -> np.ndarray:
    """Points of an elliptic arc from angle `start` to `stop` (radians; 0 = +x, y down)."""
    t = np.linspace(start, stop, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _add(*vertices: np.ndarray) -> tuple[Part, ...]:
    return tuple((v, True) for v in vertices)


def _build_shapes() -> Mapping[str, tuple[Part, ...]]:
    """The silhouette of every class as additive / cutting polygons (parts at least ~0.2 wide,
    so that they stay several pixels wide at the smallest object size)."""
    w = 0.33  # half width of the cross arms
    pi = np.pi
    sun_rays = [_poly((0.62 * np.cos(a - 0.22), 0.62 * np.sin(a - 0.22)), (1.05 * np.cos(a), 1.05 * np.sin(a)),
                      (0.62 * np.cos(a + 0.22), 0.62 * np.sin(a + 0.22))) for a in np.arange(8) * pi / 4]
    petals = [_ellipse(0.55 * np.cos(a), 0.55 * np.sin(a), 0.42) for a in -pi / 2 + np.arange(6) * pi / 3]
    leaf = np.concatenate([_arc(0, 0.9, 1.35, 1.35, -pi / 2 - 0.84, -pi / 2 + 0.84)[::-1] * [1, 1],
                           _arc(0, -0.9, 1.35, 1.35, pi / 2 - 0.84, pi / 2 + 0.84)[::-1]])
    shield = np.concatenate([_poly((-0.8, -0.9), (0.0, -0.72), (0.8, -0.9)),
                             _arc(0.0, -0.1, 0.8, 1.1, 0.0, pi / 2, 12), _arc(0.0, -0.1, 0.8, 1.1, pi / 2, pi, 12)])
    shapes: dict[str, tuple[Part, ...]] = {
        # fold 0
        "circle": _add(_regular(40)),
        "square": _add(_rect(-0.78, -0.78, 0.78, 0.78)),
        "triangle": _add(_regular(3, 1.15, offset=(0.0, 0.29))),
        "star": _add(_star()),
        "cross": _add(_poly((-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w),
                            (-1, w), (-1, -w), (-w, -w))),
        "heart": _add(_heart()),
        "house": (*_add(_rect(-0.7, -0.1, 0.7, 0.9), _poly((-1.0, -0.05), (0.0, -0.98), (1.0, -0.05))),
                  (_rect(-0.2, 0.38, 0.2, 0.9), False)),
        "tree": _add(_rect(-0.18, 0.2, 0.18, 1.0), _ellipse(0.0, -0.3, 0.75, 0.68)),
        "key": (*_add(_ellipse(-0.55, 0.0, 0.45)), (_ellipse(-0.55, 0.0, 0.2), False),
                *_add(_rect(-0.15, -0.14, 1.0, 0.14), _rect(0.5, 0.1, 0.7, 0.5), _rect(0.8, 0.1, 1.0, 0.4))),
        "fish": _add(_ellipse(-0.2, 0.0, 0.75, 0.45), _poly((0.4, 0.0), (1.0, -0.55), (1.0, 0.55))),
        "cloud": _add(_ellipse(-0.52, 0.15, 0.45, 0.38), _ellipse(0.47, 0.12, 0.5, 0.42), _ellipse(0.0, -0.2, 0.5),
                      _rect(-0.52, 0.1, 0.47, 0.53)),
        # fold 1
        "ring": ((_regular(40), True), (_regular(32, 0.55), False)),
        "diamond": _add(_poly((0, -1.1), (0.68, 0), (0, 1.1), (-0.68, 0))),
        "hexagon": _add(_regular(6, 1.0, phase=0.0)),
        "moon": ((_regular(40), True), (_regular(40, 0.85, offset=(0.5, -0.2)), False)),
        "arrow": _add(_poly((-1.0, -0.24), (0.15, -0.24), (0.15, -0.68), (1.05, 0.0), (0.15, 0.68), (0.15, 0.24),
                            (-1.0, 0.24))),
        "ellipse": _add(_regular(40) * np.array([1.05, 0.58])),
        "flower": _add(*petals, _ellipse(0.0, 0.0, 0.4)),
        "mushroom": _add(np.concatenate([_arc(0.0, 0.05, 0.98, 0.9, pi, 2 * pi), _poly((0.98, 0.05))]),
                         _rect(-0.25, 0.0, 0.25, 0.95)),
        "umbrella": (*_add(np.concatenate([_arc(0.0, 0.0, 1.0, 0.8, pi, 2 * pi)])),
                     *((_ellipse(x, 0.02, 0.2, 0.14), False) for x in (-0.6, 0.0, 0.6)),
                     *_add(_rect(-0.11, -0.1, 0.11, 0.85), _rect(-0.11, 0.7, 0.45, 0.92), _rect(0.25, 0.45, 0.45, 0.92))),
        "bell": _add(_poly((-0.3, -0.75), (0.3, -0.75), (0.45, -0.3), (0.55, 0.3), (0.9, 0.62), (-0.9, 0.62),
                           (-0.55, 0.3), (-0.45, -0.3)), _ellipse(0.0, -0.8, 0.18), _ellipse(0.0, 0.78, 0.22)),
        "car": _add(_rect(-1.0, -0.1, 1.0, 0.42), _poly((-0.55, -0.1), (-0.3, -0.55), (0.35, -0.55), (0.6, -0.1)),
                    _ellipse(-0.55, 0.45, 0.27), _ellipse(0.55, 0.45, 0.27)),
        # fold 2
        "pentagon": _add(_regular(5, 1.0, offset=(0.0, 0.1))),
        "rectangle": _add(_rect(-1.0, -0.48, 1.0, 0.48)),
        "semicircle": _add(_arc(0.0, 0.45, 1.0, 1.0, pi, 2 * pi, 32)),
        "trapezoid": _add(_poly((-1.0, 0.55), (1.0, 0.55), (0.48, -0.55), (-0.48, -0.55))),
        "bolt": _add(_poly((0.2, -1.0), (-0.6, 0.12), (-0.05, 0.12), (-0.3, 1.0), (0.6, -0.2), (0.05, -0.2),
                           (0.45, -1.0))),
        "hourglass": _add(_poly((-0.7, -0.95), (0.7, -0.95), (0.14, 0.0), (0.7, 0.95), (-0.7, 0.95), (-0.14, 0.0))),
        "sun": _add(_ellipse(0.0, 0.0, 0.55), *sun_rays),
        "snowman": _add(_ellipse(0.0, 0.38, 0.58), _ellipse(0.0, -0.5, 0.4)),
        "lollipop": _add(_ellipse(0.0, -0.4, 0.58), _rect(-0.12, 0.1, 0.12, 1.0)),
        "cup": ((_ellipse(0.45, -0.05, 0.42, 0.36), True), (_ellipse(0.45, -0.05, 0.2, 0.16), False),
                *_add(_poly((-0.65, -0.7), (0.4, -0.7), (0.3, 0.7), (-0.55, 0.7)))),
        "boat": _add(_poly((-1.0, 0.25), (1.0, 0.25), (0.6, 0.72), (-0.6, 0.72)), _rect(-0.06, -0.95, 0.1, 0.3),
                     _poly((-0.12, -0.85), (-0.12, 0.15), (-0.8, 0.15)), _poly((0.16, -0.7), (0.16, 0.15), (0.7, 0.15))),
        # fold 3
        "chevron": _add(_poly((-1.0, 0.1), (0.0, -0.75), (1.0, 0.1), (1.0, 0.7), (0.0, -0.15), (-1.0, 0.7))),
        "frame": ((_rect(-0.85, -0.85, 0.85, 0.85), True), (_rect(-0.45, -0.45, 0.45, 0.45), False)),
        "drop": _add(_ellipse(0.0, 0.3, 0.62), _poly((-0.6, 0.15), (0.0, -1.0), (0.6, 0.15))),
        "bone": _add(_rect(-0.62, -0.18, 0.62, 0.18), *(_ellipse(x, y, 0.26) for x in (-0.72, 0.72) for y in (-0.22, 0.22))),
        "shield": _add(shield),
        "crown": _add(_poly((-0.9, 0.6), (0.9, 0.6), (0.9, -0.7), (0.45, -0.05), (0.0, -0.8), (-0.45, -0.05),
                            (-0.9, -0.7))),
        "rocket": _add(_poly((0.0, -1.0), (0.32, -0.55), (0.32, 0.45), (0.65, 0.95), (-0.65, 0.95), (-0.32, 0.45),
                             (-0.32, -0.55))),
        "bottle": _add(_rect(-0.42, -0.2, 0.42, 0.95), _rect(-0.16, -0.92, 0.16, -0.2),
                       _poly((-0.42, -0.2), (-0.16, -0.52), (0.16, -0.52), (0.42, -0.2))),
        "hammer": _add(_rect(-0.72, -0.88, 0.72, -0.45), _rect(-0.14, -0.5, 0.14, 1.0)),
        "leaf": _add(leaf),
        "candle": _add(_rect(-0.3, -0.35, 0.3, 1.0), _ellipse(0.0, -0.68, 0.17, 0.2),
                       _poly((-0.15, -0.74), (0.0, -1.05), (0.15, -0.74))),
    }
    assert tuple(shapes) == SHAPE_CLASSES
    for parts in shapes.values():
        for vertices, _ in parts:
            vertices.setflags(write=False)
    return MappingProxyType(shapes)


SHAPES: Mapping[str, tuple[Part, ...]] = _build_shapes()

# Rotations (degrees) an object may be drawn at: objects that stand upright in the world
# (a house, a tree, a cup) tilt by at most 25 degrees; figures turn freely.
_UPRIGHT = ("heart", "house", "tree", "cloud", "mushroom", "umbrella", "bell", "car", "snowman", "lollipop", "cup",
            "boat", "drop", "shield", "crown", "rocket", "bottle", "candle", "hammer", "fish")
MAX_ROTATION: Mapping[str, float] = MappingProxyType(
    {name: (25.0 if name in _UPRIGHT else 180.0) for name in SHAPE_CLASSES}
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
    """The second tone of a textured object's stripes, dots or checks: darker, or lighter for
    dark colours (black, brown)."""
    if sum(colour) < 300:
        return tuple(int(c + (255 - c) * 0.45) for c in colour)  # type: ignore[return-value]
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
                    centre: tuple[float, float], origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Boolean (H, W): True where the base colour goes, False where the darker shade goes.

    Stripes and dots are laid out in the object's own frame, with a period of about a
    quarter of the object (at least 4 px), so they turn and scale with the object.
    `origin` (y, x): the window of the canvas the (H, W) pattern covers (same values as the
    full canvas's pattern there).
    """
    h, w = hw
    if texture == "plain":
        return np.ones((h, w), dtype=bool)
    if texture not in TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; known: {TEXTURES}")
    period = max(4.0, size_px / 4.0)
    a = np.deg2rad(rotation + 45.0)
    oy, ox = origin
    ys, xs = np.mgrid[oy:oy + h, ox:ox + w].astype(np.float32)
    xs -= centre[0]
    ys -= centre[1]
    u = xs * np.cos(a) - ys * np.sin(a)
    v = xs * np.sin(a) + ys * np.cos(a)
    if texture == "striped":
        return np.floor(u / (period / 2.0)) % 2 == 0
    if texture == "checked":
        return (np.floor(u / (period / 2.0)) + np.floor(v / (period / 2.0))) % 2 == 0
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
    if texture != "plain" and mask.any():
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # the pattern only where the mask is
        pattern = texture_pattern(texture, (y1 - y0, x1 - x0), size_px, rotation, centre, origin=(y0, x0))
        window = canvas[y0:y1, x0:x1]
        window[erode(mask)[y0:y1, x0:x1] & ~pattern] = shade(colour)


def draw_object(canvas: np.ndarray, spec: ObjectSpec) -> np.ndarray:
    """Draw `spec` into `canvas` (H, W, 3 uint8, in place); returns the painted mask (H, W bool)."""
    mask = shape_mask(spec.shape, spec.size_px, spec.rotation, spec.centre, canvas.shape[:2])
    paint(canvas, mask, spec.colour, spec.texture, spec.size_px, spec.rotation, spec.centre)
    return mask
