"""The CLIPSeg decoder (paper Sec. 3.1, SPEC "Model")."""

from __future__ import annotations

import math

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


def upsample(trans_conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """trans_conv (a layer or an nn.Sequential) on an (N, D, gh, gw) map. On CPU its trailing
    non-overlapping transposed convolutions run as matmuls (`upsample_as_matmuls`: same math,
    several times faster than the CPU kernels)."""
    layers = list(trans_conv) if isinstance(trans_conv, nn.Sequential) else [trans_conv]
    if x.device.type != "cpu":
        return trans_conv(x)
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


class CLIPSegDecoder(nn.Module):
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
        return upsample(self.trans_conv, tokens_to_map(a, grid))[:, 0]


class DeconvDecoder(nn.Module):
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
        return upsample(self.trans_conv, tokens_to_map(a, grid))[:, 0]


DECODERS = {"clipseg": CLIPSegDecoder, "deconv": DeconvDecoder}


def build_decoder(config: DecoderConfig, clip_width: int, embed_dim: int, patch_size: int) -> nn.Module:
    if config.kind not in DECODERS:
        raise ValueError(f"unknown decoder kind '{config.kind}', expected one of {sorted(DECODERS)}")
    return DECODERS[config.kind](config, clip_width, embed_dim, patch_size)
