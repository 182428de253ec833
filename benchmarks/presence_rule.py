"""How the "present" rule answers on the shipped world model (the table in docs/world.md):

    python benchmarks/presence_rule.py          # fold 0, the evaluation sets of the full preset (~4 min)

For each threshold t and minimum share of pixels, the share of positive samples (referring, held-out
class names) answered "present" and of negatives (absent classes) answered "not present", from the
same per-sample counts as the evaluation's tables.
"""

from __future__ import annotations

import torch

from clipseg.evaluation.metrics import _threshold_index, foreground_fraction
import clipseg
from clipseg.world.config import PRESETS
from clipseg.world.scoring import evaluation_sets, sample_counts

TASKS = ("referring", "zero_shot", "negative")


def main(thresholds=(0.22, 0.5), fractions=(0.001, 0.005, 0.01, 0.02), fold: int = 0) -> None:
    torch.set_num_threads(2)
    model = clipseg.load("world")
    tokenizer = model.tokenizer
    sets = evaluation_sets(PRESETS["full"].for_fold(fold))
    counts = {task: sample_counts(model, tokenizer, sets[task], "text", per_sample_keys=True).array()
              for task in TASKS}  # task -> (N, 4, 49)
    print("| t | rule | " + " | ".join(f"{t} ({'absent' if t == 'negative' else 'present'})" for t in TASKS) + " |")
    print("|---|---|" + "---:|" * len(TASKS))
    for t in thresholds:
        i = _threshold_index(t)  # one of the 49 thresholds the counts hold
        for f in fractions:
            cells = []
            for task, c in counts.items():
                present = foreground_fraction(c, i) >= f
                cells.append(f"{100 * (1 - present.mean() if task == 'negative' else present.mean()):.1f} %")
            print(f"| {t} | {100 * f:g} % | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
