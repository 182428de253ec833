"""Configuration dataclasses of the CLIP backbone and the CLIPSeg decoders."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class VisionConfig:
    """CLIP ViT image encoder (defaults: ViT-B/16)."""

    image_size: int = 224  # size the positional embeddings were trained at
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass
class TextConfig:
    """CLIP text transformer (defaults: the one of ViT-B/16)."""

    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_ratio: float = 4.0


@dataclass
class CLIPConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    embed_dim: int = 512  # joint (projection) dimension


@dataclass
class DecoderConfig:
    """CLIPSeg decoder (SPEC "Model"). kind='clipseg' or the 'deconv' baseline."""

    kind: str = "clipseg"
    reduce_dim: int = 64
    extract_layers: tuple[int, ...] = (3, 6, 9)  # read out after these visual blocks (0-based)
    cond_layer: int = 0  # FiLM at this decoder step
    heads: int = 4
    mlp_dim: int = 2048
    dropout: float = 0.1
    refined: bool = False  # complex transposed convolution (rd64-uni-refined)
    deconv_hidden: int = 256  # CLIP-Deconv only: hidden size of its reduce MLP


@dataclass
class CLIPSegConfig:
    clip: CLIPConfig = field(default_factory=CLIPConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    input_size: int = 352
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CLIPSegConfig":
        clip = d.get("clip", {})
        dec = dict(d.get("decoder", {}))
        if "extract_layers" in dec:
            dec["extract_layers"] = tuple(dec["extract_layers"])
        return cls(
            clip=CLIPConfig(
                vision=VisionConfig(**clip.get("vision", {})),
                text=TextConfig(**clip.get("text", {})),
                embed_dim=clip.get("embed_dim", 512),
            ),
            decoder=DecoderConfig(**dec),
            input_size=d.get("input_size", 352),
            mean=tuple(d.get("mean", IMAGENET_MEAN)),
            std=tuple(d.get("std", IMAGENET_STD)),
        )
