"""Transformer building blocks shared by the CLIP encoders and the decoder: the plain
reference forward passes (SDPA attention, the MLP as written, F.dropout). The CPU speed
paths are subclasses in `fast_cpu.py`, swapped in by `optimize_for_cpu(model)`.

Parameter names follow OpenAI CLIP (`attn.in_proj_weight`, `mlp.c_fc`, `ln_1`, ...) and
`torch.nn.TransformerEncoderLayer` (`self_attn`, `linear1`, `norm1`, ...) so that the
checkpoints users have load without renaming.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


QUICK_GELU_SCALE = 1.702


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(QUICK_GELU_SCALE * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention, batch first: (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, n, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, N, 3D)
        qkv = qkv.view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d/h)
        drop = self.dropout if self.training else 0.0
        y = self.attend(qkv[0], qkv[1], qkv[2], drop, causal)  # (B, h, N, d/h)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, d))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: float, causal: bool) -> torch.Tensor:
        """softmax(q k^T / sqrt(d)) v over (B, h, N, d), causal if asked, with attention dropout."""
        return F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=causal)


ACTIVATIONS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}


class ResidualAttentionBlock(nn.Module):
    """CLIP's pre-norm block: x + attn(ln_1(x)); x + mlp(ln_2(x)), QuickGELU MLP (exact GELU
    and another LayerNorm eps for the ImageNet ViTs)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, activation: str = "quick_gelu",
                 norm_eps: float = 1e-5):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation '{activation}'; known: {', '.join(ACTIVATIONS)}")
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width, eps=norm_eps)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=norm_eps)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, hidden)), ("gelu", ACTIVATIONS[activation]()),
                                              ("c_proj", nn.Linear(hidden, width))]))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal=causal)
        return x + self.feed_forward(self.ln_2(x))

    def feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        """The MLP on the normed stream (B, N, D) -> (B, N, D)."""
        return self.mlp(h)


class Transformer(nn.Module):
    """A stack of ResidualAttentionBlocks (`resblocks.N`)."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float = 4.0, activation: str = "quick_gelu",
                 norm_eps: float = 1e-5):
        super().__init__()
        self.width = width
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_ratio, activation, norm_eps)
                                        for _ in range(layers)])

    def forward(
        self, x: torch.Tensor, causal: bool = False, collect: tuple[int, ...] = (), stop_after: int | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the blocks; return the final x and the residual stream after each block in `collect`.

        stop_after: index of the last block to run (None = all).
        """
        collected = []
        last = len(self.resblocks) - 1 if stop_after is None else stop_after
        for i, block in enumerate(self.resblocks):
            x = block(x, causal=causal)
            if i in collect:
                collected.append(x)
            if i == last:
                break
        return x, collected


class PostNormEncoderLayer(nn.Module):
    """Post-norm encoder layer, same names and math as nn.TransformerEncoderLayer (ReLU, batch first)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads, dropout)
        self.linear1 = nn.Linear(dim, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.self_attn(x), self.dropout1.p))
        return self.norm2(x + self.feed_forward(x))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """linear2(dropout(relu(linear1(x)))), dropped out: (B, N, D) -> (B, N, D)."""
        return self.drop(self.linear2(self.drop(F.relu(self.linear1(x)), self.dropout.p)), self.dropout2.p)

    def drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return F.dropout(x, p, self.training)
