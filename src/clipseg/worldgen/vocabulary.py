"""The concepts of the scene world, kept as plain data.

Everything that can be drawn or said about a scene is listed here: shape classes,
colours, sizes, textures, background kinds, the "generalized" groups used for
prompts such as "something round", the relational words, and the prompt templates
of PhraseCut+. `WORLD_WORDS` is the closed set of words that any caption or
referring phrase of this package can contain (see `split_words`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..prompts.templates import PROMPT_TEMPLATES
from ..tokenizer.word import split_words

RGB = tuple[int, int, int]

# World v2: 44 object classes in four families (plane figures, figures with holes or cut-outs,
# everyday objects made of parts, and glyph-like signs). Ordered in four contiguous folds of
# eleven (see splits.fold_split); every fold mixes the families, and every generalized group
# keeps seen members in every fold (checked by WorldSplit).
SHAPE_CLASSES: tuple[str, ...] = (
    # fold 0
    "circle", "square", "triangle", "star", "cross", "heart", "house", "tree", "key", "fish", "cloud",
    # fold 1
    "ring", "diamond", "hexagon", "moon", "arrow", "ellipse", "flower", "mushroom", "umbrella", "bell", "car",
    # fold 2
    "pentagon", "rectangle", "semicircle", "trapezoid", "bolt", "hourglass", "sun", "snowman", "lollipop",
    "cup", "boat",
    # fold 3
    "chevron", "frame", "drop", "bone", "shield", "crown", "rocket", "bottle", "hammer", "leaf", "candle",
)

_IRREGULAR_PLURALS = {"fish": "fish", "leaf": "leaves"}


def _plural(name: str) -> str:
    if name in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[name]
    return name + ("es" if name.endswith(("s", "x", "sh", "ch")) else "s")


SHAPE_PLURALS: Mapping[str, str] = MappingProxyType({name: _plural(name) for name in SHAPE_CLASSES})

COLOURS: Mapping[str, RGB] = MappingProxyType({
    "red": (220, 40, 40),
    "orange": (245, 140, 25),
    "yellow": (240, 215, 40),
    "green": (40, 170, 60),
    "cyan": (40, 205, 215),
    "blue": (40, 80, 225),
    "purple": (150, 60, 195),
    "pink": (245, 125, 190),
    "brown": (130, 80, 35),
    "white": (248, 248, 248),
    "black": (18, 18, 18),
})
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

SIZES: tuple[str, ...] = ("small", "large")
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted", "checked")

# Background kinds and the adjective used for them in captions.
BACKGROUNDS: tuple[str, ...] = ("solid", "gradient", "noise", "clutter")
BACKGROUND_WORDS: Mapping[str, str] = MappingProxyType({
    "solid": "plain",
    "gradient": "gradient",
    "noise": "noisy",
    "clutter": "cluttered",
})

# Generalized prompts (like the paper's affordance / attribute queries: "something to sit
# on") -> the classes they refer to.
SHAPE_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "something round": ("circle", "ring", "ellipse", "moon", "sun", "drop", "snowman"),
    "something pointy": ("star", "triangle", "arrow", "diamond", "bolt", "chevron", "crown", "rocket"),
    "something with straight edges": (
        "square", "triangle", "hexagon", "diamond", "cross", "arrow", "star", "pentagon", "rectangle",
        "trapezoid", "hourglass", "chevron", "frame", "bolt",
    ),
    "something with curved edges": (
        "circle", "ring", "ellipse", "moon", "heart", "cloud", "semicircle", "drop", "leaf", "umbrella",
    ),
    "something that grows": ("tree", "flower", "mushroom", "leaf"),
    "something in the sky": ("cloud", "moon", "star", "sun", "rocket"),
    "something to travel in": ("car", "boat", "rocket"),
    "something to hold": ("key", "umbrella", "lollipop", "cup", "hammer", "bottle", "candle", "bell"),
    "something with a hole": ("ring", "frame", "key", "cup"),
})
# Generalized prompts over colours -> the colour names they refer to.
COLOUR_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "something in a warm colour": ("red", "orange", "yellow", "pink", "brown"),
    "something in a cool colour": ("green", "cyan", "blue", "purple"),
})

# Relational phrases: "object left of the red circle", "leftmost object".
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
EXTREMES: tuple[str, ...] = (
    "leftmost", "rightmost", "topmost", "bottommost", "largest", "smallest",
)

NUMBER_WORDS: tuple[str, ...] = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
)

# The PhraseCut+ prompt templates; their words belong to the world too, so a
# word-level tokenizer built from WORLD_WORDS covers templated prompts.

# Small words that glue captions and phrases together.
FUNCTION_WORDS: tuple[str, ...] = (
    "a", "an", "the", "and", "on", "of", "with", "in", "something", "object",
    "objects", "background", "many",
)


def _content_words() -> set[str]:
    words: set[str] = set(SHAPE_CLASSES) | set(SHAPE_PLURALS.values())
    words |= set(COLOUR_NAMES) | set(SIZES) | set(TEXTURES)
    words |= set(BACKGROUND_WORDS.values()) | set(EXTREMES) | set(NUMBER_WORDS)
    for phrase in (*SHAPE_GROUPS, *COLOUR_GROUPS, *RELATIONS, *PROMPT_TEMPLATES):
        words |= set(split_words(phrase))
    return words


WORLD_WORDS: tuple[str, ...] = tuple(sorted(_content_words() | set(FUNCTION_WORDS)))


def with_article(noun_phrase: str) -> str:
    """'red circle' -> 'a red circle', 'orange star' -> 'an orange star'."""
    article = "an" if noun_phrase[:1] in "aeiou" else "a"
    return f"{article} {noun_phrase}"
