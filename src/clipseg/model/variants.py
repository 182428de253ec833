"""Named model variants as data, and the builder (weights are loaded separately)."""

from __future__ import annotations

import copy
import dataclasses

from .clipseg import CLIPSeg
from .config import CLIPConfig, CLIPSegConfig, DecoderConfig, TextConfig, VisionConfig

VARIANTS: dict[str, CLIPSegConfig] = {
    # The released decoders (authors' weights and CIDAS/clipseg-* on the hub).
    "rd64-uni": CLIPSegConfig(decoder=DecoderConfig(reduce_dim=64)),
    "rd64-uni-refined": CLIPSegConfig(decoder=DecoderConfig(reduce_dim=64, refined=True)),
    "rd16-uni": CLIPSegConfig(decoder=DecoderConfig(reduce_dim=16)),
    # Paper variants trained with this project's training code.
    "rd128": CLIPSegConfig(decoder=DecoderConfig(reduce_dim=128)),
    "clip-deconv": CLIPSegConfig(decoder=DecoderConfig(kind="deconv", reduce_dim=64, extract_layers=(9,))),
    # A small model for tests (same code path, fewer numbers; heads = width // 64 as in
    # OpenAI's CLIP, so that configs inferred from shapes match).
    "tiny": CLIPSegConfig(
        clip=CLIPConfig(
            vision=VisionConfig(image_size=64, patch_size=8, width=128, layers=4, heads=2),
            text=TextConfig(context_length=16, vocab_size=49408, width=64, layers=2, heads=1),
            embed_dim=64,
        ),
        decoder=DecoderConfig(reduce_dim=16, extract_layers=(1, 2, 3), heads=4, mlp_dim=64),
        input_size=64,
    ),
}


def variant_config(name: str) -> CLIPSegConfig:
    """A fresh copy of a named variant's config."""
    if name not in VARIANTS:
        raise KeyError(f"unknown model variant '{name}'; known: {', '.join(sorted(VARIANTS))}")
    return copy.deepcopy(VARIANTS[name])


def build_clipseg(variant: str | CLIPSegConfig = "rd64-uni-refined", **decoder_overrides) -> CLIPSeg:
    """Build a randomly initialised CLIPSeg of a named variant or config.

    decoder_overrides replace DecoderConfig fields, e.g. extract_layers=(3, 7, 9).
    """
    config = variant_config(variant) if isinstance(variant, str) else copy.deepcopy(variant)
    if decoder_overrides:
        config.decoder = dataclasses.replace(config.decoder, **decoder_overrides)
    return CLIPSeg(config)
