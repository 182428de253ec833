"""Readers of the paper's data sets and of user data; each returns `clipseg.datasets.sample.Sample`s."""

from .coco20i import Coco20i, coco20i_fold_category_ids
from .common import PROMPT_TEMPLATES, SampleTransform
from .folder import CocoFolder, FolderConfig, NoSplitError, PhraseFolder
from .lvis_generalized import GENERALIZED_PROMPTS, LvisGeneralized, LvisGeneralizedConfig
from .lvis_objects import LvisObjects, LvisObjectsConfig, ObjectSample
from .oneshot import OneShotConfig
from .pascal5i import Pascal5i, pascal5i_fold_classes
from .pascal_zeroshot import (
    PascalZeroShot,
    PascalZeroShotConfig,
    PromptFilter,
    ZeroShotItem,
    is_prompt_allowed,
    unseen_classes,
)
from .phrasecut import PhraseCut, PhraseCutConfig
from .phrasecut_plus import PhraseCutPlus, PhraseCutPlusConfig
from .voc import VOC_CLASSES

__all__ = [
    "Coco20i", "coco20i_fold_category_ids", "PROMPT_TEMPLATES", "SampleTransform", "CocoFolder", "FolderConfig",
    "NoSplitError", "PhraseFolder", "GENERALIZED_PROMPTS", "LvisGeneralized", "LvisGeneralizedConfig", "LvisObjects",
    "LvisObjectsConfig", "ObjectSample", "OneShotConfig", "Pascal5i", "pascal5i_fold_classes", "PascalZeroShot",
    "PascalZeroShotConfig", "PromptFilter", "ZeroShotItem",
    "is_prompt_allowed", "unseen_classes", "PhraseCut", "PhraseCutConfig", "PhraseCutPlus",
    "PhraseCutPlusConfig", "VOC_CLASSES",
]  # fmt: skip
