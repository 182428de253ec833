"""Referring phrases and captions for scenes of the world.

A `Phrase` carries its text and the honest target: the indices of *all* objects of
the scene it describes and the union of their masks. "red circle" in a scene with
two red circles refers to both. Phrases are bare noun phrases ("large blue
square", "something round", "object left of the red circle") so that the
PhraseCut+ templates ("a photo of a {}.") can wrap them.

Phrase kinds:
- "class":       "circle"
- "attribute":   "red circle", "large striped blue square", "red object", "dotted object"
- "generalized": "something round", "something in a warm colour"
- "relational":  "object left of the red circle", "leftmost object", "largest red circle"
- "negative":    phrases matching nothing in the scene (empty mask), see `negative_phrases`
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from .scenes import Scene, SceneObject
from .vocabulary import (
    BACKGROUND_WORDS,
    COLOUR_GROUPS,
    COLOUR_NAMES,
    NUMBER_WORDS,
    PROMPT_TEMPLATES,
    SHAPE_CLASSES,
    SHAPE_GROUPS,
    SHAPE_PLURALS,
    split_words,
    with_article,
)

PHRASE_KINDS: tuple[str, ...] = ("class", "attribute", "generalized", "relational")
CAPTION_STYLES: tuple[str, ...] = ("list", "background", "count", "template")

# Attribute order inside a noun phrase: "large striped red circle".
_ATTRIBUTES: tuple[str, ...] = ("size", "texture", "colour")
# Two objects are only compared ("left of", "leftmost") when their centres differ by
# at least this fraction of the image side; phrases that would need a closer call
# are not produced.
RELATION_MARGIN = 0.08
# "largest"/"smallest" need the area ratio to the runner-up to be at least this.
AREA_RATIO = 1.3


@dataclass
class Phrase:
    """A phrase, its kind, the indices of the objects it refers to, and their mask union (H, W bool)."""

    text: str
    kind: str
    targets: tuple[int, ...]
    mask: np.ndarray = field(repr=False)


def _make(scene: Scene, text: str, kind: str, targets: Sequence[int]) -> Phrase:
    targets = tuple(sorted(targets))
    return Phrase(text, kind, targets, scene.union_mask(targets))


def matching_objects(scene: Scene, shape: str | None = None, colour: str | None = None,
                     size: str | None = None, texture: str | None = None) -> tuple[int, ...]:
    """Indices of the objects having all the given attributes (None = any)."""
    wanted = {"shape": shape, "colour": colour, "size": size, "texture": texture}
    return tuple(i for i, o in enumerate(scene.objects)
                 if all(v is None or getattr(o, k) == v for k, v in wanted.items()))


def noun_phrase(obj: SceneObject, attributes: Sequence[str], with_shape: bool = True) -> str:
    """'large striped red circle' from the chosen attributes ('size', 'texture', 'colour')."""
    words = [getattr(obj, a) for a in _ATTRIBUTES if a in attributes]
    return " ".join(words + [obj.shape if with_shape else "object"])


def unique_description(scene: Scene, index: int) -> str | None:
    """The shortest attribute phrase that matches only object `index`, or None."""
    obj = scene.objects[index]
    for n in range(len(_ATTRIBUTES) + 1):
        for attrs in itertools.combinations(_ATTRIBUTES, n):
            chosen = {a: getattr(obj, a) for a in attrs}
            if matching_objects(scene, shape=obj.shape, **chosen) == (index,):
                return noun_phrase(obj, attrs)
    return None


# ---------------------------------------------------------------- phrase kinds


def _class_phrases(scene: Scene, target: int) -> list[Phrase]:
    shape = scene.objects[target].shape
    return [_make(scene, shape, "class", matching_objects(scene, shape=shape))]


def _attribute_phrases(scene: Scene, target: int) -> list[Phrase]:
    obj = scene.objects[target]
    out = []
    for n in range(1, len(_ATTRIBUTES) + 1):
        for attrs in itertools.combinations(_ATTRIBUTES, n):
            chosen = {a: getattr(obj, a) for a in attrs}
            for with_shape in (True, False):
                shape = obj.shape if with_shape else None
                out.append(_make(scene, noun_phrase(obj, attrs, with_shape), "attribute",
                                 matching_objects(scene, shape=shape, **chosen)))
    return out


def _generalized_phrases(scene: Scene, target: int) -> list[Phrase]:
    obj = scene.objects[target]
    out = []
    for text, shapes in SHAPE_GROUPS.items():
        if obj.shape in shapes:
            out.append(_make(scene, text, "generalized",
                             [i for i, o in enumerate(scene.objects) if o.shape in shapes]))
    for text, colours in COLOUR_GROUPS.items():
        if obj.colour in colours:
            out.append(_make(scene, text, "generalized",
                             [i for i, o in enumerate(scene.objects) if o.colour in colours]))
    return out


def _axis(obj: SceneObject, relation: str) -> float:
    """Coordinate that grows in the direction of the relation ('left of' -> -x, ...)."""
    x, y = obj.centre
    return {"left of": -x, "right of": x, "above": -y, "below": y}[relation]


def _relational_phrases(scene: Scene, target: int) -> list[Phrase]:
    objs = scene.objects
    if len(objs) < 2:
        return []
    margin = RELATION_MARGIN * min(scene.hw)
    out = []
    # "object left of the red circle": all objects clearly on that side of the reference.
    for ref, ref_obj in enumerate(objs):
        if ref == target:
            continue
        ref_text = unique_description(scene, ref)
        if ref_text is None:
            continue
        for relation in ("left of", "right of", "above", "below"):
            d = [_axis(o, relation) - _axis(ref_obj, relation) for o in objs]
            if any(abs(d[i]) < margin for i in range(len(objs)) if i != ref):
                continue  # some object is too close to call
            side = [i for i in range(len(objs)) if i != ref and d[i] > 0]
            if target in side:
                out.append(_make(scene, f"object {relation} the {ref_text}", "relational", side))
    # "leftmost object", "topmost star", "largest red circle": among the objects of a
    # class or of a colour and class.
    groups = [("object", list(range(len(objs))))]
    groups += [(shape, list(matching_objects(scene, shape=shape)))
               for shape in dict.fromkeys(o.shape for o in objs)]
    groups += [(f"{colour} {shape}", list(matching_objects(scene, shape=shape, colour=colour)))
               for colour, shape in dict.fromkeys((o.colour, o.shape) for o in objs)]
    for noun, members in groups:
        if target not in members or len(members) < 2:
            continue
        for word, key in (("leftmost", lambda o: -o.centre[0]), ("rightmost", lambda o: o.centre[0]),
                          ("topmost", lambda o: -o.centre[1]), ("bottommost", lambda o: o.centre[1])):
            first, second = sorted((key(objs[i]) for i in members), reverse=True)[:2]
            if key(objs[target]) == first and first - second >= margin:
                out.append(_make(scene, f"{word} {noun}", "relational", [target]))
        areas = sorted((objs[i].area for i in members), reverse=True)
        if objs[target].area == areas[0] and areas[0] >= AREA_RATIO * areas[1]:
            out.append(_make(scene, f"largest {noun}", "relational", [target]))
        if objs[target].area == areas[-1] and areas[-2] >= AREA_RATIO * areas[-1]:
            out.append(_make(scene, f"smallest {noun}", "relational", [target]))
    return out


_KIND_BUILDERS = {
    "class": _class_phrases,
    "attribute": _attribute_phrases,
    "generalized": _generalized_phrases,
    "relational": _relational_phrases,
}


def referring_phrases(scene: Scene, target: int,
                      kinds: Sequence[str] = PHRASE_KINDS) -> list[Phrase]:
    """All phrases of the given kinds that refer to object `target` (among possibly others).

    Each phrase's `targets` / `mask` are every object the phrase matches. Texts are
    unique within the returned list.
    """
    if not 0 <= target < len(scene.objects):
        raise IndexError(f"scene has {len(scene.objects)} objects, no object {target}")
    out: dict[str, Phrase] = {}
    for kind in kinds:
        for phrase in _KIND_BUILDERS[kind](scene, target):
            out.setdefault(phrase.text, phrase)
    return list(out.values())


def negative_phrases(scene: Scene, classes: Sequence[str] | None = None,
                     colours: Sequence[str] = COLOUR_NAMES) -> list[Phrase]:
    """Phrases that match no object of the scene (empty mask), kind "negative".

    Absent classes ("star"), present classes in absent colours ("blue circle" when
    the circles are red), absent colours ("green object") and generalized groups
    with no member present ("something round"). `classes` limits the shape classes named (e.g. to the
    seen classes of a split); default all.
    """
    classes = tuple(classes) if classes is not None else SHAPE_CLASSES
    texts: list[str] = []
    present = {o.shape for o in scene.objects}
    for shape in classes:
        if shape not in present:
            texts.append(shape)
        else:
            texts += [f"{c} {shape}" for c in colours if not matching_objects(scene, shape=shape, colour=c)]
    texts += [f"{c} object" for c in colours if not matching_objects(scene, colour=c)]
    texts += [t for t, shapes in SHAPE_GROUPS.items() if not present & set(shapes)]
    present_colours = {o.colour for o in scene.objects}
    texts += [t for t, cols in COLOUR_GROUPS.items() if not present_colours & set(cols)]
    return [_make(scene, t, "negative", []) for t in texts]


def sample_phrase(scene: Scene, target: int, rng: np.random.Generator,
                  kinds: Sequence[str] = PHRASE_KINDS, exclude_words: Collection[str] = ()) -> Phrase:
    """A random phrase for `target`: first a kind (uniform over kinds with phrases), then a phrase.
    Phrases containing any of `exclude_words` are never chosen (the class name always remains)."""
    excluded = set(exclude_words)
    by_kind: dict[str, list[Phrase]] = {}
    for phrase in referring_phrases(scene, target, kinds):
        if excluded and excluded.intersection(split_words(phrase.text)):
            continue
        by_kind.setdefault(phrase.kind, []).append(phrase)
    kind_list = [k for k in kinds if k in by_kind]
    options = by_kind[kind_list[int(rng.integers(len(kind_list)))]]
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------- captions


def describe_object(obj: SceneObject, rng: np.random.Generator) -> str:
    """Noun phrase for a caption, with a random subset of the object's attributes."""
    attrs = []
    if rng.random() < 0.4:
        attrs.append("size")
    if rng.random() < (0.15 if obj.texture == "plain" else 0.5):
        attrs.append("texture")
    if rng.random() < 0.75:
        attrs.append("colour")
    return noun_phrase(obj, attrs)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _count_phrase(shape: str, n: int) -> str:
    if n == 1:
        return with_article(shape)
    number = NUMBER_WORDS[n - 1] if n <= len(NUMBER_WORDS) else "many"
    return f"{number} {SHAPE_PLURALS[shape]}"


