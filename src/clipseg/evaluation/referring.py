"""Referring expression segmentation on PhraseCut (paper Sec. 5.1, Tab. 3).

Text prompts; mIoU averages the foreground IoU over samples (class_name = task id);
the paper reports t = 0.3. The best threshold by mIoU is given as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from ..model.clipseg import CLIPSeg
from ..tokenizer import Tokenizer
from .metrics import MetricResult
from .predict import accumulate
from .results import JsonResult


@dataclass
class ReferringResult(JsonResult):
    protocol = "referring"

    at_threshold: MetricResult  # at the reported threshold (0.3 in the paper)
    best: MetricResult  # at the threshold with the best mIoU
    samples: int


def evaluate_referring(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    threshold: float = 0.3,
    batch_size: int = 16,
    num_workers: int = 0,
    limit: int | None = None,
    progress: bool = False,
) -> ReferringResult:
    """Score text-prompted predictions on a data set of Samples (e.g. PhraseCut test)."""
    run = accumulate(model, tokenizer, dataset, "text", batch_size, num_workers, limit, progress)
    counts = run.groups["all"]
    return ReferringResult(counts.result(threshold), counts.result(select="miou"), run.samples)
