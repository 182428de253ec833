"""The CPU speed paths, behind one function: `optimize_for_cpu(model)`.

The model files (`transformer.py`, `decoder.py`, `clip_vision.py`) hold the plain reference
forward passes. `optimize_for_cpu` turns each block of a model into its subclass here (the
same parameters and state dict; only methods differ), whose methods take a faster route on
CPU tensors in eager mode and call the reference otherwise (CUDA, MPS, tracing, compiling).
`clipseg.load`, the Predictor and the trainer apply it; `reference_forward(model)` turns a
model back for the time of a `with` block (the ONNX exporter runs in one), so an exported
or traced graph is the reference by construction. Same math within float rounding (about
1e-7 relative; tests compare both against the HF port).

- MLPs run in row chunks without autograd (`chunked_mlp`): the wide hidden activation
  (tokens x 3072 in the ViT, x 2048 in the decoder) stays in cache. Measured on 1 core:
  decoder for 20 prompts 35 % faster, ViT 5 % faster at batch 8.
- The QuickGELU MLP is one SiLU between GEMMs that carry the 1.702 scale
  (`quick_gelu_mlp`), in place without autograd; also in training, where the element-wise
  passes were a tenth of the CLIP pretraining step.
- Short sequences take a written-out attention (`attention`): (128, 4 heads, 65 tokens,
  16 dims) forward + backward 8.8 vs 18.0 ms on 2 cores; at ViT-B/16's 485 tokens the fused
  kernel is twice as fast, so it keeps them.
- Dropout masks come from `torch.rand_like` (about twice as fast as `bernoulli_` on CPU):
  the world decoder's training step 0.20 -> 0.18 s (batch 64), rd64-refined 1.01 -> 0.89 s.
- Non-overlapping transposed convolutions run as matmuls (`upsample_as_matmuls`).
- The resized positional embedding is cached per grid without autograd.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from .clip_vision import VisionTransformer
from .decoder import CLIPSegDecoder, DeconvDecoder
from .transformer import QUICK_GELU_SCALE, PostNormEncoderLayer, QuickGELU, ResidualAttentionBlock, SelfAttention


def tracing() -> bool:
    """Under an exporter or compiler (eager-only shortcuts would be frozen into the graph)."""
    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return torch.jit.is_tracing() or bool(compiling and compiling())


def on_cpu(x: torch.Tensor) -> bool:
    """The speed paths' one condition: a CPU tensor in eager mode."""
    return x.device.type == "cpu" and not tracing()


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
    if not on_cpu(x) or p >= 1.0:
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
    if not on_cpu(q) or (n > SHORT_SEQUENCE and drop == 0.0):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=causal)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, h, N, N)
    if causal:
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu_(1), float("-inf"))
    return dropout(torch.softmax(scores, dim=-1), drop, True) @ v


def use_chunked_mlp(x: torch.Tensor, module: nn.Module) -> bool:
    """The chunked MLP path: CPU, no autograd, eval mode, eager."""
    return on_cpu(x) and not torch.is_grad_enabled() and not module.training and x.numel() > 0


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


def _is_patch_deconv(m: nn.Module) -> bool:
    """A ConvTranspose2d whose kernel equals its stride (no overlap): a per-pixel linear map."""
    return (
        type(m) is nn.ConvTranspose2d and m.kernel_size == m.stride and m.padding == (0, 0)
        and m.output_padding == (0, 0) and m.dilation == (1, 1) and m.groups == 1
    )


def _patch_deconv(x: torch.Tensor, m: nn.ConvTranspose2d) -> torch.Tensor:
    """(..., Cin) channels-last pixels -> (..., kh, kw, Cout): `m` applied as one matmul."""
    cin, cout, kh, kw = m.weight.shape
    w = m.weight.permute(0, 2, 3, 1).reshape(cin, kh * kw * cout)
    b = m.bias.repeat(kh * kw) if m.bias is not None else None
    return F.linear(x, w.t(), b).unflatten(-1, (kh, kw, cout))


def upsample_as_matmuls(x: torch.Tensor, layers: list[nn.Module]) -> torch.Tensor:
    """Non-overlapping transposed convolutions (kernel = stride) and ReLUs on an (N, C, H, W)
    map, computed as channels-last matmuls with one final re-arrangement -> (N, Cout, H', W').

    Same math as running `layers` (ConvTranspose2d with k = s turns every input pixel into a
    k x k block), without the slow CPU transposed-convolution kernels.
    """
    n, _, h, w = x.shape
    y = x.permute(0, 2, 3, 1)  # (N, H, W, C)
    kernels = []
    for m in layers:
        if isinstance(m, nn.ReLU):
            y = torch.relu_(y) if not torch.is_grad_enabled() else torch.relu(y)
        else:
            y = _patch_deconv(y, m)  # (N, H, W, *blocks, kh, kw, Cout)
            kernels.append(m.kernel_size)
    # y: (N, H, W, kh1, kw1, kh2, kw2, ..., C) -> (N, C, H, kh1, kh2, ..., W, kw1, kw2, ...)
    k = len(kernels)
    rows = [3 + 2 * i for i in range(k)]
    cols = [4 + 2 * i for i in range(k)]
    y = y.permute(0, y.dim() - 1, 1, *rows, 2, *cols)
    sh = h * math.prod(kk[0] for kk in kernels)
    sw = w * math.prod(kk[1] for kk in kernels)
    return y.reshape(n, y.shape[1], sh, sw)


