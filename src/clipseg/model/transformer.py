"""Transformer building blocks shared by the CLIP encoders and the decoder.

Parameter names follow OpenAI CLIP (`attn.in_proj_weight`, `mlp.c_fc`, `ln_1`, ...) and
`torch.nn.TransformerEncoderLayer` (`self_attn`, `linear1`, `norm1`, ...) so that the
checkpoints users have load without renaming. Attention runs through
`F.scaled_dot_product_attention`, except short sequences on CPU (`attention`).

CPU inference (no autograd) runs the MLPs in row chunks (`chunked_mlp`): the wide hidden
activation (tokens x 3072 in the ViT, x 2048 in the decoder) then stays in cache instead
of going through memory (and fresh page-faulted allocations) three times. Same math.
The QuickGELU MLP runs as one SiLU between GEMMs that carry the 1.702 scale in their
alpha/beta (`quick_gelu_mlp`, in place without autograd): same function, fewer passes
over the hidden activation (equal to the plain form within float rounding, about 1e-7
relative).

CPU training draws dropout masks with `torch.rand_like` (`dropout`, `attention`): the
decoder's training step was a quarter `bernoulli_`; measured 0.20 -> 0.18 s per step for
the world decoder (batch 64) and 1.01 -> 0.89 s for rd64-refined (batch 8).
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


def quick_gelu_mlp(x: torch.Tensor, fc: nn.Linear, proj: nn.Linear) -> torch.Tensor:
    """proj(QuickGELU(fc(x))) for 2-D x, with QuickGELU(y) = silu(a*y) / a.

    a = 1.702 goes into the first GEMM (alpha, beta) and 1/a into the second (alpha), so
    the hidden activation sees a single SiLU (in place without autograd) instead of scale,
    sigmoid and product - also in training, where the two element-wise products and their
    backward passes were a tenth of the CLIP pretraining step. Other layer types (e.g.
    dynamically quantized Linear) take the plain form.
    """
    a = QUICK_GELU_SCALE
    if not all(type(m) is nn.Linear and m.bias is not None for m in (fc, proj)):
        h = fc(x)
        return proj(h * torch.sigmoid(h * a)) if torch.is_grad_enabled() else proj(h.mul_(torch.sigmoid(h * a)))
    h = torch.addmm(fc.bias, x, fc.weight.t(), beta=a, alpha=a)  # (n, hidden) = a * fc(x)
    h = F.silu(h) if torch.is_grad_enabled() else F.silu(h, inplace=True)
    return torch.addmm(proj.bias, h, proj.weight.t(), alpha=1.0 / a)


# Rows of the token matrix per chunk of `chunked_mlp` (about one 352 px image). Measured on
# 1 core: decoder for 20 prompts 35 % faster, ViT 5 % faster at batch 8, same for 1 image.
MLP_CHUNK_ROWS = 512


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout(x, p, training). On CPU the keep-mask comes from `torch.rand_like` instead of
    `bernoulli_`, which is about twice as slow there (the decoder's training step spent a
    quarter of its time in it). Same distribution, another random stream."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0 or tracing():
        return F.dropout(x, p, True)
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))


# Sequences up to this length take the written-out attention on CPU (`attention`): for
# short sequences and narrow heads it is faster than the fused kernel - measured on 2
# cores, (128, 4 heads, 65 tokens, 16 dims) forward + backward 8.8 vs 18.0 ms, forward 4.5
# vs 5.6 ms - while at ViT-B/16's 485 tokens the fused kernel is twice as fast.
SHORT_SEQUENCE = 128


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: float, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over (B, h, N, d), causal if asked. On CPU written out for
    short sequences (`SHORT_SEQUENCE`) and for dropout (the fused CPU kernels have no
    dropout and the fallback draws with `bernoulli_`); else SDPA."""
    n = q.shape[-2]
    if q.device.type != "cpu" or tracing() or (n > SHORT_SEQUENCE and drop == 0.0):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=causal)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, h, N, N)
    if causal:
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu_(1), float("-inf"))
    return dropout(torch.softmax(scores, dim=-1), drop, True) @ v


def tracing() -> bool:
    """Under an exporter or compiler (eager-only shortcuts would be frozen into the graph)."""
    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return torch.jit.is_tracing() or bool(compiling and compiling())


def use_chunked_mlp(x: torch.Tensor, module: nn.Module) -> bool:
    """The chunked MLP path: CPU, no autograd, eval mode, eager."""
    return (
        x.device.type == "cpu" and not torch.is_grad_enabled() and not module.training and x.numel() > 0
        and not tracing()
    )


def chunked_mlp(x: torch.Tensor, mlp, rows: int | None = None) -> torch.Tensor:
    """mlp(rows) over (..., D) computed `rows` tokens at a time; mlp maps (n, D) -> (n, D')."""
    rows = rows or MLP_CHUNK_ROWS
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    n = flat.shape[0]
    if n <= rows:
        return mlp(flat).reshape(*shape[:-1], -1)
    chunks = [mlp(flat[s : s + rows]) for s in range(0, n, rows)]
    return torch.cat(chunks).reshape(*shape[:-1], -1)


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
        y = attention(qkv[0], qkv[1], qkv[2], drop, causal)  # (B, h, N, d/h)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, d))


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
        if not isinstance(self.mlp.gelu, QuickGELU) or tracing():
            return x + self.mlp(self.ln_2(x))
        h = self.ln_2(x)
        rows = None if use_chunked_mlp(x, self) else h.shape[:-1].numel()  # one chunk under autograd
        return x + chunked_mlp(h, lambda t: quick_gelu_mlp(t, self.mlp.c_fc, self.mlp.c_proj), rows)


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
        x = self.norm1(x + dropout(self.self_attn(x), self.dropout1.p, self.training))
        if use_chunked_mlp(x, self):  # eval: dropout is the identity
            return self.norm2(x + chunked_mlp(x, lambda h: self.linear2(torch.relu_(self.linear1(h)))))
        h = dropout(F.relu(self.linear1(x)), self.dropout.p, self.training)
        return self.norm2(x + dropout(self.linear2(h), self.dropout2.p, self.training))
