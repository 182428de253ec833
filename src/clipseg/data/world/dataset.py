"""Torch data sets made from the generated scene world.

- `WorldCaptionDataset`: (image, caption) pairs for contrastive CLIP pretraining. All
  shape classes appear, held-out ones included (as in the paper, where CLIP has seen
  the classes that segmentation training holds out).
- `WorldSegmentationDataset`: a PhraseCut+-style referring segmentation set returning
  `clipseg.data.sample.Sample`s. Modes:

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
  =========== ================================================================

Every sample is a pure function of (seed, index), also with DataLoader workers and
resumed runs; a training set can be as large as the number of samples a run draws
(nothing is stored), so every sample has its own scene, phrase and template. Scene seeds of different roles come from disjoint ranges
(`SEED_OFFSETS`), so evaluation scenes are never training scenes. Object-aware random crops of PhraseCut+ are left out: the world's
images are already small and object-centred.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ...prompts.visual import VisualPromptConfig, engineer_visual_prompt
from ..sample import Sample
from ..transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from .phrases import PHRASE_KINDS, caption, negative_phrases, sample_phrase
from .scenes import Scene, SceneConfig, generate_scene
from .splits import DEFAULT_SPLIT, WorldSplit
from .vocabulary import PROMPT_TEMPLATES, SHAPE_CLASSES

# Disjoint scene-seed ranges per role.
SEED_OFFSETS: dict[str, int] = {
    "pretrain": 0,
    "train": 10_000_000,
    "support": 20_000_000,
    "referring": 30_000_000,
    "zero_shot": 40_000_000,
    "one_shot": 50_000_000,
    "negative": 60_000_000,
}
_ROLE_RANGE = 10_000_000  # scene seeds of a role lie in [offset, offset + _ROLE_RANGE)
MODES: tuple[str, ...] = ("train", "referring", "zero_shot", "one_shot", "negative")
EVAL_TEMPLATE = "a photo of a {}."


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


class WorldCaptionDataset(Dataset):
    """(image (3,H,W), caption) pairs for CLIP pretraining, from `scenes` scenes of all classes.

    Item i shows scene i % scenes with a caption drawn from (seed, i): with
    `captions_per_scene` > 1 the same image comes back with other captions (style,
    attributes mentioned, object order). Scenes are generated on first use and kept in
    memory (`cache`; 64 px scenes take 12 KiB each).
    """

    def __init__(self, scenes: int, captions_per_scene: int = 1, seed: int = 0,
                 scene_config: SceneConfig | None = None, classes: Sequence[str] | None = None,
                 cache: bool = True, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        if scenes < 1 or captions_per_scene < 1:
            raise ValueError("scenes and captions_per_scene must be positive")
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
        return scene_tensor(scene, self.mean, self.std), caption(scene, rng)


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
        if config.mode == "zero_shot" and not self.unseen:
            raise ValueError("zero_shot needs a split with held-out classes")
        self.query_classes = tuple(config.classes) if config.classes is not None else (
            self.unseen if config.mode in ("one_shot", "zero_shot") else self.seen)
        if not self.query_classes:
            raise ValueError(f"mode {config.mode!r} has no classes to query")
        side = min(config.scene.hw)
        self.prompt_config = VisualPromptConfig(size=config.support_size or side)

    def __len__(self) -> int:
        return self.config.size

    # -- helpers -----------------------------------------------------------------------
    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, MODES.index(self.config.mode), index])

    def _scene_with(self, rng: np.random.Generator, role: str, wanted: Sequence[str],
                    classes: Sequence[str], tries: int = 40) -> tuple[Scene, str]:
        """A scene (drawn from `classes`) containing one of the `wanted` classes, and that class."""
        for _ in range(tries):
            scene = generate_scene(int(rng.integers(_ROLE_RANGE)) + SEED_OFFSETS[role], self.config.scene, classes)
            present = [c for c in wanted if any(o.shape == c for o in scene.objects)]
            if present:
                return scene, present[int(rng.integers(len(present)))]
        # Rare fallback: a scene of the wanted class only.
        cls = wanted[int(rng.integers(len(wanted)))]
        return generate_scene(int(rng.integers(_ROLE_RANGE)) + SEED_OFFSETS[role], self.config.scene, (cls,)), cls

    def support_for(self, cls: str, rng: np.random.Generator, classes: Sequence[str]) -> torch.Tensor:
        """An engineered visual prompt of one object of class `cls` from another scene.

        The support scene is drawn from `cls` and two other random `classes` (so that it
        contains `cls` after one or two tries): only the object shows in the prompt anyway.
        """
        others = [c for c in classes if c != cls]
        picked = [others[i] for i in rng.permutation(len(others))[:2]]
        scene, _ = self._scene_with(rng, "support", (cls,), (cls, *picked))
        candidates = [o for o in scene.objects if o.shape == cls]
        obj = candidates[int(rng.integers(len(candidates)))]
        image = scene_tensor(scene)
        return engineer_visual_prompt(image, torch.from_numpy(obj.mask), self.prompt_config)

    @staticmethod
    def _mask(mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(mask).float()[None]

    # -- items -------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = self._rng(index)
        return getattr(self, f"_item_{self.config.mode}")(index, rng)

    def _item_train(self, index: int, rng: np.random.Generator) -> Sample:
        c = self.config
        scene = generate_scene(int(rng.integers(_ROLE_RANGE)) + SEED_OFFSETS["train"], c.scene, self.seen)
        image = scene_tensor(scene)
        if rng.random() < c.negative_prob:
            negatives = negative_phrases(scene, classes=self.seen)
            phrase = negatives[int(rng.integers(len(negatives)))]
            return Sample(image, self._mask(phrase.mask), apply_template(phrase.text, rng, c.templates),
                          None, phrase.text, is_negative=True)
        target = int(rng.integers(len(scene.objects)))
        if rng.random() < c.support_prob:
            cls = scene.objects[target].shape
            mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape == cls])
            support = self.support_for(cls, rng, self.seen)
            return Sample(image, self._mask(mask), apply_template(cls, rng, c.templates), support, cls)
        phrase = sample_phrase(scene, target, rng, c.kinds)
        return Sample(image, self._mask(phrase.mask), apply_template(phrase.text, rng, c.templates),
                      None, scene.objects[target].shape)

    def _item_referring(self, index: int, rng: np.random.Generator) -> Sample:
        scene = generate_scene(_scene_seed("referring", self.config.seed, index), self.config.scene, self.seen)
        target = int(rng.integers(len(scene.objects)))
        phrase = sample_phrase(scene, target, rng, self.config.kinds)
        return Sample(scene_tensor(scene), self._mask(phrase.mask), apply_template(phrase.text, None),
                      None, f"referring-{index}")

    def _item_zero_shot(self, index: int, rng: np.random.Generator) -> Sample:
        # Query classes cycle so every class gets the same number of samples.
        cls = self.query_classes[index % len(self.query_classes)]
        scene, _ = self._scene_with(rng, "zero_shot", (cls,), self.config.split.classes)
        mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape == cls])
        return Sample(scene_tensor(scene), self._mask(mask), apply_template(cls, None), None, cls)

    def _item_one_shot(self, index: int, rng: np.random.Generator) -> Sample:
        # Query classes cycle so every class gets the same number of samples.
        cls = self.query_classes[index % len(self.query_classes)]
        scene, _ = self._scene_with(rng, "one_shot", (cls,), self.config.split.classes)
        mask = scene.union_mask([i for i, o in enumerate(scene.objects) if o.shape == cls])
        support = self.support_for(cls, rng, self.config.split.classes)
        return Sample(scene_tensor(scene), self._mask(mask), "", support, cls)

    def _item_negative(self, index: int, rng: np.random.Generator) -> Sample:
        scene = generate_scene(_scene_seed("negative", self.config.seed, index), self.config.scene, self.seen)
        negatives = negative_phrases(scene, classes=self.config.split.classes)
        phrase = negatives[int(rng.integers(len(negatives)))]
        return Sample(scene_tensor(scene), self._mask(phrase.mask), apply_template(phrase.text, None),
                      None, phrase.text, is_negative=True)


def world_training_set(size: int, **kw) -> WorldSegmentationDataset:
    """PhraseCut+-style training set on the seen classes (see `WorldSegmentationConfig`)."""
    return WorldSegmentationDataset(WorldSegmentationConfig(mode="train", size=size, **kw))


def world_evaluation_sets(size: int, **kw) -> dict[str, WorldSegmentationDataset]:
    """The four evaluation sets: referring (seen, text), zero_shot (held-out, text),
    one_shot (held-out, visual), negative."""
    return {mode: WorldSegmentationDataset(WorldSegmentationConfig(mode=mode, size=size, **kw))
            for mode in ("referring", "zero_shot", "one_shot", "negative")}
