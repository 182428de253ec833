"""The CLIPSeg decoder (paper Sec. 3.1, SPEC "Model")."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import DecoderConfig
from .transformer import PostNormEncoderLayer


def film(cond: torch.Tensor, x: torch.Tensor, mul: nn.Linear, add: nn.Linear) -> torch.Tensor:
    """FiLM conditioning of tokens x (1 or N, T, D) by cond (N, E) -> (N, T, D)."""
    return mul(cond)[:, None] * x + add(cond)[:, None]


def tokens_to_map(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(N, 1 + gh*gw, D) tokens -> (N, D, gh, gw) feature map, CLS dropped."""
    n, _, d = x.shape
    return x[:, 1:].transpose(1, 2).reshape(n, d, grid[0], grid[1])


class MapDecoder(nn.Module):
    """What the decoders share: the final transposed convolution(s) from the token map to logits."""

    trans_conv: nn.Module

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D, gh, gw) token map -> (N, 1, gh * patch, gw * patch) logits."""
        return self.trans_conv(x)


class CLIPSegDecoder(MapDecoder):
    """Transformer decoder with FiLM conditioning and U-Net-like skips from CLIP layers.

    Parameter names match the authors' rd64-uni / rd64-uni-refined / rd16-uni files.
    """

    def __init__(self, config: DecoderConfig, clip_width: int, embed_dim: int, patch_size: int):
        super().__init__()
        self.config = config
        d = config.reduce_dim
        n = len(config.extract_layers)
        self.film_mul = nn.Linear(embed_dim, d)
        self.film_add = nn.Linear(embed_dim, d)
        self.reduces = nn.ModuleList([nn.Linear(clip_width, d) for _ in range(n)])
        self.blocks = nn.ModuleList(
            [PostNormEncoderLayer(d, config.heads, config.mlp_dim, config.dropout) for _ in range(n)]
        )
        if config.refined:
            k = patch_size // 4
            self.trans_conv = nn.Sequential(
                nn.Conv2d(d, d, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(d, d // 2, kernel_size=k, stride=k),
                nn.ReLU(),
                nn.ConvTranspose2d(d // 2, 1, kernel_size=k, stride=k),
            )
        else:
            self.trans_conv = nn.ConvTranspose2d(d, 1, kernel_size=patch_size, stride=patch_size)

    def forward(self, activations: list[torch.Tensor], cond: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """activations: residual streams (1 or N, 1 + gh*gw, width) in extract_layers order
        (shallow to deep); cond: (N, embed_dim). Returns logits (N, gh*patch, gw*patch).

        An image batch of 1 is broadcast against N conditionals: the reductions run once
        and only the small transformer blocks run per prompt.
        """
        a = None
        for i, (act, reduce, block) in enumerate(zip(activations[::-1], self.reduces, self.blocks)):
            r = reduce(act)  # (1|N, T, D)
            a = r if a is None else a + r
            if i == self.config.cond_layer:
                a = film(cond, a, self.film_mul, self.film_add)
            a = block(a)
        return self.upsample(tokens_to_map(a, grid))[:, 0]


class DeconvDecoder(MapDecoder):
    """The paper's CLIP-Deconv baseline: one CLIP layer, FiLM, an MLP, one transposed conv.

    Names follow the authors' CLIPDenseBaseline (reduce, film_mul/add, reduce2, trans_conv).
    Uses the deepest layer of extract_layers.
    """

    def __init__(self, config: DecoderConfig, clip_width: int, embed_dim: int, patch_size: int):
        super().__init__()
        self.config = config
        d = config.reduce_dim
        self.reduce = nn.Linear(clip_width, d)
        self.film_mul = nn.Linear(embed_dim, d)
        self.film_add = nn.Linear(embed_dim, d)
        self.reduce2 = nn.Sequential(nn.Linear(d, config.deconv_hidden), nn.ReLU(), nn.Linear(config.deconv_hidden, d))
        self.trans_conv = nn.ConvTranspose2d(d, 1, kernel_size=patch_size, stride=patch_size)

    def forward(self, activations: list[torch.Tensor], cond: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        a = film(cond, self.reduce(activations[-1]), self.film_mul, self.film_add)  # (N, T, D)
        a = self.reduce2(a)
        return self.upsample(tokens_to_map(a, grid))[:, 0]


DECODERS = {"clipseg": CLIPSegDecoder, "deconv": DeconvDecoder}


def build_decoder(config: DecoderConfig, clip_width: int, embed_dim: int, patch_size: int) -> nn.Module:
    if config.kind not in DECODERS:
        raise ValueError(f"unknown decoder kind '{config.kind}', expected one of {sorted(DECODERS)}")
    return DECODERS[config.kind](config, clip_width, embed_dim, patch_size)
