"""Numerical parity with transformers.CLIPSegForImageSegmentation (random weights)."""

import functools

import pytest
import torch

from clipseg.model import build_clipseg
from clipseg.weights.convert import to_ours
from clipseg.weights.hf_config import clipseg_config_from_hf

from hf_reference import make_hf_clipseg, token_ids

pytest.importorskip("transformers")


@functools.lru_cache(maxsize=None)
def _full_pair(refined):
    """The (HF, ours) ViT-B/16 pair, built once per module: HF's init of 150 M params is slow."""
    hf = make_hf_clipseg(refined, size="full")
    return hf, _ours_from(hf, "rd64-uni-refined" if refined else "rd64-uni")


def _ours_from(hf, variant):
    sd, layout = to_ours(hf.state_dict())
    assert layout == "hf-clipseg"
    model = build_clipseg(variant).eval()
    model.load_state_dict(sd, strict=True)
    return model


@pytest.mark.parametrize("refined", [False, True], ids=["rd64", "rd64-refined"])
def test_vit_b16_parity_text_and_visual(refined):
    hf, ours = _full_pair(refined)
    torch.manual_seed(2)
    cond_pixels = torch.randn(2, 3, 352, 352)
    ids = token_ids(2, 77)
    for size in (352, 224):
        pixels = torch.randn(2, 3, size, size)
        with torch.no_grad():
            ref_text = hf(pixel_values=pixels, input_ids=ids).logits
            ref_vis = hf(pixel_values=pixels, conditional_pixel_values=cond_pixels).logits
            got_text = ours(pixels, text_ids=ids)
            got_vis = ours(pixels, cond_pixels=cond_pixels)
        assert got_text.shape == ref_text.shape == (2, size, size)
        assert ref_text.abs().max() > 1.0  # a real signal, not all zeros
        assert (got_text - ref_text).abs().max() < 1e-4
        assert (got_vis - ref_vis).abs().max() < 1e-4


def test_parity_of_embeddings_and_pooled_text():
    hf, ours = _full_pair(False)
    ids = token_ids(3, 77, seed=5)
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ref_t = hf.clip.get_text_features(input_ids=ids).pooler_output
        ref_i = hf.clip.get_image_features(pixel_values=pixels).pooler_output
        assert (ours.encode_text(ids) - ref_t).abs().max() < 1e-4
        assert (ours.encode_visual_prompt(pixels) - ref_i).abs().max() < 1e-4


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize("refined", [False, True])
def test_tiny_parity_any_square_size(refined, layer):
    """Equal logits at any square size, with FiLM at decoder step `layer` (HF's
    conditional_layer, our cond_layer, the world models' decoder_cond_layer); the prompt
    changes them."""
    hf = make_hf_clipseg(refined, size="tiny", conditional_layer=layer)
    config = clipseg_config_from_hf(hf.config.to_dict())
    assert config.decoder.cond_layer == layer
    ours = _ours_from(hf, config)
    ids = token_ids(2, 16)
    for size in (64, 96, 128):
        pixels = torch.randn(2, 3, size, size)
        with torch.no_grad():
            ref = hf(pixel_values=pixels, input_ids=ids).logits
            got = ours(pixels, text_ids=ids)
            got_one_image = ours(pixels[:1].expand(2, -1, -1, -1), text_ids=ids)  # one image, two prompts
        assert (got - ref).abs().max() < 1e-4
        assert (got_one_image[0] - got_one_image[1]).abs().max() > 1e-3

