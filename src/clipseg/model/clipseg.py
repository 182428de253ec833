"""CLIPSeg: a frozen CLIP backbone wired to a light conditional decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .clip import CLIP
from ..constants import DEFAULT_THRESHOLD
from ..io.arrays import mix_conditions
from ..tokenizer import CLIPTokenizer, Tokenizer
from .config import CLIPSegConfig
from .decoder import build_decoder
from .identity import ModelIdentity


@dataclass
class ImageFeatures:
    """What the backbone computes once per image and the decoder reuses for every prompt."""

    activations: list[torch.Tensor]  # per extract layer (shallow -> deep): (B, 1 + gh*gw, width)
    grid: tuple[int, int]  # (gh, gw) patch grid

    def to(self, device: torch.device | str) -> "ImageFeatures":
        return ImageFeatures([a.to(device) for a in self.activations], self.grid)

    def select(self, index: int) -> "ImageFeatures":
        """Features of image `index` of the batch, keeping a batch dimension of 1."""
        return ImageFeatures([a[index : index + 1] for a in self.activations], self.grid)


class CLIPSeg(nn.Module):
    """Segmentation by a conditional vector from a text or image prompt.

    The CLIP backbone is frozen: its parameters do not require grad, it stays in eval
    mode, and it runs under no_grad. Only `decoder` trains. `identity` says which tokenizer
    and threshold belong to the weights (see `clipseg.load`).
    """

    def __init__(self, config: CLIPSegConfig):
        super().__init__()
        self.config = config
        self.clip = CLIP(config.clip)
        self.clip.requires_grad_(False)
        vis = config.clip.vision
        if max(config.decoder.extract_layers) >= vis.layers:
            raise ValueError(f"extract_layers {config.decoder.extract_layers} exceed the {vis.layers} visual layers")
        self.decoder = build_decoder(config.decoder, vis.width, config.clip.embed_dim, vis.patch_size)
        self.identity = ModelIdentity()
        self._clip_tokenizer: CLIPTokenizer | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer of this model's prompts: the one its weights carry, else CLIP's."""
        if self.identity.tokenizer is not None:
            return self.identity.tokenizer
        if self._clip_tokenizer is None:  # one per model, so its BPE cache is kept
            self._clip_tokenizer = CLIPTokenizer()
        return self._clip_tokenizer

    @property
    def threshold(self) -> float:
        """The threshold its masks are cut at unless the user names one."""
        return self.identity.threshold if self.identity.threshold is not None else DEFAULT_THRESHOLD

    def train(self, mode: bool = True) -> "CLIPSeg":
        super().train(mode)
        self.clip.eval()
        return self

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> ImageFeatures:
        """(B, 3, H, W) normalized, H and W multiples of the patch size -> ImageFeatures.

        Runs the visual blocks only up to the deepest extracted layer.
        """
        layers = tuple(self.config.decoder.extract_layers)
        _, acts, grid = self.clip.visual.forward_features(pixels, collect=layers, stop_after=max(layers))
        return ImageFeatures(acts, grid)

    @torch.no_grad()
    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> conditional vectors (N, embed_dim)."""
        return self.clip.encode_text(ids)

    @torch.no_grad()
    def encode_visual_prompt(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) engineered visual prompts -> conditional vectors (N, embed_dim)."""
        return self.clip.encode_image(pixels)

    def decode(self, features: ImageFeatures, cond: torch.Tensor) -> torch.Tensor:
        """Features of 1 or N images and cond (N, embed_dim) -> logits (N, H, W) at input size."""
        cond = cond.to(features.activations[0].dtype)
        return self.decoder(features.activations, cond, features.grid)

    def forward(
        self,
        pixels: torch.Tensor,
        text_ids: torch.Tensor | None = None,
        cond_pixels: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        text_weight: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Full forward: images (B, 3, H, W) and one conditional per image -> logits (B, H, W).

        The conditional is `cond` if given, else from `text_ids` and/or `cond_pixels`; with
        both, cond = w * text + (1 - w) * image with w = text_weight (default 0.5).
        """
        cond = self.conditional(text_ids, cond_pixels, cond, text_weight)
        return self.decode(self.encode_image(pixels), cond)

    def conditional(
        self,
        text_ids: torch.Tensor | None = None,
        cond_pixels: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        text_weight: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The conditional vectors (N, embed_dim) for text ids, prompt images, or a mix."""
        if cond is not None:
            return cond
        if text_ids is None and cond_pixels is None:
            raise ValueError("give text_ids, cond_pixels or cond")
        text = self.encode_text(text_ids) if text_ids is not None else None
        image = self.encode_visual_prompt(cond_pixels) if cond_pixels is not None else None
        if text is None:
            return image
        if image is None:
            return text
        return mix_conditions(text, image, 0.5 if text_weight is None else text_weight)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.decoder.parameters() if p.requires_grad]
