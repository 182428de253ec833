"""Torch data sets made from the generated scene world.

- `WorldCaptionDataset`: (image, caption) pairs for contrastive CLIP pretraining. All
  shape classes appear, held-out ones included (as in the paper, where CLIP has seen
  the classes that segmentation training holds out).
- `WorldSegmentationDataset`: a PhraseCut+-style referring segmentation set returning
  `clipseg.datasets.sample.Sample`s. Modes:

  =========== ================================================================
  "train"     PhraseCut+: scenes drawn from the seen classes only; a random
              referring phrase of any kind ("class", "attribute", "generalized",
              "relational") for a random object; with probability
              `negative_prob` (0.2) a negative (a phrase matching nothing in the
              scene, empty mask); with probability `support_prob` a visual support
              (another scene's object of the same class, after visual prompt
              engineering) and then a class phrase, so text and support agree
              and the trainer can interpolate them; a random prompt template.
  "referring" evaluation, text: seen classes, phrases of all kinds, key = sample id.
  "zero_shot" evaluation, text: scenes of all classes that contain a held-out class;
              the phrase is a held-out class name; key = class name.
  "one_shot"  evaluation, visual: a scene containing a class (held-out by default),
              support = an engineered prompt of that class from another scene,
              no phrase; key = class name.
  "negative"  evaluation: every phrase matches nothing in the scene; empty masks.
  "zero_shot_phrases" evaluation, text: like "zero_shot", but the phrase names the
              held-out class with attributes ("red star", "large striped star"; any
              class or attribute phrase of an object of that class that contains the
              class name); key = class name.
  "zero_shot_generalized" evaluation, text: scenes of all classes that contain a held-out
              class named by a generalized group; the phrase is such a group ("something
              that grows" for a held-out tree), the target every object of the group in
              the scene (seen members too); key = the held-out class.
  "zero_shot_colours" evaluation, text: scenes of the seen classes in all colours that
              contain a held-out colour (`WorldSplit.unseen_colours`); the phrase is
              "<colour> object"; key = colour name. Only for splits holding out
              colours: no "train" or "referring" prompt names a held-out colour, and
              their scenes have the seen colours only (unless
              `WorldSplit.unseen_colours_drawn`: then only the names are held out).
  =========== ================================================================

Every sample is a pure function of (seed, index), also with DataLoader workers and
resumed runs; a training set can be as large as the number of samples a run draws
(nothing is stored), so every sample has its own scene, phrase and template. Scene seeds of different roles come from disjoint ranges
(`SEED_OFFSETS`), so evaluation scenes are never training scenes. Object-aware random crops of PhraseCut+ are left out: the world's
images are already small and object-centred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..constants import EVAL_TEMPLATE

from ..prompts.visual import VisualPromptConfig, engineer_visual_prompt
from ..datasets.sample import Sample
from ..io.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from .phrases import CAPTION_STYLES, PHRASE_KINDS, caption, describe_object, referring_phrases, negative_phrases, sample_phrase
from .scenes import Scene, SceneConfig, generate_scene
from .splits import DEFAULT_SPLIT, WorldSplit
from .vocabulary import PROMPT_TEMPLATES, SHAPE_CLASSES, SHAPE_GROUPS, split_words, with_article

# Disjoint scene-seed ranges per role.
SEED_OFFSETS: dict[str, int] = {
    "pretrain": 0,
    "train": 10_000_000,
    "support": 20_000_000,
    "referring": 30_000_000,
    "zero_shot": 40_000_000,
    "one_shot": 50_000_000,
    "negative": 60_000_000,
    "zero_shot_phrases": 70_000_000,
    "zero_shot_colours": 80_000_000,
    "zero_shot_generalized": 90_000_000,
    "prompt_use": 100_000_000,  # clipseg.world.scoring.prompt_use (95_000_000+: the demo's example)
}
_ROLE_RANGE = 10_000_000  # scene seeds of a role lie in [offset, offset + _ROLE_RANGE)
MODES: tuple[str, ...] = ("train", "referring", "zero_shot", "one_shot", "negative", "zero_shot_phrases",
                          "zero_shot_colours", "zero_shot_generalized")
EVAL_MODES: tuple[str, ...] = ("referring", "zero_shot", "zero_shot_phrases", "zero_shot_generalized",
                               "zero_shot_colours", "one_shot", "negative")
_HELD_OUT_CLASS_MODES = ("one_shot", "zero_shot", "zero_shot_phrases", "zero_shot_generalized")


def scene_tensor(scene: Scene, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Scene image -> (3, H, W) float tensor normalized with mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(scene.image)).permute(2, 0, 1).float().div_(255.0)
    return normalize(x, mean, std)


def _scene_seed(role: str, seed: int, index: int) -> int:
    return SEED_OFFSETS[role] + (seed * 1_000_003 + index) % _ROLE_RANGE


def apply_template(text: str, rng: np.random.Generator | None, templates: Sequence[str] = PROMPT_TEMPLATES) -> str:
    """Wrap a phrase in a random template (or the evaluation template when rng is None)."""
    if rng is None:
        return EVAL_TEMPLATE.format(text)
    return templates[int(rng.integers(len(templates)))].format(text)


# ---------------------------------------------------------------- CLIP pretraining


def crop_resize(image: torch.Tensor, cx: float, cy: float, side: float, size: tuple[int, int]) -> torch.Tensor:
    """Square crop (3, H, W) of `side` px centred at (cx, cy) (edges replicated outside), resized (bilinear)."""
    h, w = image.shape[-2:]
    s = max(2, int(round(side)))
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    pad = (max(0, -x0), max(0, x0 + s - w), max(0, -y0), max(0, y0 + s - h))
    x = F.pad(image[None], pad, mode="replicate") if any(pad) else image[None]
    x = x[:, :, y0 + pad[2]: y0 + pad[2] + s, x0 + pad[0]: x0 + pad[0] + s]
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)[0]


def object_caption(obj, rng: np.random.Generator, bare_prob: float = 0.4) -> str:
    """A caption of one object: 'a large red star', 'a photo of a dotted star.', 'star.'.

    With probability `bare_prob` only the class is named.
    """
    text = obj.shape if rng.random() < bare_prob else describe_object(obj, rng)
    r = rng.random()
    if r < 0.5:
        return apply_template(text, rng)
    return with_article(text) if r < 0.85 else text


class WorldCaptionDataset(Dataset):
    """(image (3,H,W), caption) pairs for CLIP pretraining, from `scenes` scenes of all classes.

    Item i shows scene i % scenes with a caption drawn from (seed, i): with
    `captions_per_scene` > 1 the same image comes back with other captions (style,
    attributes mentioned, object order); `style_weights` ({"list": 1, "count": 2, ...},
    missing styles weigh 0; default uniform) biases the caption styles.

    Object views (`object_crop_prob`): that share of the items is a close-up of one
    random object of the scene instead of the whole scene - a square crop of
    `crop_scale` (min, max) times the object's size around its centre, shifted by up to
    `crop_jitter` of the crop side, resized to the image size - captioned with that
    object only ("a photo of a large red star."; with probability `bare_caption_prob` the class
    only: "a photo of a star."). A ViT trained from scratch learns shapes
    much faster from such views, because the object no longer lands anywhere relative to
    the patch grid; whole scenes keep it used to the layouts it will segment. With
    `crop_size` the views are rendered at that side instead of the image size: at 32 px
    (a 4 x 4 grid of 8 px patches, the ViT's positional embeddings resized to it) the
    object has about the pixel size it has in a whole 64 px scene and the view has a
    quarter of the tokens. (Measured on the world: a ViT fits 32 px close-ups much faster
    than 64 px ones, but CLIP pretraining with them classified whole scenes only a little
    better, and 64 px close-ups worse; see docs/world.md.) Items then differ in size; the
    collate of `clipseg.training.clip_pretrain` batches them by size.

    Scenes are generated on first use and kept in memory (`cache`; 64 px scenes take
    12 KiB each).
    """

    def __init__(self, scenes: int, captions_per_scene: int = 1, seed: int = 0,
                 scene_config: SceneConfig | None = None, classes: Sequence[str] | None = None,
                 cache: bool = True, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 style_weights: dict[str, float] | None = None, object_crop_prob: float = 0.0,
                 crop_scale: tuple[float, float] = (1.3, 2.6), crop_jitter: float = 0.15,
                 crop_size: int | None = None, bare_caption_prob: float = 0.4):
        if not 0 <= object_crop_prob <= 1 or not 0 <= bare_caption_prob <= 1:
            raise ValueError("object_crop_prob and bare_caption_prob must lie in [0, 1]")
        if crop_size is not None and crop_size < 1:
            raise ValueError("crop_size must be positive")
        self.object_crop_prob, self.crop_scale, self.crop_jitter = object_crop_prob, tuple(crop_scale), crop_jitter
        self.crop_size, self.bare_caption_prob = crop_size, bare_caption_prob
        if scenes < 1 or captions_per_scene < 1:
            raise ValueError("scenes and captions_per_scene must be positive")
        unknown = set(style_weights or {}) - set(CAPTION_STYLES)
        if unknown:
            raise ValueError(f"unknown caption styles {sorted(unknown)}; known: {CAPTION_STYLES}")
        w = np.array([(style_weights or {}).get(k, 0.0 if style_weights else 1.0) for k in CAPTION_STYLES], float)
        if w.sum() <= 0:
            raise ValueError("style_weights must give some style a positive weight")
        self.style_p = w / w.sum()
        self.scenes, self.captions_per_scene, self.seed = scenes, captions_per_scene, seed
        self.scene_config = scene_config or SceneConfig()
        self.classes = tuple(classes) if classes is not None else SHAPE_CLASSES
        self.cache = cache
        self.mean, self.std = mean, std
        self._cache: dict[int, Scene] = {}

    def __len__(self) -> int:
        return self.scenes * self.captions_per_scene

    def scene(self, index: int) -> Scene:
        """The scene shown by item `index`."""
        k = index % self.scenes
        if k in self._cache:
            return self._cache[k]
        scene = generate_scene(_scene_seed("pretrain", self.seed, k), self.scene_config, self.classes)
        if self.cache:
            self._cache[k] = scene
        return scene

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        scene = self.scene(index)
        rng = np.random.default_rng([self.seed, index])
        image = scene_tensor(scene, self.mean, self.std)
        if self.object_crop_prob and scene.objects and rng.random() < self.object_crop_prob:
            obj = scene.objects[int(rng.integers(len(scene.objects)))]
            return self._object_view(image, obj, rng), object_caption(obj, rng, self.bare_caption_prob)
        style = CAPTION_STYLES[int(rng.choice(len(CAPTION_STYLES), p=self.style_p))]
        return image, caption(scene, rng, style)

    def _object_view(self, image: torch.Tensor, obj, rng: np.random.Generator) -> torch.Tensor:
        x0, y0, x1, y1 = obj.bbox
        side = max(x1 - x0, y1 - y0, 2) * rng.uniform(*self.crop_scale)
        cx = (x0 + x1) / 2 + rng.uniform(-1, 1) * self.crop_jitter * side
        cy = (y0 + y1) / 2 + rng.uniform(-1, 1) * self.crop_jitter * side
        size = (self.crop_size, self.crop_size) if self.crop_size else image.shape[-2:]
        return crop_resize(image, cx, cy, side, size)


# ---------------------------------------------------------------- segmentation


@dataclass
class WorldSegmentationConfig:
    """What a `WorldSegmentationDataset` draws. See the module docstring for the modes."""

    mode: str = "train"
    size: int = 1000  # number of samples (one epoch)
    seed: int = 0
    scene: SceneConfig = field(default_factory=SceneConfig)
    split: WorldSplit = DEFAULT_SPLIT
    negative_prob: float = 0.2  # train only
    support_prob: float = 0.5  # train only: share of positives with a visual support
    kinds: tuple[str, ...] = PHRASE_KINDS  # phrase kinds of "train" and "referring"
    templates: tuple[str, ...] = PROMPT_TEMPLATES  # train: random; evaluation: EVAL_TEMPLATE
    classes: tuple[str, ...] | None = None  # one_shot: classes queried (default: held-out)
    support_size: int | None = None  # side of the visual prompt (default: image side)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {MODES}")
        if not 0 <= self.negative_prob <= 1 or not 0 <= self.support_prob <= 1:
            raise ValueError("negative_prob and support_prob must lie in [0, 1]")


class WorldSegmentationDataset(Dataset):
    """Referring segmentation samples from generated scenes (PhraseCut+-style), as `Sample`s."""

    def __init__(self, config: WorldSegmentationConfig | None = None, **overrides):
        config = config or WorldSegmentationConfig()
        if overrides:
            config = WorldSegmentationConfig(**{**config.__dict__, **overrides})
        self.config = config
        split = config.split
        self.seen = split.seen_classes()
        self.unseen = split.unseen_classes()
        if config.mode in _HELD_OUT_CLASS_MODES[1:] and not self.unseen:
            raise ValueError(f"{config.mode} needs a split with held-out classes")
        self.query_classes = tuple(config.classes) if config.classes is not None else (
            self.unseen if config.mode in _HELD_OUT_CLASS_MODES else self.seen)
        if config.mode == "zero_shot_generalized":  # held-out classes that some group names
            self.query_classes = tuple(c for c in self.query_classes if any(c in m for m in SHAPE_GROUPS.values()))
        if not self.query_classes:
            raise ValueError(f"mode {config.mode!r} has no classes to query")
        self.seen_colours = tuple(c for c in config.scene.colours if c in split.seen_colours())
        if not self.seen_colours:
            raise ValueError("the scene config has no colour that the split keeps for training")
        self.query_colours = tuple(c for c in split.unseen_colours if c in config.scene.colours)
        if config.mode == "zero_shot_colours" and not self.query_colours:
            raise ValueError("zero_shot_colours needs a split with held-out colours that scenes can have")
        # Scenes of segmentation training (and of the seen-class referring evaluation): seen
        # colours only, unless held-out colours are only held out by name.
        self.train_scene = config.scene if split.unseen_colours_drawn else replace(config.scene, colours=self.seen_colours)
        side = min(config.scene.hw)
        self.prompt_config = VisualPromptConfig(size=config.support_size or side)

    def __len__(self) -> int:
        return self.config.size

    # -- helpers -----------------------------------------------------------------------
    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, MODES.index(self.config.mode), index])

    def _scene_with(self, rng: np.random.Generator, role: str, wanted: Sequence[str],
                    classes: Sequence[str], scene_config: SceneConfig | None = None,
                    attribute: str = "shape", tries: int = 40) -> tuple[Scene, str]:
        """A scene (drawn from `classes`) containing an object whose `attribute` ("shape" or
        "colour") is one of `wanted`, and that value."""
        scene_config = scene_config or self.config.scene
        for _ in range(tries):
            scene = generate_scene(int(rng.integers(_ROLE_RANGE)) + SEED_OFFSETS[role], scene_config, classes)
            present = [c for c in wanted if any(getattr(o, attribute) == c for o in scene.objects)]
            if present:
                return scene, present[int(rng.integers(len(present)))]
        # Rare fallback: a scene of the wanted value only.
        value = wanted[int(rng.integers(len(wanted)))]
        seed = int(rng.integers(_ROLE_RANGE)) + SEED_OFFSETS[role]
        if attribute == "shape":
            return generate_scene(seed, scene_config, (value,)), value
        return generate_scene(seed, replace(scene_config, colours=(value,)), classes), value

    def support_for(self, cls: str, rng: np.random.Generator, classes: Sequence[str],
                    scene_config: SceneConfig | None = None) -> torch.Tensor:
        """An engineered visual prompt of one object of class `cls` from another scene.

        The support scene is drawn from `cls` and two other random `classes` (so that it
        contains `cls` after one or two tries): only the object shows in the prompt anyway.
        """
        others = [c for c in classes if c != cls]
        picked = [others[i] for i in rng.permutation(len(others))[:2]]
        scene, _ = self._scene_with(rng, "support", (cls,), (cls, *picked), scene_config)
        candidates = [o for o in scene.objects if o.shape == cls]
        obj = candidates[int(rng.integers(len(candidates)))]
        image = scene_tensor(scene)
        return engineer_visual_prompt(image, torch.from_numpy(obj.mask), self.prompt_config)

    @staticmethod
    def _mask(mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(mask).float()[None]

    # -- items -------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Sample:
        return self.item_with_scene(index)[0]

    def item_with_scene(self, index: int) -> tuple[Sample, Scene]:
        """The sample of `index` and the query scene it was made from."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        return getattr(self, f"_item_{self.config.mode}")(index, self._rng(index))

    def _item_train(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        c = self.config
        scene = generate_scene(int(rng.integers(_ROLE_RANGE)) + SEED_OFFSETS["train"], self.train_scene, self.seen)
        image = scene_tensor(scene)
        if rng.random() < c.negative_prob:
            negatives = negative_phrases(scene, classes=self.seen, colours=self.seen_colours)
            phrase = negatives[int(rng.integers(len(negatives)))]
            return Sample(image, self._mask(phrase.mask), apply_template(phrase.text, rng, c.templates),
                          None, phrase.text, is_negative=True), scene
        target = int(rng.integers(len(scene.objects)))
        if rng.random() < c.support_prob:
            cls = scene.objects[target].shape
            mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape == cls])
            support = self.support_for(cls, rng, self.seen, self.train_scene)
            return Sample(image, self._mask(mask), apply_template(cls, rng, c.templates), support, cls), scene
        phrase = sample_phrase(scene, target, rng, c.kinds, c.split.unseen_colours)
        return Sample(image, self._mask(phrase.mask), apply_template(phrase.text, rng, c.templates),
                      None, scene.objects[target].shape), scene

    def _item_referring(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        scene = generate_scene(_scene_seed("referring", self.config.seed, index), self.train_scene, self.seen)
        target = int(rng.integers(len(scene.objects)))
        phrase = sample_phrase(scene, target, rng, self.config.kinds, self.config.split.unseen_colours)
        return Sample(scene_tensor(scene), self._mask(phrase.mask), apply_template(phrase.text, None),
                      None, f"referring-{index}"), scene

    def _item_zero_shot(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        # Query classes cycle so every class gets the same number of samples.
        cls = self.query_classes[index % len(self.query_classes)]
        scene, _ = self._scene_with(rng, "zero_shot", (cls,), self.config.split.classes)
        mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape == cls])
        return Sample(scene_tensor(scene), self._mask(mask), apply_template(cls, None), None, cls), scene

    def _item_zero_shot_phrases(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        cls = self.query_classes[index % len(self.query_classes)]
        scene, _ = self._scene_with(rng, "zero_shot_phrases", (cls,), self.config.split.classes)
        targets = [i for i, o in enumerate(scene.objects) if o.shape == cls]
        target = targets[int(rng.integers(len(targets)))]
        options = [p for p in referring_phrases(scene, target, ("class", "attribute")) if cls in split_words(p.text)]
        phrase = options[int(rng.integers(len(options)))]
        return Sample(scene_tensor(scene), self._mask(phrase.mask), apply_template(phrase.text, None), None, cls), scene

    def _item_zero_shot_generalized(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        cls = self.query_classes[index % len(self.query_classes)]
        scene, _ = self._scene_with(rng, "zero_shot_generalized", (cls,), self.config.split.classes)
        groups = [g for g, members in SHAPE_GROUPS.items() if cls in members]
        group = groups[int(rng.integers(len(groups)))]
        mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape in SHAPE_GROUPS[group]])
        return Sample(scene_tensor(scene), self._mask(mask), apply_template(group, None), None, cls), scene

    def _item_zero_shot_colours(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        colour = self.query_colours[index % len(self.query_colours)]
        scene, _ = self._scene_with(rng, "zero_shot_colours", (colour,), self.seen, attribute="colour")
        mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.colour == colour])
        return Sample(scene_tensor(scene), self._mask(mask), apply_template(f"{colour} object", None), None,
                      colour), scene

    def _item_one_shot(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        # Query classes cycle so every class gets the same number of samples.
        cls = self.query_classes[index % len(self.query_classes)]
        scene, _ = self._scene_with(rng, "one_shot", (cls,), self.config.split.classes)
        mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape == cls])
        support = self.support_for(cls, rng, self.config.split.classes)
        return Sample(scene_tensor(scene), self._mask(mask), "", support, cls), scene

    def _item_negative(self, index: int, rng: np.random.Generator) -> tuple[Sample, Scene]:
        scene = generate_scene(_scene_seed("negative", self.config.seed, index), self.config.scene, self.seen)
        negatives = negative_phrases(scene, classes=self.config.split.classes)
        phrase = negatives[int(rng.integers(len(negatives)))]
        return Sample(scene_tensor(scene), self._mask(phrase.mask), apply_template(phrase.text, None),
                      None, f"negative-{index}", is_negative=True), scene


def world_training_set(size: int, **kw) -> WorldSegmentationDataset:
    """PhraseCut+-style training set on the seen classes (see `WorldSegmentationConfig`)."""
    return WorldSegmentationDataset(WorldSegmentationConfig(mode="train", size=size, **kw))


def world_evaluation_sets(size: int, **kw) -> dict[str, WorldSegmentationDataset]:
    """The evaluation sets: referring (seen, text), zero_shot (held-out, class names),
    zero_shot_phrases (held-out, attribute phrases), zero_shot_colours (held-out colours,
    only when the split holds colours out), one_shot (held-out, visual), negative."""
    split = kw.get("split", DEFAULT_SPLIT)
    modes = [m for m in EVAL_MODES if m != "zero_shot_colours" or split.unseen_colours]
    return {mode: WorldSegmentationDataset(WorldSegmentationConfig(mode=mode, size=size, **kw)) for mode in modes}
