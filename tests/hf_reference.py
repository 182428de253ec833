"""Building `transformers.CLIPSegForImageSegmentation` with random weights (no download),
as the numerical reference of the parity and checkpoint tests."""

from __future__ import annotations

import torch

TINY_HF = dict(
    text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=16),
    vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                       image_size=64, patch_size=8),
    projection_dim=64,
    extract_layers=[1, 2, 3],
    reduce_dim=16,
    decoder_intermediate_size=64,
    decoder_num_attention_heads=4,
)
FULL_HF = dict(vision_config=dict(patch_size=16))  # CIDAS/clipseg-rd64(-refined): ViT-B/16


def make_hf_clipseg(refined: bool, size: str = "tiny", seed: int = 0, scale_last: bool = True, **overrides):
    """Random HF CLIPSeg (also the benchmarks' reference). With scale_last, the last upsampling
    layer is scaled so logits have the few-unit magnitude of a trained model (HF's random init
    gives logits in the thousands, where float32 rounding alone exceeds any fixed absolute
    tolerance). `overrides`: more CLIPSegConfig fields (e.g. conditional_layer)."""
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(seed)
    cfg = CLIPSegConfig(use_complex_transposed_convolution=refined, **{**(TINY_HF if size == "tiny" else FULL_HF),
                                                                       **overrides})
    model = CLIPSegForImageSegmentation(cfg).eval()
    last = model.decoder.transposed_convolution
    last = last[-1] if refined else last
    if scale_last:
        with torch.no_grad():
            last.weight.mul_(1e-3 if refined else 1e-1)
    return model


def token_ids(batch: int, context: int, seed: int = 1) -> torch.Tensor:
    """Random prompts of varied length laid out as CLIP ids: [SOT, ..., EOT, 0 ...]."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(batch, context, dtype=torch.long)
    for i in range(batch):
        n = int(torch.randint(1, context - 2, (1,), generator=g))
        ids[i, 0] = 49406
        ids[i, 1 : n + 1] = torch.randint(1, 49000, (n,), generator=g)
        ids[i, n + 1] = 49407
    return ids
