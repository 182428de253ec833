"""Infer model configs from the tensor shapes of a state dict (our key names).

Used when a file comes without a config (OpenAI backbones, the authors' decoder
files, a bare HF model.safetensors), as OpenAI's own `build_model` does.
"""

from __future__ import annotations

import re

import torch

from ..model.config import CLIPConfig, DecoderConfig, TextConfig, VisionConfig
from .errors import CheckpointError


def _count(sd: dict[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def _vision_shapes(sd: dict[str, torch.Tensor]) -> tuple[int, int, int, int]:
    """(width, patch, grid, mlp hidden) of a `clip.visual.*` tower from its shapes (KeyError if absent)."""
    conv = sd["clip.visual.conv1.weight"]  # (width, 3, patch, patch)
    pos = sd["clip.visual.positional_embedding"]  # (1 + grid^2, width)
    grid = round((pos.shape[0] - 1) ** 0.5)
    if grid * grid + 1 != pos.shape[0]:
        raise CheckpointError(f"positional embedding of {pos.shape[0]} rows is not 1 + a square grid")
    return conv.shape[0], conv.shape[-1], grid, sd["clip.visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]


def infer_clip_config(sd: dict[str, torch.Tensor]) -> CLIPConfig:
    try:
        v_width, patch, grid, v_mlp = _vision_shapes(sd)
        t_width = sd["clip.text.ln_final.weight"].shape[0]
        t_mlp = sd["clip.text.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        vision = VisionConfig(
            image_size=grid * patch,
            patch_size=patch,
            width=v_width,
            layers=_count(sd, r"clip\.visual\.transformer\.resblocks\.(\d+)\."),
            heads=max(1, v_width // 64),
            mlp_ratio=v_mlp / v_width,
        )
        text = TextConfig(
            context_length=sd["clip.text.positional_embedding"].shape[0],
            vocab_size=sd["clip.text.token_embedding.weight"].shape[0],
            width=t_width,
            layers=_count(sd, r"clip\.text\.transformer\.resblocks\.(\d+)\."),
            heads=max(1, t_width // 64),
            mlp_ratio=t_mlp / t_width,
        )
        return CLIPConfig(vision=vision, text=text, embed_dim=sd["clip.visual.proj"].shape[1])
    except KeyError as e:
        raise CheckpointError(f"cannot infer the CLIP architecture: key {e} is missing") from None


def infer_decoder_config(sd: dict[str, torch.Tensor], extract_layers: tuple[int, ...] | None = None) -> DecoderConfig:
    """Decoder config from `decoder.*` shapes. Head count and extract layers are not
    visible in shapes: the released values (4 heads, layers 3, 6, 9) are assumed."""
    try:
        film = sd["decoder.film_mul.weight"]  # (D, embed_dim)
    except KeyError:
        raise CheckpointError("cannot infer the decoder: 'film_mul.weight' is missing") from None
    if "decoder.reduce2.0.weight" in sd:  # CLIP-Deconv baseline
        return DecoderConfig(
            kind="deconv",
            reduce_dim=film.shape[0],
            extract_layers=extract_layers or (9,),
            deconv_hidden=sd["decoder.reduce2.0.weight"].shape[0],
        )
    n = _count(sd, r"decoder\.reduces\.(\d+)\.")
    layers = extract_layers or ((3, 6, 9) if n == 3 else None)
    if layers is None or len(layers) != n:
        raise CheckpointError(f"decoder has {n} reduce layers; pass extract_layers with {n} entries")
    return DecoderConfig(
        reduce_dim=film.shape[0],
        extract_layers=tuple(layers),
        mlp_dim=sd["decoder.blocks.0.linear1.weight"].shape[0],
        refined="decoder.trans_conv.0.weight" in sd,
    )


def infer_vit_config(sd: dict[str, torch.Tensor], heads: int | None = None, norm_eps: float = 1e-6) -> VisionConfig:
    """VisionConfig of an ImageNet ViT converted to `clip.visual.*` keys (timm / HF layout).
    Heads are not in the shapes: width // 64 (ViT-B/16: 12) unless given; eps: timm's 1e-6."""
    try:
        width, patch, grid, mlp = _vision_shapes(sd)
    except KeyError as e:
        raise CheckpointError(f"cannot infer the ViT architecture: key {e} is missing") from None
    return VisionConfig(image_size=grid * patch, patch_size=patch, width=width,
                        layers=_count(sd, r"clip\.visual\.transformer\.resblocks\.(\d+)\."),
                        heads=heads or max(1, width // 64), mlp_ratio=mlp / width, patch_bias=True, pre_norm=False,
                        activation="gelu", norm_eps=norm_eps)
