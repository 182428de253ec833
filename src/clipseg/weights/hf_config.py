"""Hugging Face `config.json` (CLIPSegConfig / CLIPConfig) -> our config dataclasses.

HF writes only the values that differ from its defaults, so the defaults below are
those of `transformers.CLIPSegConfig` (ViT-B/16 for the released CIDAS models).
"""

from __future__ import annotations

from ..model.config import CLIPConfig, CLIPSegConfig, DecoderConfig, TextConfig, VisionConfig
from .errors import CheckpointError

# config.json field of the recommended mask threshold (written by clipseg's HF export; HF keeps
# unknown fields as attributes)
THRESHOLD_FIELD = "clipseg_threshold"


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


def hf_config_from_ours(config: CLIPSegConfig) -> dict:
    """CLIPSegConfig -> a `transformers.CLIPSegConfig` config.json (inverse of
    clipseg_config_from_hf). Call `hf_unrepresentable` first: this writes CLIP-tower fields only."""
    vision, text = config.clip.vision, config.clip.text
    dec = config.decoder
    return {
        "architectures": ["CLIPSegForImageSegmentation"],
        "model_type": "clipseg",
        "projection_dim": config.clip.embed_dim,
        "extract_layers": list(dec.extract_layers),
        "reduce_dim": dec.reduce_dim,
        "conditional_layer": dec.cond_layer,
        "decoder_num_attention_heads": dec.heads,
        "decoder_intermediate_size": dec.mlp_dim,
        "decoder_attention_dropout": 0.0,
        "decoder_hidden_act": "quick_gelu",
        "use_complex_transposed_convolution": dec.refined,
        "vision_config": {
            "model_type": "clipseg_vision_model",
            "hidden_size": vision.width,
            "intermediate_size": round(vision.width * vision.mlp_ratio),
            "num_hidden_layers": vision.layers,
            "num_attention_heads": vision.heads,
            "image_size": vision.image_size,
            "patch_size": vision.patch_size,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": vision.norm_eps,
        },
        "text_config": {
            "model_type": "clipseg_text_model",
            "hidden_size": text.width,
            "intermediate_size": round(text.width * text.mlp_ratio),
            "num_hidden_layers": text.layers,
            "num_attention_heads": text.heads,
            "max_position_embeddings": text.context_length,
            "vocab_size": text.vocab_size,
            "hidden_act": "quick_gelu",
            "bos_token_id": text.vocab_size - 2,  # CLIP's <|startoftext|>
            "eos_token_id": text.vocab_size - 1,  # <|endoftext|>: HF pools at its first occurrence
        },
    }


def hf_unrepresentable(config: CLIPSegConfig) -> list[str]:
    """What of `config` a `transformers.CLIPSegForImageSegmentation` cannot hold (empty: all of it)."""
    vision, dec = config.clip.vision, config.decoder
    problems = []
    if dec.kind != "clipseg":
        problems.append(f"the '{dec.kind}' decoder (HF has only CLIPSeg's)")
    if vision.patch_bias or not vision.pre_norm or vision.activation != "quick_gelu":
        problems.append("a visual tower that is not CLIP's (an ImageNet ViT: patch bias, no ln_pre, GELU)")
    for name, part in (("vision", vision), ("text", config.clip.text)):
        if abs(part.width * part.mlp_ratio - round(part.width * part.mlp_ratio)) > 1e-6:
            problems.append(f"a {name} MLP width that is not a whole number")
    return problems
