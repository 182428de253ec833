"""CLIP ViT image encoder with positional embeddings resized to any (also non-square) grid."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import VisionConfig
from .transformer import Transformer


class VisionTransformer(nn.Module):
    """OpenAI CLIP's `visual` module (same parameter names). With `patch_bias`, no
    `pre_norm` and exact GELU it is also the ImageNet ViT of the ViTSeg baseline (`ln_post`
    is then the ViT's final norm; `proj` has no counterpart there)."""

    def __init__(self, config: VisionConfig, output_dim: int):
        super().__init__()
        self.config = config
        w = config.width
        self.conv1 = nn.Conv2d(3, w, kernel_size=config.patch_size, stride=config.patch_size, bias=config.patch_bias)
        scale = w**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(w))
        self.positional_embedding = nn.Parameter(scale * torch.randn(config.grid**2 + 1, w))
        self.ln_pre = nn.LayerNorm(w, eps=config.norm_eps) if config.pre_norm else nn.Identity()
        self.transformer = Transformer(w, config.layers, config.heads, config.mlp_ratio, config.activation,
                                       config.norm_eps)
        self.ln_post = nn.LayerNorm(w, eps=config.norm_eps)
        self.proj = nn.Parameter(scale * torch.randn(w, output_dim))

    def positional_embedding_for(self, gh: int, gw: int) -> torch.Tensor:
        """(1 + gh*gw, width): CLS position kept, grid part resized bicubically (align_corners=False).

        The resize runs in float32 whatever the parameter dtype (a bfloat16 model gets
        the float32 result rounded once).
        """
        g = self.config.grid
        pos = self.positional_embedding
        if (gh, gw) == (g, g):
            return pos
        grid = pos[1:].float().reshape(1, g, g, -1).permute(0, 3, 1, 2)  # (1, W, g, g)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False).to(pos.dtype)
        return torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(gh * gw, -1)], dim=0)

    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, 3, H, W) -> tokens (B, 1 + gh*gw, width) after ln_pre, and the grid (gh, gw)."""
        x = self.conv1(pixels.to(self.conv1.weight.dtype))  # (B, W, gh, gw)
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)  # (B, gh*gw, W)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding_for(gh, gw).to(x.dtype)
        return self.ln_pre(x), (int(gh), int(gw))

    def forward_features(
        self, pixels: torch.Tensor, collect: tuple[int, ...] = (), stop_after: int | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], tuple[int, int]]:
        """Residual stream after the last block run, the streams after blocks in `collect`, the grid."""
        x, grid = self.embed(pixels)
        x, collected = self.transformer(x, collect=collect, stop_after=stop_after)
        return x, collected, grid

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> image embedding (B, output_dim), not normalized."""
        x, _, _ = self.forward_features(pixels)
        return self.ln_post(x[:, 0]) @ self.proj
