"""One-shot semantic segmentation, Pascal-5i and COCO-20i (paper Sec. 5.3, Tab. 5, 6), and the
same protocol with text prompts (Tab. 7).

Each fold is a data set of Samples whose support is the engineered visual prompt of
another image of the query class (the best variant of Tab. 2) and whose phrase names the
class. mIoU averages the foreground IoU over the classes of a fold; IoU_BIN and AP come
from the fold's summed counts; the reported numbers are means over the folds, at the one
threshold with the best mean mIoU (unless a threshold is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

from ..model.clipseg import CLIPSeg
from ..tokenizer import Tokenizer
from .metrics import MetricResult
from .predict import accumulate
from .results import JsonResult, best_common_threshold


@dataclass
class OneShotResult(JsonResult):
    protocol = "one_shot"

    prompt: str  # "visual" (Tab. 5, 6) or "text" (Tab. 7)
    threshold: float
    miou: float  # means over folds
    iou_bin: float
    ap: float
    folds: list[MetricResult]
    samples: int
    skipped: int  # queries without a support image (visual prompts only)


def evaluate_one_shot(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    folds: Sequence[Dataset],
    prompt: str = "visual",
    threshold: float | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    limit: int | None = None,
    progress: bool = False,
) -> OneShotResult:
    """Score a list of folds, e.g. [Pascal5i(root, "val", fold) for fold in range(4)]."""
    runs = [accumulate(model, tokenizer, f, prompt, batch_size, num_workers, limit, progress) for f in folds]
    counts = [r.groups["all"] for r in runs]
    t = best_common_threshold(counts) if threshold is None else threshold
    per_fold = [c.result(t) for c in counts]
    return OneShotResult(
        prompt=prompt,
        threshold=t,
        miou=float(np.mean([r.miou for r in per_fold])),
        iou_bin=float(np.mean([r.iou_bin for r in per_fold])),
        ap=float(np.mean([r.ap for r in per_fold])),
        folds=per_fold,
        samples=sum(r.samples for r in runs),
        skipped=sum(r.skipped for r in runs),
    )
