"""A procedurally generated "scene world" to train and test the whole pipeline without data.

Scenes of coloured, textured shapes on varied backgrounds, each with exact object
masks; captions for CLIP pretraining; PhraseCut-style referring phrases with honest
target masks; and a split of the shape classes into seen and held-out ones.

    >>> scene = generate_scene(0, SceneConfig(image_size=64))
    >>> phrases = referring_phrases(scene, target=0)
"""

from .phrases import (
    CAPTION_STYLES,
    PHRASE_KINDS,
    Phrase,
    caption,
    describe_object,
    matching_objects,
    negative_phrases,
    referring_phrases,
    sample_phrase,
    unique_description,
)
from .render import ObjectSpec, draw_object, shape_mask
from .scenes import Scene, SceneConfig, SceneObject, generate_scene, make_background
from .sheet import contact_sheet
from .splits import DEFAULT_SPLIT, WorldSplit, fold_split, seen_classes, unseen_classes
from .vocabulary import (
    BACKGROUNDS,
    COLOUR_GROUPS,
    COLOUR_NAMES,
    COLOURS,
    FUNCTION_WORDS,
    PROMPT_TEMPLATES,
    SHAPE_CLASSES,
    SHAPE_GROUPS,
    SIZES,
    TEXTURES,
    WORLD_WORDS,
    split_words,
)

__all__ = [
    "BACKGROUNDS", "CAPTION_STYLES", "COLOUR_GROUPS", "COLOUR_NAMES", "COLOURS",
    "DEFAULT_SPLIT", "FUNCTION_WORDS", "PHRASE_KINDS", "PROMPT_TEMPLATES", "SHAPE_CLASSES",
    "SHAPE_GROUPS", "SIZES", "TEXTURES", "WORLD_WORDS",
    "ObjectSpec", "Phrase", "Scene", "SceneConfig", "SceneObject", "WorldSplit",
    "caption", "contact_sheet", "describe_object", "draw_object", "fold_split",
    "generate_scene", "make_background", "matching_objects", "negative_phrases",
    "referring_phrases", "sample_phrase", "seen_classes", "shape_mask", "split_words",
    "unique_description", "unseen_classes",
]
