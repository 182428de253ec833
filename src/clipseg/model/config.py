"""Configuration dataclasses of the CLIP backbone and the CLIPSeg decoders."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..io.records import check_fields


@dataclass
class VisionConfig:
    """CLIP ViT image encoder (defaults: ViT-B/16). The last four fields describe the
    ImageNet ViTs (timm / HF ViTModel) of the ViTSeg baseline: a patch embedding with a
    bias, no LayerNorm before the blocks, exact GELU, LayerNorm eps 1e-6 or 1e-12."""

    image_size: int = 224  # size the positional embeddings were trained at
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    patch_bias: bool = False
    pre_norm: bool = True  # CLIP's ln_pre
    activation: str = "quick_gelu"  # or "gelu"
    norm_eps: float = 1e-5

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

    def __post_init__(self) -> None:
        steps = len(self.extract_layers)
        if self.kind == "clipseg" and not 0 <= self.cond_layer < steps:
            raise ValueError(f"cond_layer {self.cond_layer} is not one of the decoder's {steps} steps (0..{steps - 1}): "
                             "FiLM would never condition the decoder on the prompt")


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
        """Build from `to_dict()`'s form. Raises ValueError naming the field for unknown keys,
        wrong types and sizes outside what any CLIP-like model uses (so that a hostile
        config cannot make a model that exhausts memory before its weights are checked)."""
        return config_from_dict(cls, d, "config")


# Largest sizes a config may ask for: far above every released CLIP (ViT-G: width 1664,
# 48 layers), far below what would exhaust memory when the (meta) model is built.
_LIMITS = {"layers": 256, "vocab_size": 1 << 20, "context_length": 4096, "image_size": 8192, "input_size": 8192}
_DEFAULT_LIMIT = 1 << 16


def _check_number(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ValueError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r:.40}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: expected a finite number, got {value}")
    return kind(value)


def config_from_dict(cls, d: Any, where: str):
    """A config dataclass from a JSON dict, every field checked (see from_dict)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    check_fields(cls, d, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    hints = {f.name: f.type for f in fields.values()}
    for name, value in d.items():
        hint, at = str(hints[name]), f"{where}.{name}"
        if dataclasses.is_dataclass(fields[name].default_factory() if fields[name].default_factory
                                    is not dataclasses.MISSING else None):
            values[name] = config_from_dict(type(fields[name].default_factory()), value, at)
        elif hint.startswith("tuple"):
            if not isinstance(value, (list, tuple)) or not 0 < len(value) <= 64:
                raise ValueError(f"{at}: expected a list of at most 64 numbers, got {type(value).__name__}")
            kind = int if "int" in hint else float
            values[name] = tuple(_check_number(v, kind, f"{at}[{i}]") for i, v in enumerate(value))
            if kind is int and any(not 0 <= v < 1024 for v in values[name]):
                raise ValueError(f"{at}: layer indices must be between 0 and 1023")
        elif hint == "str":
            if not isinstance(value, str) or len(value) > 64:
                raise ValueError(f"{at}: expected a short string, got {type(value).__name__}")
            values[name] = value
        else:
            kind = {"int": int, "float": float, "bool": bool}[hint]
            values[name] = _check_number(value, kind, at)
            if kind is int and name not in ("cond_layer",) and not 1 <= values[name] <= _LIMITS.get(name, _DEFAULT_LIMIT):
                raise ValueError(f"{at}: {values[name]} is outside 1..{_LIMITS.get(name, _DEFAULT_LIMIT)}")
            if kind is float and not -1e6 < values[name] < 1e6:
                raise ValueError(f"{at}: {values[name]} is out of range")
    return cls(**values)
