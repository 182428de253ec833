"""Evaluation protocols of the paper (one runner per table) and paper-style tables.

    result = evaluate_referring(model, tokenizer, PhraseCut(root, "test"))
    print(referring_table([{"model": "mine", **result.to_dict()}]))

Command line: `clipseg evaluate PROTOCOL --weights W --data ROOT` (see cli.py).
"""

from .generalized import GeneralizedResult, evaluate_generalized
from .metrics import THRESHOLDS, BinaryCounts, MetricResult, MultiClassIoU
from .one_shot import OneShotResult, evaluate_one_shot
from .referring import ReferringResult, evaluate_referring
from .tables import render
from .visual_prompts import (
    VisualPromptResult,
    evaluate_visual_prompts,
    evaluate_visual_prompts_folds,
    table2_variants,
)
from .zero_shot import ZeroShotResult, evaluate_zero_shot

__all__ = [
    "THRESHOLDS", "BinaryCounts", "MetricResult", "MultiClassIoU",
    "GeneralizedResult", "OneShotResult", "ReferringResult", "VisualPromptResult", "ZeroShotResult",
    "evaluate_generalized", "evaluate_one_shot", "evaluate_referring", "evaluate_visual_prompts",
    "evaluate_visual_prompts_folds", "evaluate_zero_shot", "render", "table2_variants",
]  # fmt: skip
