"""Generalized prompts on LVIS: affordances, attributes, meronymy (paper Sec. 5.4, Tab. 8).

Text prompts such as "sit on"; mIoU averages over the prompts of a subset (class_name =
the prompt); one threshold per model, the one with the best mean mIoU over the subsets.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from ..datasets import GENERALIZED_PROMPTS
from ..model.clipseg import CLIPSeg
from ..tokenizer import Tokenizer
from .metrics import MetricResult
from .predict import accumulate
from .results import JsonResult, best_common_threshold

SUBSET_OF_PROMPT = {prompt: subset for subset, prompts in GENERALIZED_PROMPTS.items() for prompt in prompts}


@dataclass
class GeneralizedResult(JsonResult):
    protocol = "generalized"

    threshold: float
    subsets: dict[str, MetricResult]  # "affordances", "attributes", "meronymy"
    samples: int


def evaluate_generalized(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    threshold: float | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    limit: int | None = None,
    progress: bool = False,
    subset_of: dict[str, str] = SUBSET_OF_PROMPT,
) -> GeneralizedResult:
    """Score a data set of Samples whose class_name is a generalized prompt (LvisGeneralized);
    `subset_of` maps a prompt to its subset (unknown prompts form the subset "other")."""
    run = accumulate(
        model, tokenizer, dataset, "text", batch_size, num_workers, limit, progress,
        group=lambda prompt: subset_of.get(prompt, "other"),
    )  # fmt: skip
    t = best_common_threshold(list(run.groups.values())) if threshold is None else threshold
    return GeneralizedResult(t, {name: counts.result(t) for name, counts in sorted(run.groups.items())}, run.samples)
