"""The concepts of the scene world, kept as plain data.

Everything that can be drawn or said about a scene is listed here: shape classes,
colours, sizes, textures, background kinds, the "generalized" groups used for
prompts such as "something round", the relational words, and the prompt templates
of PhraseCut+. `WORLD_WORDS` is the closed set of words that any caption or
referring phrase of this package can contain (see `split_words`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from ...prompts.templates import PROMPT_TEMPLATES

RGB = tuple[int, int, int]

# Ordered so that the four contiguous folds of three (see splits.fold_split) each
# leave every generalized group with seen members.
SHAPE_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle",
    "star", "cross", "heart",
    "ring", "diamond", "hexagon",
    "moon", "arrow", "ellipse",
)

SHAPE_PLURALS: Mapping[str, str] = MappingProxyType(
    {name: ("crosses" if name == "cross" else name + "s") for name in SHAPE_CLASSES}
)

COLOURS: Mapping[str, RGB] = MappingProxyType({
    "red": (220, 40, 40),
    "orange": (245, 140, 25),
    "yellow": (240, 215, 40),
    "green": (40, 170, 60),
    "cyan": (40, 205, 215),
    "blue": (40, 80, 225),
    "purple": (150, 60, 195),
    "pink": (245, 125, 190),
})
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

SIZES: tuple[str, ...] = ("small", "large")
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")

# Background kinds and the adjective used for them in captions.
BACKGROUNDS: tuple[str, ...] = ("solid", "gradient", "noise", "clutter")
BACKGROUND_WORDS: Mapping[str, str] = MappingProxyType({
    "solid": "plain",
    "gradient": "gradient",
    "noise": "noisy",
    "clutter": "cluttered",
})

# Generalized prompts (like the paper's affordance / attribute queries) -> the
# shape classes they refer to.
SHAPE_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "something round": ("circle", "ring", "ellipse", "moon"),
    "something pointy": ("star", "triangle", "arrow", "diamond"),
    "something with straight edges": (
        "square", "triangle", "hexagon", "diamond", "cross", "arrow", "star",
    ),
    "something with curved edges": ("circle", "ring", "ellipse", "moon", "heart"),
})
# Generalized prompts over colours -> the colour names they refer to.
COLOUR_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "something in a warm colour": ("red", "orange", "yellow", "pink"),
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


def split_words(text: str) -> list[str]:
    """Lower-case words of a caption or phrase (punctuation and template braces dropped)."""
    return re.findall(r"[a-z]+", text.lower())


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
