"""Deterministic generation of scenes: a background plus 1..N labelled objects.

`generate_scene(seed, config)` draws everything from `np.random.default_rng(seed)`,
so the same seed and config give byte-identical images and masks. Objects are
painted in order; each object's mask is what stays visible after the later objects
are painted over it (the masks of one scene are disjoint). Placement is retried
until every object keeps at least `min_visible_fraction` of its pixels and no two
objects of the same colour touch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from .render import MAX_ROTATION, paint, shape_mask
from .vocabulary import BACKGROUNDS, COLOUR_NAMES, COLOURS, SHAPE_CLASSES, SIZES, TEXTURES


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are generated.

    image_size: side of a square image, or (height, width).
    min_objects, max_objects: number of objects drawn (uniform; fewer only if
        placement fails `max_attempts` times per object, which is rare).
    backgrounds: background kinds to pick from (see `BACKGROUNDS`):
        solid colour, linear gradient, smooth + pixel noise, or clutter strokes
        (thin lines and arcs, possibly in object colours, that are not objects).
    colours, textures, sizes: the attribute values objects may take.
    small_fraction, large_fraction: object size range per size word, as a fraction
        of the shorter image side.
    min_visible_fraction: each object keeps at least this part of its pixels
        visible after occlusion by later objects.
    min_visible_pixels: and at least this many pixels.
    repeat_class_prob: probability that a new object reuses the class of an earlier
        one (gives phrases matching several objects).
    clutter_strokes: (min, max) number of strokes of a clutter background.
    max_attempts: placement tries per object.
    """

    image_size: int | tuple[int, int] = 64
    min_objects: int = 1
    max_objects: int = 4
    backgrounds: tuple[str, ...] = BACKGROUNDS
    colours: tuple[str, ...] = COLOUR_NAMES
    textures: tuple[str, ...] = TEXTURES
    sizes: tuple[str, ...] = SIZES
    small_fraction: tuple[float, float] = (0.23, 0.29)
    large_fraction: tuple[float, float] = (0.36, 0.46)
    min_visible_fraction: float = 0.6
    min_visible_pixels: int = 16
    repeat_class_prob: float = 0.25
    clutter_strokes: tuple[int, int] = (3, 8)
    max_attempts: int = 40

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError("need 1 <= min_objects <= max_objects")
        for name, values, known in (("backgrounds", self.backgrounds, BACKGROUNDS),
                                     ("colours", self.colours, COLOUR_NAMES),
                                     ("textures", self.textures, TEXTURES),
                                     ("sizes", self.sizes, SIZES)):
            unknown = set(values) - set(known)
            if not values or unknown:
                raise ValueError(f"{name} must be a non-empty subset of {known}, got {values}")

    @property
    def hw(self) -> tuple[int, int]:
        """Image (height, width)."""
        if isinstance(self.image_size, int):
            return self.image_size, self.image_size
        return int(self.image_size[0]), int(self.image_size[1])

    def size_range(self, size: str) -> tuple[float, float]:
        """Object size range in pixels for a size word."""
        lo, hi = self.small_fraction if size == "small" else self.large_fraction
        side = min(self.hw)
        return lo * side, hi * side


@dataclass
class SceneObject:
    """One object as it ended up in the scene.

    shape: its class (a name from SHAPE_CLASSES); colour, size, texture: attribute
    words; size_px, rotation (deg), position (x, y): how it was drawn;
    mask: (H, W) bool, visible pixels after occlusion; bbox: (x0, y0, x1, y1) of the
    mask, x1/y1 exclusive; centre: (x, y) centroid of the mask.
    """

    shape: str
    colour: str
    size: str
    texture: str
    size_px: float
    rotation: float
    position: tuple[float, float]
    mask: np.ndarray = field(repr=False)
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)
    centre: tuple[float, float] = (0.0, 0.0)

    @property
    def area(self) -> int:
        """Number of visible pixels."""
        return int(self.mask.sum())

    def update_geometry(self) -> None:
        """Recompute bbox and centre from the mask."""
        ys, xs = np.nonzero(self.mask)
        if len(xs) == 0:
            self.bbox, self.centre = (0, 0, 0, 0), (0.0, 0.0)
            return
        self.bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        self.centre = (float(xs.mean()), float(ys.mean()))


