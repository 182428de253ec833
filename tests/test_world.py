"""Tests of the procedurally generated scene world (clipseg.worldgen)."""

from __future__ import annotations

import numpy as np
import pytest

from clipseg.worldgen import (
    BACKGROUNDS,
    CAPTION_STYLES,
    COLOUR_GROUPS,
    COLOURS,
    FUNCTION_WORDS,
    PROMPT_TEMPLATES,
    SHAPE_CLASSES,
    SHAPE_GROUPS,
    SIZES,
    TEXTURES,
    WORLD_WORDS,
    ObjectSpec,
    Scene,
    SceneConfig,
    SceneObject,
    WorldSplit,
    caption,
    draw_object,
    fold_split,
    generate_scene,
    negative_phrases,
    referring_phrases,
    sample_phrase,
    seen_classes,
    shape_mask,
    split_words,
    unseen_classes,
)
from clipseg.worldgen.render import shade

N_SCENES = 200


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    """200 scenes at 64 px (also the speed smoke test: this must stay fast)."""
    config = SceneConfig(image_size=64)
    return [generate_scene(seed, config) for seed in range(N_SCENES)]


def _manual_scene(objects: list[tuple[str, str, str, str, float, tuple[float, float]]],
                  hw: tuple[int, int] = (64, 64)) -> Scene:
    """A scene drawn from explicit (shape, colour, size, texture, size_px, centre) tuples."""
    image = np.full((*hw, 3), 128, np.uint8)
    objs: list[SceneObject] = []
    for shape, colour, size, texture, size_px, centre in objects:
        mask = draw_object(image, ObjectSpec(shape, COLOURS[colour], size_px, texture, 0.0, centre))
        for o in objs:
            o.mask &= ~mask
        objs.append(SceneObject(shape, colour, size, texture, size_px, 0.0, centre, mask))
    for o in objs:
        o.update_geometry()
    return Scene(image=image, objects=objs, background="solid", seed=0)


# ---------------------------------------------------------------- scenes


def test_same_seed_same_bytes() -> None:
    for size in (64, 96):
        config = SceneConfig(image_size=size)
        for seed in (0, 7, 12345):
            a, b = generate_scene(seed, config), generate_scene(seed, config)
            assert a.image.tobytes() == b.image.tobytes()
            assert len(a.objects) == len(b.objects)
            for oa, ob in zip(a.objects, b.objects):
                assert oa.mask.tobytes() == ob.mask.tobytes()
                assert (oa.shape, oa.colour, oa.size, oa.texture) == (ob.shape, ob.colour, ob.size, ob.texture)


def test_different_seeds_differ(scenes: list[Scene]) -> None:
    images = {s.image.tobytes() for s in scenes[:50]}
    assert len(images) == 50


def test_scene_format_and_variety(scenes: list[Scene]) -> None:
    config = SceneConfig()
    for s in scenes:
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
        assert config.min_objects <= len(s.objects) <= config.max_objects
        for o in s.objects:
            assert o.mask.shape == (64, 64) and o.mask.dtype == bool
            assert o.area >= config.min_visible_pixels
            x0, y0, x1, y1 = o.bbox
            assert o.mask[y0:y1, x0:x1].sum() == o.area
            assert x0 <= o.centre[0] < x1 and y0 <= o.centre[1] < y1
    objects = [o for s in scenes for o in s.objects]
    assert {o.shape for o in objects} == set(SHAPE_CLASSES)
    assert {o.colour for o in objects} == set(COLOURS)
    assert {o.size for o in objects} == set(SIZES)
    assert {o.texture for o in objects} == set(TEXTURES)
    assert {s.background for s in scenes} == set(BACKGROUNDS)


def test_non_square_image() -> None:
    s = generate_scene(3, SceneConfig(image_size=(48, 80)))
    assert s.image.shape == (48, 80, 3)
    assert all(o.mask.shape == (48, 80) for o in s.objects)


def test_masks_match_painted_pixels(scenes: list[Scene]) -> None:
    for s in scenes:
        for o in s.objects:
            pixels = s.image[o.mask]
            colour, dark = np.array(COLOURS[o.colour]), np.array(shade(COLOURS[o.colour]))
            is_colour = (pixels == colour).all(1)
            if o.texture == "plain":
                assert is_colour.all()
            else:
                assert (is_colour | (pixels == dark).all(1)).all()
                assert is_colour.any() and (~is_colour).any()


