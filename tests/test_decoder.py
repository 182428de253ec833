"""The decoders' CPU upsampling (transposed convolutions as matmuls, `optimize_for_cpu`) equals the conv kernels."""

import pytest
import torch

from clipseg.model.config import DecoderConfig
from clipseg.model.decoder import build_decoder
from clipseg.model.fast_cpu import optimize_for_cpu


@pytest.mark.parametrize("config", [
    DecoderConfig(reduce_dim=16, refined=True),  # 3x3 conv, ReLU, deconv k=4, ReLU, deconv k=4
    DecoderConfig(reduce_dim=16),  # one deconv k=16
    DecoderConfig(kind="deconv", reduce_dim=16),  # CLIP-Deconv: one deconv k=16
])
def test_upsampling_as_matmuls_equals_the_transposed_convolutions(config):
    torch.manual_seed(0)
    decoder = build_decoder(config, clip_width=32, embed_dim=8, patch_size=16)
    x = torch.randn(2, 16, 3, 5)
    expected = decoder.trans_conv(x)
    assert expected.shape == (2, 1, 48, 80)
    assert torch.allclose(decoder.upsample(x), expected)  # the reference
    assert torch.allclose(optimize_for_cpu(decoder).upsample(x), expected, atol=1e-5)


def test_a_film_step_outside_the_decoder_is_rejected_not_built_prompt_blind():
    """cond_layer must name one of the decoder's steps (one per extract layer), else the prompt
    would never reach the decoder; an HF config.json saying so is a CheckpointError naming it."""
    from clipseg.weights import CheckpointError
    from clipseg.weights.hf_config import clipseg_config_from_hf

    for bad in (-1, 3, 7):
        with pytest.raises(ValueError, match=f"cond_layer {bad} is not one of the decoder's 3 steps"):
            DecoderConfig(cond_layer=bad)
    assert DecoderConfig(cond_layer=2).cond_layer == 2
    assert DecoderConfig(kind="deconv", extract_layers=(9,), cond_layer=0).kind == "deconv"
    with pytest.raises(CheckpointError, match="x/config.json: its decoder settings are invalid: cond_layer 3"):
        clipseg_config_from_hf({"model_type": "clipseg", "conditional_layer": 3}, "x/config.json")