def upsample_on_cpu(trans_conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """trans_conv (a layer or an nn.Sequential) on an (N, D, gh, gw) map, its trailing
    non-overlapping transposed convolutions run as matmuls (`upsample_as_matmuls`: same math,
    several times faster than the CPU kernels)."""
    layers = list(trans_conv) if isinstance(trans_conv, nn.Sequential) else [trans_conv]
    head = 0  # leading layers that are not patch deconvolutions (the refined 3x3 conv)
    while head < len(layers) and not (_is_patch_deconv(layers[head]) or isinstance(layers[head], nn.ReLU)):
        head += 1
    while head < len(layers) and isinstance(layers[head], nn.ReLU):  # its ReLU stays with it
        head += 1
    tail = layers[head:]
    if not tail or not all(_is_patch_deconv(m) or isinstance(m, nn.ReLU) for m in tail):
        return trans_conv(x)
    for m in layers[:head]:
        x = m(x)
    return upsample_as_matmuls(x, tail)




class FastSelfAttention(SelfAttention):
    def attend(self, q, k, v, drop, causal):
        return attention(q, k, v, drop, causal)


class FastResidualAttentionBlock(ResidualAttentionBlock):
    def feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.mlp.gelu, QuickGELU) or not on_cpu(h):
            return super().feed_forward(h)
        rows = None if use_chunked_mlp(h, self) else h.shape[:-1].numel()  # one chunk under autograd
        return chunked_mlp(h, lambda t: quick_gelu_mlp(t, self.mlp.c_fc, self.mlp.c_proj), rows)


class FastPostNormEncoderLayer(PostNormEncoderLayer):
    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not use_chunked_mlp(x, self):
            return super().feed_forward(x)
        return chunked_mlp(x, lambda h: self.linear2(torch.relu_(self.linear1(h))))  # eval: no dropout

    def drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return dropout(x, p, self.training)


class MatmulUpsample:
    """The decoders' upsampling with its patch deconvolutions as matmuls on CPU."""

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_on_cpu(self.trans_conv, x) if on_cpu(x) else super().upsample(x)


class FastCLIPSegDecoder(MatmulUpsample, CLIPSegDecoder):
    pass


class FastDeconvDecoder(MatmulUpsample, DeconvDecoder):
    pass


class FastVisionTransformer(VisionTransformer):
    def positional_embedding_for(self, gh: int, gw: int) -> torch.Tensor:
        """The reference's result, cached per grid while the parameter is unchanged (no autograd)."""
        pos = self.positional_embedding
        if torch.is_grad_enabled() or tracing():
            return super().positional_embedding_for(gh, gw)
        key = (gh, gw, pos.dtype, pos.device, pos.data_ptr(), pos._version)
        cached = getattr(self, "_pos_cache", None)
        if cached is None or cached[0] != key:
            self._pos_cache = cached = (key, super().positional_embedding_for(gh, gw))
        return cached[1]


FAST: dict[type, type] = {
    SelfAttention: FastSelfAttention,
    ResidualAttentionBlock: FastResidualAttentionBlock,
    PostNormEncoderLayer: FastPostNormEncoderLayer,
    CLIPSegDecoder: FastCLIPSegDecoder,
    DeconvDecoder: FastDeconvDecoder,
    VisionTransformer: FastVisionTransformer,
}
REFERENCE = {fast: plain for plain, fast in FAST.items()}


def optimize_for_cpu(model: nn.Module) -> nn.Module:
    """Turn every block of `model` with a CPU speed path into its fast subclass, in place
    (parameters, buffers and state dict unchanged); returns the model. Idempotent; blocks
    on other devices keep running the reference."""
    for module in model.modules():
        fast = FAST.get(type(module))
        if fast is not None:
            module.__class__ = fast
    return model


@contextmanager
def reference_forward(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` with the plain reference blocks inside the block (for exporters and
    tracers), then restore the blocks it had."""
    swapped = [(m, type(m)) for m in model.modules() if type(m) in REFERENCE]
    for module, fast in swapped:
        module.__class__ = REFERENCE[fast]
    try:
        yield model
    finally:
        for module, fast in swapped:
            module.__class__ = fast
