"""The CPU fast paths of the transformer blocks (chunked MLPs, the SiLU form of QuickGELU,
written-out attention for short sequences), swapped in by `optimize_for_cpu`, equal the
plain reference forms, outputs and gradients; `reference_forward` gives the plain form back."""

import copy

import pytest
import torch
import torch.nn.functional as F

from clipseg import build_clipseg
from clipseg.model.fast_cpu import (
    SHORT_SEQUENCE,
    attention,
    chunked_mlp,
    dropout,
    optimize_for_cpu,
    reference_forward,
)
from clipseg.model.transformer import PostNormEncoderLayer, ResidualAttentionBlock


def _reference_block(block: ResidualAttentionBlock, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """CLIP's block written plainly: fused SDPA attention, then block.mlp (c_fc, QuickGELU, c_proj)."""
    a = block.attn
    h = block.ln_1(x)
    b, n, d = h.shape
    qkv = F.linear(h, a.in_proj_weight, a.in_proj_bias).view(b, n, 3, a.heads, d // a.heads).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=causal).transpose(1, 2).reshape(b, n, d)
    x = x + a.out_proj(y)
    return x + block.mlp(block.ln_2(x))


def _plain_and_fast(block: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    block.eval()
    fast_block = optimize_for_cpu(copy.deepcopy(block))
    assert type(fast_block) is not type(block)
    with torch.inference_mode():
        return block(x), fast_block(x)


@pytest.mark.parametrize("tokens", [7, 600, 1100])  # one chunk, two, three (MLP_CHUNK_ROWS = 512)
def test_quick_gelu_block_fast_path_equals_plain(tokens):
    torch.manual_seed(0)
    block = ResidualAttentionBlock(64, 4)
    x = torch.randn(2, tokens // 2 + 1, 64) * 3
    plain, fast = _plain_and_fast(block, x)
    assert torch.allclose(plain, fast, atol=1e-5, rtol=1e-5), (plain - fast).abs().max()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tokens", [9, SHORT_SEQUENCE + 40])  # written-out attention, fused kernel
def test_block_in_training_equals_the_plain_form_with_gradients(tokens, causal):
    torch.manual_seed(0)
    block = optimize_for_cpu(ResidualAttentionBlock(32, 4).train())
    x = torch.randn(3, tokens, 32) * 2
    out = block(x, causal=causal)
    ref = _reference_block(block, x, causal)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5), (out - ref).abs().max()
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(block.parameters()), g)
    ref_grads = torch.autograd.grad(ref, list(block.parameters()), g)
    for (name, _), got, want in zip(block.named_parameters(), grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), name


@pytest.mark.parametrize("causal", [False, True])
def test_block_inference_equals_the_plain_form(causal):
    torch.manual_seed(0)
    block = optimize_for_cpu(ResidualAttentionBlock(32, 4).eval())
    x = torch.randn(2, 20, 32)
    with torch.inference_mode():
        out, ref = block(x, causal=causal), _reference_block(block, x, causal)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_post_norm_layer_fast_path_equals_plain():
    torch.manual_seed(0)
    layer = PostNormEncoderLayer(32, 4, mlp_dim=128)
    plain, fast = _plain_and_fast(layer, torch.randn(3, 700, 32))
    assert torch.allclose(plain, fast, atol=1e-5, rtol=1e-5)


def test_quick_gelu_block_with_dynamic_int8_linears_runs_the_plain_form():
    torch.manual_seed(0)
    block = optimize_for_cpu(ResidualAttentionBlock(32, 4).eval())
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


def test_cpu_dropout_keeps_the_distribution_and_its_gradient():
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    y = dropout(x, 0.25, True)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.25) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.75))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask)/dx = mask
    assert dropout(x, 0.25, False) is x and dropout(x, 0.0, True) is x


def test_attention_with_dropout_is_unbiased_and_without_equals_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 6, 8) for _ in range(3))
    exact = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(attention(q, k, v, 0.0, False), exact)
    runs = torch.stack([attention(q, k, v, 0.1, False) for _ in range(4000)])
    assert not torch.equal(runs[0], runs[1])
    assert (runs.mean(0) - exact).abs().max() < 0.05  # E[dropout(p)] = p


@pytest.mark.parametrize("causal", [False, True])
def test_written_out_attention_of_short_sequences_equals_sdpa(causal):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, SHORT_SEQUENCE, 16, requires_grad=True) for _ in range(3))
    out = attention(q, k, v, 0.0, causal)
    exact = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(out, exact, atol=1e-5)
    g = torch.randn_like(out)
    for got, want in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(exact, (q, k, v), g)):
        assert torch.allclose(got, want, atol=1e-5)


def test_optimize_for_cpu_keeps_the_state_dict_and_reference_forward_restores_the_plain_blocks():
    torch.manual_seed(0)
    model = build_clipseg("tiny").eval()
    plain_types = [type(m) for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pixels, ids = torch.randn(2, 3, 64, 64), torch.randint(1, 400, (2, 16))
    with torch.inference_mode():
        want = model(pixels, text_ids=ids)
        optimize_for_cpu(model)
        assert [type(m) for m in model.modules()] != plain_types
        got = model(pixels, text_ids=ids)
        with reference_forward(model):
            assert [type(m) for m in model.modules()] == plain_types
            again = model(pixels, text_ids=ids)
    assert [type(m) for m in optimize_for_cpu(model).modules()] != plain_types  # restored, idempotent
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.allclose(got, want, atol=1e-5) and torch.equal(again, want)
