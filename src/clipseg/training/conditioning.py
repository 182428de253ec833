"""The conditional vector of each training sample: text, visual support, or a random mix.

PhraseCut+ style mixing (paper Sec. 3, SPEC "Training"): a sample with a visual support
and a phrase is conditioned on w * text + (1 - w) * visual with w ~ U(0, max_text_weight);
support without phrase -> visual only; phrase without support -> text only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from ..io.arrays import mix_conditions
from ..model.clipseg import CLIPSeg
from ..prompts import PromptEncoder
from .sampler import derive_seed


def text_weights(phrases: list[str], has_support: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Per-sample weight (B,) of the text embedding: 1 text only, 0 visual only, `draws` (B,) where both."""
    has_text = torch.tensor([bool(p) for p in phrases])
    has_support = has_support.cpu()
    if not (has_text | has_support).all():
        raise ValueError("a training sample has neither a phrase nor a visual support")
    return torch.where(has_support, torch.where(has_text, draws, 0.0), 1.0)


def mixing_draws(seed: int, iteration: int, global_batch: int, max_text_weight: float, rows: slice) -> torch.Tensor:
    """This rank's rows of w ~ U(0, max_text_weight) drawn for the whole global batch of
    `iteration`: the same per sample whatever the number of ranks."""
    g = torch.Generator().manual_seed(derive_seed(seed, "text-weight", iteration))
    return (torch.rand(global_batch, generator=g) * max_text_weight)[rows]


def conditionals(
    model: CLIPSeg,
    prompts: PromptEncoder,
    phrases: list[str],
    support: torch.Tensor,
    has_support: torch.Tensor,
    weights: torch.Tensor,
    autocast: Callable[[], AbstractContextManager],
) -> torch.Tensor:
    """Conditional vectors (B, embed_dim), float32, without gradient.

    phrases: B strings ("" = none); support: (B, 3, S, S) engineered visual prompts, used
    where has_support (B,) is True; weights: (B,) from `text_weights`. Text embeddings come
    from the prompt encoder's cache (computed in float32); supports go through CLIP's image
    tower under `autocast()`.
    """
    device = support.device
    text = torch.zeros(len(phrases), model.config.clip.embed_dim, device=device)  # (B, E): 0 without a phrase
    visual = torch.zeros_like(text)  # (B, E): 0 without a support
    text_rows = [i for i, p in enumerate(phrases) if p]
    if text_rows:
        text[text_rows] = prompts.encode_texts([phrases[i] for i in text_rows]).float()
    if has_support.any():
        with autocast():
            visual[has_support] = model.encode_visual_prompt(support[has_support]).float()
    return mix_conditions(text, visual, weights.to(device))  # the paper's mix, row by row