def caption(scene: Scene, rng: np.random.Generator, style: str | None = None) -> str:
    """A caption of the whole scene for contrastive (CLIP) pretraining.

    Styles (random when None): "list" ("a red circle and a small striped star on a
    noisy background"), "background" ("a noisy background with a red circle"),
    "count" ("two circles and a star"), "template" ("a photo of a red circle and a
    star."). Object order and attributes mentioned are random. Every word is in
    WORLD_WORDS.
    """
    if style is None:
        style = CAPTION_STYLES[int(rng.integers(len(CAPTION_STYLES)))]
    order = [scene.objects[i] for i in rng.permutation(len(scene.objects))]
    described = [describe_object(o, rng) for o in order]
    bg = f"{BACKGROUND_WORDS[scene.background]} background"
    if not described:
        return with_article(bg)
    if style == "list":
        text = _join([with_article(d) for d in described])
        return f"{text} on {with_article(bg)}" if rng.random() < 0.5 else text
    if style == "background":
        return f"{with_article(bg)} with {_join([with_article(d) for d in described])}"
    if style == "count":
        counts = dict.fromkeys(o.shape for o in order)
        text = _join([_count_phrase(s, sum(o.shape == s for o in order)) for s in counts])
        return f"{text} on {with_article(bg)}" if rng.random() < 0.5 else text
    if style == "template":
        template = PROMPT_TEMPLATES[int(rng.integers(len(PROMPT_TEMPLATES)))]
        rest = [with_article(d) for d in described[1:]]
        first = described[0]
        if template.endswith(" a {}."):
            template = template[: -len("a {}.")] + with_article(first).split(" ")[0] + " {}."
        elif template == "{}.":
            first = with_article(first)
        return template.format(_join([first] + rest))
    raise ValueError(f"unknown caption style {style!r}; known: {CAPTION_STYLES}")
