"""Model definitions: CLIP towers, decoders, CLIPSeg, named variants."""

from .clip import CLIP
from .clipseg import CLIPSeg, ImageFeatures
from .config import CLIPConfig, CLIPSegConfig, DecoderConfig, TextConfig, VisionConfig
from .variants import VARIANTS, build_clipseg, variant_config

__all__ = [
    "CLIP",
    "CLIPSeg",
    "ImageFeatures",
    "CLIPConfig",
    "CLIPSegConfig",
    "DecoderConfig",
    "TextConfig",
    "VisionConfig",
    "VARIANTS",
    "build_clipseg",
    "variant_config",
]
