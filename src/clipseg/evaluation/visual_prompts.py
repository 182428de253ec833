"""Visual prompt engineering analysis (paper Sec. 4, Tab. 2, right half).

For every sample (image, object mask, class name) the image is turned into a visual prompt
by each variant of `engineer_visual_prompt`, and CLIP classifies it: P(object) = softmax of
logit_scale * cosine similarity over the candidate names' text embeddings ("a photo of a
{}."), read at the sample's class. Reported: the mean change of P(object), in percentage
points, against the unmodified image (padded to a square and resized like every prompt).

Data, as in the paper: 1,600 LVIS images with one object masked each (`LvisObjects`, the
CLI's default); the candidates of a sample are its target and the other categories
annotated in its image (the authors' notebook). Any data set of Samples works too (e.g. the
Pascal-5i folds, scored per fold and averaged); its candidates are then all class names met
in that fold (or `class_names`).

The paper's left half (masking inside the transformer) is not a prompt variant and is not
reproduced; the "large context" of the paper is not specified - 0.5 of the object size here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..constants import EVAL_TEMPLATE
from ..io.progress import progress_bar

from ..model.clipseg import CLIPSeg
from ..prompts import PromptEncoder, VisualPromptConfig, engineer_visual_prompt
from ..tokenizer import Tokenizer
from .predict import limited
from .results import JsonResult

UNMODIFIED = VisualPromptConfig(crop=False, blur_kernel=0, background=1.0)


def table2_variants() -> dict[str, VisualPromptConfig]:
    """The rows of Tab. 2 (right), in its order (the side is set to the model's input size on use)."""
    plain = UNMODIFIED
    crop = replace(plain, crop=True)
    blur = VisualPromptConfig().blur_kernel
    return {
        "BG intensity 50%": replace(plain, background=0.5),
        "BG intensity 10%": replace(plain, background=0.1),
        "BG intensity 0%": replace(plain, background=0.0),
        "BG blur": replace(plain, blur_kernel=blur),
        "BG blur + intensity 10%": replace(plain, blur_kernel=blur, background=0.1),
        "crop large context": replace(crop, context=0.5),
        "crop": crop,
        "crop & BG blur": replace(crop, blur_kernel=blur),
        "crop & BG intensity 10%": replace(crop, background=0.1),
        "crop & BG intensity 10% + BG blur": replace(crop, blur_kernel=blur, background=0.1),
    }


@dataclass
class VisualPromptResult(JsonResult):
    protocol = "visual_prompts"

    baseline: float  # mean P(object) of the unmodified image, in % (mean over parts)
    delta: dict[str, float]  # variant -> mean change of P(object), in percentage points (mean over parts)
    samples: int  # over all parts
    parts: list[dict] = field(default_factory=list)  # per part (fold): {"name", "baseline", "delta", "samples"}


def _embed_texts(prompts: PromptEncoder, texts: list[str]) -> dict[str, torch.Tensor]:
    """Unit text embeddings (CPU, float) by text."""
    return dict(zip(texts, F.normalize(prompts.encode_texts(texts).float(), dim=-1).cpu()))


@torch.no_grad()
def _score_part(model, tokenizer, dataset, class_names, template, variants, limit, progress, name) -> dict:
    model.eval()
    data = limited(dataset, limit)
    configs = [replace(c, size=model.config.input_size) for c in (UNMODIFIED, *variants.values())]
    device, mean, std = next(model.parameters()).device, model.config.mean, model.config.std
    embeddings, candidates = [], []  # per kept sample: (1 + V, E) unit image embeddings; names, target first
    for i in progress_bar(range(len(data)), progress, desc=f"visual prompts {name}".strip()):
        s = data[i]
        if s.is_negative or not bool((s.mask > 0.5).any()) or (class_names and s.class_name not in class_names):
            continue
        image, mask = s.image.to(device), s.mask[0].to(device)
        pixels = torch.stack([engineer_visual_prompt(image, mask, c, mean, std) for c in configs])
        embeddings.append(F.normalize(model.encode_visual_prompt(pixels).float(), dim=-1).cpu())
        own = tuple(getattr(s, "candidates", ()) or ())
        candidates.append(own if own else s.class_name)
    if not embeddings:
        raise ValueError(f"{name or 'the data set'}: no sample with an object mask and a known class name")
    shared = list(class_names) if class_names else sorted({c for c in candidates if isinstance(c, str)})
    candidates = [c if isinstance(c, tuple) else (c, *[n for n in shared if n != c]) for c in candidates]
    text = _embed_texts(PromptEncoder(model, tokenizer, truncate=True),
                        sorted({template.format(n) for c in candidates for n in c}))  # fmt: skip
    scale = model.clip.logit_scale.exp().float().cpu()
    p_object = torch.stack([
        (scale * emb @ torch.stack([text[template.format(n)] for n in names]).t()).softmax(-1)[:, 0]
        for emb, names in zip(embeddings, candidates)
    ]).mean(0) * 100  # (1 + V,) mean P(target) in %; the target is candidate 0 of every sample  # fmt: skip
    delta = {v: float(p_object[i + 1] - p_object[0]) for i, v in enumerate(variants)}
    return {"name": name, "baseline": float(p_object[0]), "delta": delta, "samples": len(candidates)}


def evaluate_visual_prompts(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    class_names: Sequence[str] | None = None,
    template: str = EVAL_TEMPLATE,
    variants: dict[str, VisualPromptConfig] | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> VisualPromptResult:
    """Score a data set of Samples (image, mask, class_name). Candidate classes of a sample: its
    own `candidates` (`ObjectSample`, e.g. `LvisObjects`: the target and the image's other
    categories), else `class_names`, else every class name met in the data set. Negatives,
    empty masks and classes outside `class_names` are skipped."""
    return evaluate_visual_prompts_folds(model, tokenizer, [dataset], [""], class_names, template, variants, limit,
                                         progress)  # fmt: skip


def evaluate_visual_prompts_folds(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    folds: Sequence[Dataset],
    names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    template: str = EVAL_TEMPLATE,
    variants: dict[str, VisualPromptConfig] | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> VisualPromptResult:
    """`evaluate_visual_prompts` on each of several parts (e.g. the Pascal-5i folds; `limit`
    applies per part); the result holds every part and the means over the parts."""
    if not folds:
        raise ValueError("no data set to evaluate")
    names = list(names) if names is not None else [f"fold {i}" for i in range(len(folds))]
    if len(names) != len(folds):
        raise ValueError(f"{len(folds)} data sets but {len(names)} names")
    variants = variants or table2_variants()
    parts = [
        _score_part(model, tokenizer, data, class_names, template, variants, limit, progress, name)
        for data, name in zip(folds, names)
    ]
    return VisualPromptResult(
        baseline=float(np.mean([p["baseline"] for p in parts])),
        delta={v: float(np.mean([p["delta"][v] for p in parts])) for v in variants},
        samples=sum(p["samples"] for p in parts),
        parts=parts,
    )
