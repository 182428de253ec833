"""Which shape classes are held out of segmentation training.

Held-out (unseen) classes still appear in CLIP pretraining captions; CLIPSeg is
trained on scenes drawn with `classes=split.seen_classes()` and evaluated
zero-shot on scenes with unseen classes, mirroring the paper's generalized
zero-shot setting (Pascal unseen-4 / unseen-10) and the Pascal-5i folds.

A split can also hold out colours (`unseen_colours`): segmentation training then never
says their names and, unless `unseen_colours_drawn`, never shows an object of those
colours either, while CLIP pretraining has both.
"""

from __future__ import annotations

from dataclasses import dataclass

from .vocabulary import COLOUR_GROUPS, COLOUR_NAMES, SHAPE_CLASSES, SHAPE_GROUPS

DEFAULT_UNSEEN: tuple[str, ...] = SHAPE_CLASSES[:11]  # fold 0 of fold_split


@dataclass(frozen=True)
class WorldSplit:
    """A split of SHAPE_CLASSES into seen and unseen (held-out) classes, and of the
    colours into seen and unseen (held-out) colours (none by default).

    Every generalized group ("something round", "something in a warm colour", ...) must
    keep at least one seen member, so that generalized prompts are trainable.
    """

    unseen: tuple[str, ...] = DEFAULT_UNSEEN
    classes: tuple[str, ...] = SHAPE_CLASSES
    unseen_colours: tuple[str, ...] = ()
    unseen_colours_drawn: bool = False  # objects of held-out colours still appear in training (never named)

    def __post_init__(self) -> None:
        unknown = set(self.unseen) - set(self.classes)
        if unknown:
            raise ValueError(f"unseen classes {sorted(unknown)} not in {self.classes}")
        unknown = set(self.unseen_colours) - set(COLOUR_NAMES)
        if unknown:
            raise ValueError(f"unseen colours {sorted(unknown)} not in {COLOUR_NAMES}")
        if not self.seen_classes():
            raise ValueError("a split needs at least one seen class")
        for groups, values, held_out in ((SHAPE_GROUPS, self.classes, self.unseen),
                                         (COLOUR_GROUPS, COLOUR_NAMES, self.unseen_colours)):
            for group, members in groups.items():
                present = set(members) & set(values)
                if present and present <= set(held_out):
                    raise ValueError(f"group {group!r} would have no seen member")

    def seen_classes(self) -> tuple[str, ...]:
        """Classes used in segmentation training, in SHAPE_CLASSES order."""
        return tuple(c for c in self.classes if c not in self.unseen)

    def unseen_classes(self) -> tuple[str, ...]:
        """Held-out classes, in SHAPE_CLASSES order."""
        return tuple(c for c in self.classes if c in self.unseen)

    def seen_colours(self) -> tuple[str, ...]:
        """Colours of segmentation training, in COLOUR_NAMES order."""
        return tuple(c for c in COLOUR_NAMES if c not in self.unseen_colours)


DEFAULT_SPLIT = WorldSplit()


def seen_classes(split: WorldSplit = DEFAULT_SPLIT) -> tuple[str, ...]:
    """Seen classes of `split` (default: all but fold 0)."""
    return split.seen_classes()


def unseen_classes(split: WorldSplit = DEFAULT_SPLIT) -> tuple[str, ...]:
    """Held-out classes of `split` (default: fold 0, the first 11 classes)."""
    return split.unseen_classes()


def fold_split(fold: int, n_folds: int = 4) -> WorldSplit:
    """Pascal-5i-style fold: the `fold`-th contiguous block of SHAPE_CLASSES is unseen."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds})")
    per_fold = len(SHAPE_CLASSES) // n_folds
    return WorldSplit(unseen=SHAPE_CLASSES[fold * per_fold:(fold + 1) * per_fold])
