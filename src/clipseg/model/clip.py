"""CLIP = image tower + text tower + logit scale."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .clip_text import TextTransformer
from .clip_vision import VisionTransformer
from .config import CLIPConfig


class CLIP(nn.Module):
    def __init__(self, config: CLIPConfig):
        super().__init__()
        self.config = config
        self.visual = VisionTransformer(config.vision, config.embed_dim)
        self.text = TextTransformer(config.text, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalized -> (B, embed_dim)."""
        return self.visual(pixels)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, embed_dim)."""
        return self.text(ids)

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Contrastive logits (B_img, B_txt) between L2-normalized embeddings."""
        return self.similarity(self.encode_image(pixels), self.encode_text(ids))

    def similarity(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        """Image (B_img, E) and text (B_txt, E) embeddings -> logit_scale-scaled cosine
        similarities (B_img, B_txt), in float32 also under autocast."""
        with torch.autocast(img.device.type, enabled=False):
            img, txt = img.float(), txt.float()
            img = img / img.norm(dim=-1, keepdim=True)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            return self.logit_scale.exp() * img @ txt.t()