@dataclass
class Scene:
    """An image (H, W, 3 uint8), its objects in drawing order, the background kind and seed."""

    image: np.ndarray = field(repr=False)
    objects: list[SceneObject]
    background: str
    seed: int

    @property
    def hw(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def union_mask(self, indices: Sequence[int]) -> np.ndarray:
        """(H, W) bool union of the masks of the given objects (empty for no indices)."""
        out = np.zeros(self.hw, dtype=bool)
        for i in indices:
            out |= self.objects[i].mask
        return out

    def label_map(self) -> np.ndarray:
        """(H, W) int32: 0 for background, i + 1 for pixels of object i."""
        out = np.zeros(self.hw, dtype=np.int32)
        for i, obj in enumerate(self.objects):
            out[obj.mask] = i + 1
        return out


# ---------------------------------------------------------------- backgrounds


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation colour, so saturated object colours stand out."""
    grey = rng.uniform(65, 190)  # away from the black and white objects
    return np.clip(grey + rng.uniform(-22, 22, size=3), 0, 255)


def _gradient(hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = hw
    a, b = _muted_colour(rng), _muted_colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w]
    t = xs * np.cos(angle) + ys * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return a + (b - a) * t[..., None]


def _noise(hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = hw
    base = _muted_colour(rng)
    cells = int(rng.integers(3, 9))
    coarse = rng.normal(0, 28, size=(cells, cells)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR))
    fine = rng.normal(0, rng.uniform(6, 18), size=(h, w))
    return base + (smooth + fine)[..., None]


def _clutter(canvas: np.ndarray, rng: np.random.Generator, strokes: tuple[int, int]) -> np.ndarray:
    h, w = canvas.shape[:2]
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    width = max(1, round(min(h, w) / 64))
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        if rng.random() < 0.5:
            colour = COLOURS[COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]]
        else:
            colour = tuple(int(c) for c in np.clip(_muted_colour(rng) + rng.choice([-60, 60]), 0, 255))
        if rng.random() < 0.6:
            n = int(rng.integers(2, 5))
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(n)]
            draw.line(pts, fill=colour, width=width)
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.1, 0.4) * min(h, w)
            start = float(rng.uniform(0, 360))
            draw.arc([cx - r, cy - r, cx + r, cy + r], start, start + float(rng.uniform(40, 200)),
                     fill=colour, width=width)
    return np.asarray(img).copy()


def make_background(kind: str, hw: tuple[int, int], rng: np.random.Generator,
                    clutter_strokes: tuple[int, int] = (3, 8)) -> np.ndarray:
    """Background image (H, W, 3 uint8) of the given kind (see BACKGROUNDS)."""
    h, w = hw
    if kind == "solid":
        img = np.broadcast_to(_muted_colour(rng), (h, w, 3))
    elif kind == "gradient":
        img = _gradient(hw, rng)
    elif kind == "noise":
        img = _noise(hw, rng)
    elif kind == "clutter":
        base = _gradient(hw, rng) if rng.random() < 0.5 else np.broadcast_to(_muted_colour(rng), (h, w, 3))
        return _clutter(np.clip(base, 0, 255).astype(np.uint8), rng, clutter_strokes)
    else:
        raise ValueError(f"unknown background {kind!r}; known: {BACKGROUNDS}")
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- scenes


def _pick(rng: np.random.Generator, values: Sequence[str]) -> str:
    return values[int(rng.integers(len(values)))]


def generate_scene(seed: int, config: SceneConfig | None = None,
                   classes: Sequence[str] | None = None) -> Scene:
    """Generate the scene for `seed` (deterministic: same seed and config, same bytes).

    classes: restrict the shape classes drawn (e.g. the seen classes of a split);
        default all of SHAPE_CLASSES.
    """
    config = config or SceneConfig()
    classes = tuple(classes) if classes is not None else SHAPE_CLASSES
    unknown = set(classes) - set(SHAPE_CLASSES)
    if not classes or unknown:
        raise ValueError(f"classes must be a non-empty subset of SHAPE_CLASSES, got {classes}")
    rng = np.random.default_rng(seed)
    hw = config.hw
    background = _pick(rng, config.backgrounds)
    image = make_background(background, hw, rng, config.clutter_strokes)

    n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    objects: list[SceneObject] = []
    full_areas: list[int] = []
    attempts = 0
    while len(objects) < n_objects and attempts < config.max_attempts * n_objects:
        attempts += 1
        if objects and rng.random() < config.repeat_class_prob:
            shape = _pick(rng, [o.shape for o in objects])
        else:
            shape = _pick(rng, classes)
        colour = _pick(rng, config.colours)
        texture = _pick(rng, config.textures)
        size = _pick(rng, config.sizes)
        size_px = float(rng.uniform(*config.size_range(size)))
        rotation = float(rng.uniform(-1, 1) * MAX_ROTATION[shape])
        half = size_px / 2
        x = float(rng.uniform(half, max(half, hw[1] - half)))
        y = float(rng.uniform(half, max(half, hw[0] - half)))
        mask = shape_mask(shape, size_px, rotation, (x, y), hw)
        area = int(mask.sum())
        if area < config.min_visible_pixels:
            continue
        if not all(_still_visible(o.mask & ~mask, full, config) for o, full in zip(objects, full_areas)):
            continue
        near = _dilate(mask)
        if any(o.colour == colour and (o.mask & near).any() for o in objects):
            continue  # same-coloured objects must not touch, or they would merge into one blob
        for o in objects:
            o.mask &= ~mask
        paint(image, mask, COLOURS[colour], texture, size_px, rotation, (x, y))
        objects.append(SceneObject(shape, colour, size, texture, size_px, rotation, (x, y), mask))
        full_areas.append(area)
    for o in objects:
        o.update_geometry()
    return Scene(image=image, objects=objects, background=background, seed=seed)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """8-neighbour dilation of a boolean mask."""
    p = np.pad(mask, 1, constant_values=False)
    h, w = mask.shape
    out = mask.copy()
    for dy in range(3):
        for dx in range(3):
            out |= p[dy:dy + h, dx:dx + w]
    return out


def _still_visible(visible: np.ndarray, full_area: int, config: SceneConfig) -> bool:
    n = int(visible.sum())
    return n >= config.min_visible_pixels and n >= config.min_visible_fraction * full_area
