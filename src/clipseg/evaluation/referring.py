"""Referring expression segmentation on PhraseCut (paper Sec. 5.1, Tab. 3).

Text prompts; mIoU averages the foreground IoU over samples (class_name = task id);
the paper reports t = 0.3. The best threshold by mIoU is given as well. Other data sets
(your own folder) can be scored the same way: `miou_over="sample"` makes every sample its
own mIoU key, whatever its class_name (for PhraseFolder the class_name is the phrase, which
repeats across samples).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    miou_over: str = "key"  # "key": the samples' class_name (PhraseCut: task id); "sample": each sample


class EachSampleOwnKey(Dataset):
    """A view of a data set of Samples whose class_name is the sample's index ("#0", "#1", ...)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return replace(self.dataset[index], class_name=f"#{index}")


def evaluate_referring(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    threshold: float = 0.3,
    batch_size: int = 16,
    num_workers: int = 0,
    limit: int | None = None,
    progress: bool = False,
    miou_over: str = "key",
) -> ReferringResult:
    """Score text-prompted predictions on a data set of Samples (e.g. PhraseCut test).
    mIoU averages over the samples' class_name (miou_over="key") or over samples ("sample")."""
    if miou_over not in ("key", "sample"):
        raise ValueError(f"miou_over must be 'key' or 'sample', not {miou_over!r}")
    data = EachSampleOwnKey(dataset) if miou_over == "sample" else dataset
    run = accumulate(model, tokenizer, data, "text", batch_size, num_workers, limit, progress)
    if "all" not in run.groups:
        raise ValueError("the data set is empty")
    counts = run.groups["all"]
    return ReferringResult(counts.result(threshold), counts.result(select="miou"), run.samples, miou_over)
