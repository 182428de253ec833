"""The decoders' CPU upsampling (transposed convolutions as matmuls) equals the conv kernels."""

import pytest
import torch

from clipseg.model.config import DecoderConfig
from clipseg.model.decoder import build_decoder, upsample


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
    assert torch.allclose(upsample(decoder.trans_conv, x), expected, atol=1e-5)
