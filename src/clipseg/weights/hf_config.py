"""Hugging Face `config.json` (CLIPSegConfig / CLIPConfig) -> our config dataclasses.

HF writes only the values that differ from its defaults, so the defaults below are
those of `transformers.CLIPSegConfig` (ViT-B/16 for the released CIDAS models).
"""

from __future__ import annotations

from ..model.config import CLIPConfig, CLIPSegConfig, DecoderConfig, TextConfig, VisionConfig
from .errors import CheckpointError


def _vision(vc: dict) -> VisionConfig:
    width = vc.get("hidden_size", 768)
    return VisionConfig(
        image_size=vc.get("image_size", 224),
        patch_size=vc.get("patch_size", 32),  # HF's CLIPSegVisionConfig default; CIDAS sets 16
        width=width,
        layers=vc.get("num_hidden_layers", 12),
        heads=vc.get("num_attention_heads", 12),
        mlp_ratio=vc.get("intermediate_size", 3072) / width,
    )


def _text(tc: dict) -> TextConfig:
    width = tc.get("hidden_size", 512)
    return TextConfig(
        context_length=tc.get("max_position_embeddings", 77),
        vocab_size=tc.get("vocab_size", 49408),
        width=width,
        layers=tc.get("num_hidden_layers", 12),
        heads=tc.get("num_attention_heads", 8),
        mlp_ratio=tc.get("intermediate_size", 2048) / width,
    )


def _check_activation(cfg: dict, where: str) -> None:
    act = cfg.get("hidden_act", "quick_gelu")
    if act != "quick_gelu":
        raise CheckpointError(f"{where}: hidden_act '{act}' is not supported (CLIP uses quick_gelu)")


def clip_config_from_hf(cfg: dict, where: str = "config.json") -> CLIPConfig:
    vc, tc = cfg.get("vision_config") or {}, cfg.get("text_config") or {}
    _check_activation(vc, where)
    _check_activation(tc, where)
    return CLIPConfig(vision=_vision(vc), text=_text(tc), embed_dim=cfg.get("projection_dim", 512))


def clipseg_config_from_hf(cfg: dict, where: str = "config.json") -> CLIPSegConfig:
    """A CLIPSegForImageSegmentation config.json -> CLIPSegConfig."""
    model_type = cfg.get("model_type")
    if model_type not in (None, "clipseg"):
        raise CheckpointError(f"{where}: model_type is '{model_type}', expected 'clipseg'")
    try:
        decoder = DecoderConfig(
            reduce_dim=cfg.get("reduce_dim", 64),
            extract_layers=tuple(cfg.get("extract_layers", (3, 6, 9))),
            cond_layer=cfg.get("conditional_layer", 0),
            heads=cfg.get("decoder_num_attention_heads", 4),
            mlp_dim=cfg.get("decoder_intermediate_size", 2048),
            refined=bool(cfg.get("use_complex_transposed_convolution", False)),
        )
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: its decoder settings are invalid: {e}") from None
    return CLIPSegConfig(clip=clip_config_from_hf(cfg, where), decoder=decoder)
