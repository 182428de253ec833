"""What every binary protocol shares: batches of `Sample`s -> probabilities -> threshold counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from ..io.progress import progress_bar

from ..datasets.sample import collate
from ..io.transforms import resize_maps
from ..model.clipseg import CLIPSeg
from ..prompts import PromptEncoder
from ..tokenizer import Tokenizer
from .metrics import BinaryCounts

PROMPT_KINDS = ("text", "visual")


def limited(dataset: Dataset, limit: int | None) -> Dataset:
    """The first `limit` items of a data set (all when None)."""
    return dataset if limit is None or limit >= len(dataset) else Subset(dataset, range(limit))


def loader(dataset: Dataset, batch_size: int, num_workers: int, collate_fn=collate) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_fn)


@torch.no_grad()
def predict_probs(model: CLIPSeg, prompts: PromptEncoder, batch: dict, prompt: str = "text") -> torch.Tensor:
    """Probabilities (B, H, W) at the mask size for a collated batch, conditioned on each
    sample's phrase (prompt="text") or its visual support (prompt="visual")."""
    if prompt not in PROMPT_KINDS:
        raise ValueError(f"prompt must be one of {PROMPT_KINDS}, not {prompt!r}")
    device = prompts.device
    if prompt == "text":
        cond = prompts.encode_texts(batch["phrase"])  # (B, E)
    else:
        if not batch["has_support"].all():
            raise ValueError("visual prompting needs a support for every sample")
        cond = model.encode_visual_prompt(batch["support"].to(device))  # (B, E)
    logits = model.decode(model.encode_image(batch["image"].to(device)), cond)  # (B, H, W)
    return torch.sigmoid(resize_maps(logits.float(), tuple(batch["mask"].shape[-2:])))


def select(batch: dict, keep: torch.Tensor) -> dict:
    """The samples of a collated batch where keep (B,) is True."""
    rows = keep.nonzero().flatten().tolist()
    return {k: v[keep] if isinstance(v, torch.Tensor) else [v[i] for i in rows] for k, v in batch.items()}


@dataclass
class Accumulated:
    """Counts per group (e.g. per LVIS subset; one group "all" by default)."""

    groups: dict[str, BinaryCounts] = field(default_factory=dict)
    samples: int = 0
    skipped: int = 0  # visual prompting: samples without a support


def accumulate(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    prompt: str = "text",
    batch_size: int = 16,
    num_workers: int = 0,
    limit: int | None = None,
    progress: bool = False,
    group: Callable[[str], str] | None = None,
) -> Accumulated:
    """Run the model over a data set of Samples and count TP/FP/FN/TN at the 49 thresholds,
    keyed by each sample's class_name, in groups given by group(class_name) (default: "all").
    With prompt="visual", samples without a support are skipped (counted in `skipped`)."""
    model.eval()
    prompts = PromptEncoder(model, tokenizer, truncate=True)
    out = Accumulated()
    for batch in progress_bar(loader(limited(dataset, limit), batch_size, num_workers), progress, desc="eval"):
        if prompt == "visual" and not batch["has_support"].all():
            out.skipped += int((~batch["has_support"]).sum())
            batch = select(batch, batch["has_support"])
            if not batch["phrase"]:
                continue
        probs = predict_probs(model, prompts, batch, prompt).cpu()
        names = batch["class_name"]
        groups = [group(n) if group else "all" for n in names]
        for g in dict.fromkeys(groups):
            rows = torch.tensor([x == g for x in groups])
            acc = out.groups.setdefault(g, BinaryCounts())
            acc.update(probs[rows], batch["mask"][rows, 0], key=[n for n, x in zip(names, groups) if x == g],
                       valid=batch["valid"][rows, 0])
        out.samples += len(names)
    return out
