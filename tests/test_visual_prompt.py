"""Visual prompt engineering: crop with context, blur and darken the background."""

import pytest
import torch

from clipseg.data.transforms import denormalize, normalize
from clipseg.prompts.visual import VisualPromptConfig, engineer_visual_prompt, gaussian_blur


def _scene():
    img = torch.rand(3, 120, 200)
    mask = torch.zeros(120, 200)
    mask[40:60, 100:140] = 1  # a 20 x 40 object
    return normalize(img), mask


def test_gaussian_blur_matches_reference_kernel_and_keeps_constants():
    x = torch.full((3, 40, 40), 0.7)
    assert torch.allclose(gaussian_blur(x, 15, 3.0), x, atol=1e-6)
    impulse = torch.zeros(1, 31, 31)
    impulse[0, 15, 15] = 1
    out = gaussian_blur(impulse, 15, 3.0)[0]
    t = torch.arange(-7, 8, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / 3.0) ** 2)
    k = k / k.sum()
    assert torch.allclose(out[8:23, 8:23], torch.outer(k, k), atol=1e-6)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_crop_is_square_around_object_with_context():
    img, mask = _scene()
    cfg = VisualPromptConfig(size=64, blur_kernel=0, background=1.0)
    out = engineer_visual_prompt(img, mask, cfg)
    assert out.shape == (3, 64, 64)
    # object 20x40 with 10% context -> 24x48 box, squared to 48: the object spans 40/48 of the width
    obj = (engineer_visual_prompt(normalize(torch.ones(3, 120, 200)), mask, VisualPromptConfig(size=48, blur_kernel=0,
           background=0.0, space="pixel")))
    fg = denormalize(obj).mean(0) > 0.5
    cols = fg.any(0).nonzero().flatten()
    rows = fg.any(1).nonzero().flatten()
    assert 38 <= len(cols) <= 42 and 18 <= len(rows) <= 22


def test_background_darkened_and_blurred_object_kept():
    img, mask = _scene()
    cfg = VisualPromptConfig(crop=False, size=120, space="pixel")
    out = denormalize(engineer_visual_prompt(img, mask, cfg))
    # padded to a 200x200 square then resized to 120: find the object region back
    src = denormalize(img)
    scale = 120 / 200
    y0, x0 = int((40 + 40) * scale) + 1, int(100 * scale) + 1
    inside = out[:, y0 : y0 + 8, x0 : x0 + 20]
    assert inside.mean() > 0.3  # object kept at full intensity (mean of U(0,1) ~ 0.5)
    bg = out[:, 30:45, 5:40]  # background inside the image area (y in 24..96 after padding)
    assert bg.mean() < 0.1 * src.mean() + 0.02


def test_empty_mask_and_bad_shapes_raise():
    img, mask = _scene()
    with pytest.raises(ValueError, match="empty"):
        engineer_visual_prompt(img, torch.zeros_like(mask))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        engineer_visual_prompt(img[:1], mask)


def test_mask_of_other_size_is_resized():
    img, mask = _scene()
    small = mask[::2, ::2]
    a = engineer_visual_prompt(img, mask, VisualPromptConfig(size=32))
    b = engineer_visual_prompt(img, small, VisualPromptConfig(size=32))
    assert a.shape == b.shape == (3, 32, 32)
