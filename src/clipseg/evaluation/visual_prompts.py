"""Visual prompt engineering analysis (paper Sec. 4, Tab. 2, right half).

For every sample (image, object mask, class name) the image is turned into a visual prompt
by each variant of `engineer_visual_prompt`, and CLIP classifies it: P(object) = softmax
over the class names' text embeddings of logit_scale * cosine similarity, read at the
sample's class. Reported: the mean change of P(object), in percentage points, against the
unmodified image (padded to a square and resized like every prompt). The paper's left half
(masking inside the transformer) is not a prompt variant and is not reproduced; the
"large context" of the paper is not specified - 0.5 of the object size here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

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

    baseline: float  # mean P(object) of the unmodified image, in %
    delta: dict[str, float]  # variant -> mean change of P(object), in percentage points
    samples: int


@torch.no_grad()
def evaluate_visual_prompts(
    model: CLIPSeg,
    tokenizer: Tokenizer,
    dataset: Dataset,
    class_names: Sequence[str] | None = None,
    template: str = "a photo of a {}.",
    variants: dict[str, VisualPromptConfig] | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> VisualPromptResult:
    """Score a data set of Samples (image, mask, class_name). Candidate classes: `class_names`,
    default every class name met; negatives, empty masks and other classes are skipped."""
    model.eval()
    data = limited(dataset, limit)
    variants = variants or table2_variants()
    configs = [replace(c, size=model.config.input_size) for c in (UNMODIFIED, *variants.values())]
    device, mean, std = next(model.parameters()).device, model.config.mean, model.config.std
    embeddings, targets = [], []  # per kept sample: (1 + V, E) unit image embeddings, class name
    for i in tqdm(range(len(data)), disable=not progress, desc="visual prompts"):
        s = data[i]
        if s.is_negative or not bool((s.mask > 0.5).any()) or (class_names and s.class_name not in class_names):
            continue
        image, mask = s.image.to(device), s.mask[0].to(device)
        pixels = torch.stack([engineer_visual_prompt(image, mask, c, mean, std) for c in configs])
        embeddings.append(F.normalize(model.encode_visual_prompt(pixels).float(), dim=-1).cpu())
        targets.append(s.class_name)
    if not embeddings:
        raise ValueError("no sample with an object mask and a known class name")
    names = list(class_names) if class_names else sorted(set(targets))
    text = PromptEncoder(model, tokenizer, truncate=True).encode_texts([template.format(n) for n in names])
    text = F.normalize(text.float(), dim=-1).cpu()  # (K, E)
    logits = model.clip.logit_scale.exp().cpu() * torch.stack(embeddings) @ text.t()  # (N, 1 + V, K)
    target = torch.tensor([names.index(t) for t in targets])  # (N,)
    p_object = 100 * logits.softmax(-1)[torch.arange(len(target)), :, target].mean(0)  # (1 + V,) in %
    delta = {name: float(p_object[i + 1] - p_object[0]) for i, name in enumerate(variants)}
    return VisualPromptResult(float(p_object[0]), delta, len(targets))