def test_object_colours_only_inside_masks_on_solid_background() -> None:
    config = SceneConfig(image_size=64, backgrounds=("solid",))
    palette = [np.array(c) for c in COLOURS.values()] + [np.array(shade(c)) for c in COLOURS.values()]
    for seed in range(40):
        s = generate_scene(seed, config)
        union = s.union_mask(range(len(s.objects)))
        painted = np.zeros(s.hw, bool)
        for c in palette:
            painted |= (s.image == c).all(-1)
        assert np.array_equal(painted, union)


def test_masks_disjoint_and_occlusion_exact(scenes: list[Scene]) -> None:
    for s in scenes:
        count = sum(o.mask.astype(np.int32) for o in s.objects)
        assert count.max() <= 1
        full = [shape_mask(o.shape, o.size_px, o.rotation, o.position, s.hw) for o in s.objects]
        for i, o in enumerate(s.objects):
            later = np.zeros(s.hw, bool)
            for f in full[i + 1:]:
                later |= f
            assert np.array_equal(o.mask, full[i] & ~later)
            assert o.area >= SceneConfig().min_visible_fraction * full[i].sum()


def test_label_map(scenes: list[Scene]) -> None:
    s = next(s for s in scenes if len(s.objects) >= 3)
    labels = s.label_map()
    for i, o in enumerate(s.objects):
        assert np.array_equal(labels == i + 1, o.mask)
    assert np.array_equal(labels == 0, ~s.union_mask(range(len(s.objects))))


# ---------------------------------------------------------------- splits


def test_held_out_classes_never_drawn() -> None:
    seen = seen_classes()
    assert set(unseen_classes()) == set(SHAPE_CLASSES[:11]) == set(fold_split(0).unseen_classes())
    assert set(seen) | set(unseen_classes()) == set(SHAPE_CLASSES)
    config = SceneConfig(image_size=64)
    drawn = {o.shape for seed in range(N_SCENES) for o in generate_scene(seed, config, classes=seen).objects}
    assert drawn == set(seen)


def test_world_v2_is_large_enough_for_a_real_zero_shot_test() -> None:
    assert len(SHAPE_CLASSES) >= 40 and len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)
    assert len(COLOURS) >= 8 and len(TEXTURES) >= 3 and len(SHAPE_GROUPS) >= 8
    folds = [fold_split(i).unseen_classes() for i in range(4)]
    assert all(len(f) >= 10 for f in folds)
    assert not set(folds[0]) & set(folds[1])


def test_splits_keep_seen_members_in_every_group() -> None:
    for split in [WorldSplit()] + [fold_split(i) for i in range(4)]:
        for members in SHAPE_GROUPS.values():
            assert set(members) & set(split.seen_classes())
    assert {c for i in range(4) for c in fold_split(i).unseen_classes()} == set(SHAPE_CLASSES)
    with pytest.raises(ValueError):
        WorldSplit(unseen=SHAPE_GROUPS["something round"])
    with pytest.raises(ValueError):
        WorldSplit(unseen=("dragon",))
    with pytest.raises(ValueError):
        generate_scene(0, classes=("dragon",))


# ---------------------------------------------------------------- phrases


def _expected_targets(scene: Scene, text: str) -> tuple[int, ...] | None:
    """Independent reading of class / attribute / generalized phrases (None for others)."""
    if text in SHAPE_GROUPS:
        return tuple(i for i, o in enumerate(scene.objects) if o.shape in SHAPE_GROUPS[text])
    if text in COLOUR_GROUPS:
        return tuple(i for i, o in enumerate(scene.objects) if o.colour in COLOUR_GROUPS[text])
    words = text.split()
    if not set(words) <= set(SHAPE_CLASSES) | set(COLOURS) | set(SIZES) | set(TEXTURES) | {"object"}:
        return None
    return tuple(i for i, o in enumerate(scene.objects)
                 if all(w in ("object", o.shape, o.colour, o.size, o.texture) for w in words))


def test_phrase_masks_are_union_of_matching_objects(scenes: list[Scene]) -> None:
    kinds_seen = set()
    for s in scenes[:80]:
        for t in range(len(s.objects)):
            phrases = referring_phrases(s, t)
            assert len({p.text for p in phrases}) == len(phrases)
            for p in phrases:
                kinds_seen.add(p.kind)
                assert t in p.targets
                assert np.array_equal(p.mask, s.union_mask(p.targets))
                expected = _expected_targets(s, p.text)
                if expected is not None:
                    assert p.targets == expected, p.text
    assert kinds_seen == {"class", "attribute", "generalized", "relational"}


