"""The CPU inference fast paths of the transformer blocks equal the plain (autograd) forms."""

import pytest
import torch

from clipseg.model.transformer import PostNormEncoderLayer, ResidualAttentionBlock, chunked_mlp


def _plain_and_fast(block: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    block.eval()
    with torch.enable_grad():  # autograd on: the plain module path
        plain = block(x.requires_grad_(True)).detach()
    with torch.inference_mode():
        fast = block(x.detach())
    return plain, fast


@pytest.mark.parametrize("tokens", [7, 600, 1100])  # one chunk, two, three (MLP_CHUNK_ROWS = 512)
def test_quick_gelu_block_fast_path_equals_plain(tokens):
    torch.manual_seed(0)
    block = ResidualAttentionBlock(64, 4)
    x = torch.randn(2, tokens // 2 + 1, 64) * 3
    plain, fast = _plain_and_fast(block, x)
    assert torch.allclose(plain, fast, atol=1e-5, rtol=1e-5), (plain - fast).abs().max()


def test_post_norm_layer_fast_path_equals_plain():
    torch.manual_seed(0)
    layer = PostNormEncoderLayer(32, 4, mlp_dim=128)
    plain, fast = _plain_and_fast(layer, torch.randn(3, 700, 32))
    assert torch.allclose(plain, fast, atol=1e-5, rtol=1e-5)


def test_quick_gelu_block_with_dynamic_int8_linears_runs_the_plain_form():
    torch.manual_seed(0)
    block = ResidualAttentionBlock(32, 4).eval()
    x = torch.randn(1, 20, 32)
    quantized = torch.ao.quantization.quantize_dynamic(block, {torch.nn.Linear}, dtype=torch.qint8)
    with torch.inference_mode():
        ref, out = block(x), quantized(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 0.1  # int8 rounding, not a different function


def test_chunked_mlp_keeps_leading_dims():
    x = torch.randn(2, 3, 5, 4)
    out = chunked_mlp(x, lambda h: h[:, :2] * 2, rows=7)
    assert out.shape == (2, 3, 5, 2)
    assert torch.equal(out, x[..., :2] * 2)