def test_relational_phrases_hold(scenes: list[Scene]) -> None:
    n_checked = 0
    for s in scenes:
        for t in range(len(s.objects)):
            for p in referring_phrases(s, t, kinds=("relational",)):
                xs = [o.centre[0] for o in s.objects]
                ys = [o.centre[1] for o in s.objects]
                if p.text == "leftmost object":
                    assert p.targets == (int(np.argmin(xs)),)
                elif p.text == "bottommost object":
                    assert p.targets == (int(np.argmax(ys)),)
                elif p.text == "largest object":
                    assert p.targets == (int(np.argmax([o.area for o in s.objects])),)
                elif p.text.startswith("object left of the "):
                    ref = _expected_targets(s, p.text[len("object left of the "):])
                    assert ref is not None and len(ref) == 1
                    others = [i for i in range(len(xs)) if i != ref[0]]
                    assert p.targets == tuple(i for i in others if xs[i] < xs[ref[0]])
                else:
                    continue
                n_checked += 1
    assert n_checked > 50


def test_phrase_with_two_matching_objects() -> None:
    s = _manual_scene([("circle", "red", "small", "plain", 14, (12, 12)),
                       ("circle", "red", "large", "striped", 22, (44, 44)),
                       ("square", "red", "small", "plain", 14, (50, 12)),
                       ("circle", "blue", "small", "dotted", 14, (12, 50))])
    by_text = {p.text: p for p in referring_phrases(s, 0)}
    assert by_text["red circle"].targets == (0, 1)
    assert by_text["circle"].targets == (0, 1, 3)
    assert by_text["small red circle"].targets == (0,)
    assert by_text["red object"].targets == (0, 1, 2)
    assert by_text["something round"].targets == (0, 1, 3)
    assert by_text["leftmost red circle"].targets == (0,)
    assert by_text["object left of the square"].targets == (0, 1, 3)
    assert np.array_equal(by_text["red circle"].mask, s.objects[0].mask | s.objects[1].mask)


def test_negative_phrases_match_nothing(scenes: list[Scene]) -> None:
    for s in scenes[:30]:
        for p in negative_phrases(s, classes=seen_classes()):
            assert not p.mask.any() and p.targets == ()
            expected = _expected_targets(s, p.text)
            assert expected == ()
            assert not set(p.text.split()) & set(unseen_classes())


def test_sample_phrase_never_picks_excluded_words(scenes: list[Scene]) -> None:
    rng = np.random.default_rng(0)
    for scene in scenes[:60]:
        for target, obj in enumerate(scene.objects):
            for _ in range(3):
                phrase = sample_phrase(scene, target, rng, exclude_words=(obj.colour, "left"))
                assert not {obj.colour, "left"} & set(split_words(phrase.text))
                assert target in phrase.targets


def test_sample_phrase_is_deterministic(scenes: list[Scene]) -> None:
    s = next(s for s in scenes if len(s.objects) >= 3)
    a = [sample_phrase(s, 1, np.random.default_rng(5)).text for _ in range(3)]
    b = [sample_phrase(s, 1, np.random.default_rng(5)).text for _ in range(3)]
    assert a == b


# ---------------------------------------------------------------- words


def test_captions_and_phrases_use_world_words(scenes: list[Scene]) -> None:
    vocab = set(WORLD_WORDS)
    assert set(FUNCTION_WORDS) <= vocab
    for template in PROMPT_TEMPLATES:
        assert set(split_words(template)) <= vocab
    rng = np.random.default_rng(0)
    texts = []
    for s in scenes:
        texts.append(caption(s, rng))
        texts += [caption(s, rng, style) for style in CAPTION_STYLES]
        texts += [p.text for p in referring_phrases(s, 0)]
        texts += [p.text for p in negative_phrases(s)]
    for text in texts:
        assert set(split_words(text)) <= vocab, text


def test_caption_mentions_every_object(scenes: list[Scene]) -> None:
    rng = np.random.default_rng(1)
    for s in scenes[:50]:
        for style in CAPTION_STYLES:
            words = split_words(caption(s, rng, style))
            for o in s.objects:
                assert o.shape in words or o.shape + "s" in words or o.shape + "es" in words
    again = [caption(s, np.random.default_rng(3)) for s in scenes[:10]]
    assert again == [caption(s, np.random.default_rng(3)) for s in scenes[:10]]


def test_texture_window_equals_the_full_canvas_pattern() -> None:
    """paint() computes textures only inside the object's box; the values there are the full canvas's."""
    from clipseg.worldgen.render import texture_pattern

    for texture in ("striped", "dotted", "checked"):
        full = texture_pattern(texture, (128, 128), 40.0, 33.0, (60.5, 70.2))
        window = texture_pattern(texture, (30, 50), 40.0, 33.0, (60.5, 70.2), origin=(41, 20))
        assert np.array_equal(full[41:71, 20:70], window)
