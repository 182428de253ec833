"""Visual prompt engineering: crop with context, blur and darken the background."""

import pytest
import torch

from clipseg.io.transforms import denormalize, normalize
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
           background=0.0, space="pixel", style="square-context")))
    fg = denormalize(obj).mean(0) > 0.5
    cols = fg.any(0).nonzero().flatten()
    rows = fg.any(1).nonzero().flatten()
    assert 38 <= len(cols) <= 42 and 18 <= len(rows) <= 22


def test_background_darkened_and_blurred_object_kept():
    img, mask = _scene()
    cfg = VisualPromptConfig(crop=False, size=120, space="pixel", style="square-context")
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


# ---------------------------------------------------------------- the authors' crop_blur_highlight352


def authors_crop_blur_highlight(img: torch.Tensor, mask: torch.Tensor, image_size: int = 352,
                                fix_sizes: bool = False) -> torch.Tensor:
    """timojl/clipseg `blend_image_segmentation(img, seg, 'crop_blur_highlight352')`, written
    from their code: `img_preprocess(blur=3, center_context=0.1, bg_fac=0.1, image_size)`
    with `object_crop` -> `crop_mask(context=0.1)` -> `pad_to_square` -> nearest resize.

    Their crop_mask takes the right end and clamp of x from mask.size(0) (the height) and
    those of y from mask.size(1) (the width): right on square images, as they trained. With
    fix_sizes=True the width is used for x and the height for y, nothing else changed."""
    cv2 = pytest.importorskip("cv2")
    img_bl = torch.from_numpy(cv2.GaussianBlur(img.permute(1, 2, 0).numpy(), (15, 15), 3)).permute(2, 0, 1)
    img_inp = img * mask + 0.1 * img_bl * (1 - mask)
    # crop_mask(img, mask, context=0.1, square=False), as written (bbox = [x0, x1, y0, y1])
    size_x, size_y = (mask.size(1), mask.size(0)) if fix_sizes else (mask.size(0), mask.size(1))
    bbox = [mask.max(0).values.argmax(), size_x - mask.max(0).values.flip(0).argmax()]
    bbox += [mask.max(1).values.argmax(), size_y - mask.max(1).values.flip(0).argmax()]
    bbox = [int(x) for x in bbox]
    width, height = (bbox[3] - bbox[2]), (bbox[1] - bbox[0])
    context = 0.1
    bbox[0] = int(max(0, bbox[0] - context * height))
    bbox[1] = int(min(size_x, bbox[1] + context * height))
    bbox[2] = int(max(0, bbox[2] - context * width))
    bbox[3] = int(min(size_y, bbox[3] + context * width))
    img_crop = img_inp[:, bbox[2]: bbox[3], bbox[0]: bbox[1]]
    # pad_to_square(img_crop, channel_dim=0): torchvision pad(padding=(left, top, right, bottom)), fill 0
    h, w = img_crop.shape[1:]
    pady1 = pady2 = padx1 = padx2 = 0
    if h > w:
        padx1 = (h - w) // 2
        padx2 = h - w - padx1
    elif w > h:
        pady1 = (w - h) // 2
        pady2 = w - h - pady1
    img_padded = torch.nn.functional.pad(img_crop, (padx1, padx2, pady1, pady2), mode="constant", value=0)
    return torch.nn.functional.interpolate(img_padded.unsqueeze(0), (image_size, image_size)).squeeze(0)


def _case(h: int, w: int, box: tuple[int, int, int, int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    img = normalize(torch.rand(3, h, w, generator=g))
    mask = torch.zeros(h, w)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 1
    if (y1 - y0) > 6 and (x1 - x0) > 6:  # not a rectangle: a notch
        mask[y0 + (y1 - y0) // 2:, x0:x0 + (x1 - x0) // 3] = 0
        mask[y1 - 1, x0] = 1  # keeps the bounding box
    return img, mask


AUTHORS_CASES = {
    "inside, square image": (352, 352, (100, 180, 120, 260)),
    "touching the left and top edges": (352, 352, (0, 90, 0, 140)),
    "touching the right and bottom edges": (352, 352, (250, 352, 200, 352)),
    "whole image": (352, 352, (0, 352, 0, 352)),
    "tall thin mask": (352, 352, (10, 340, 170, 182)),
    "wide flat mask": (352, 352, (200, 206, 3, 349)),
    "one pixel": (352, 352, (17, 18, 300, 301)),
    "small square image": (120, 120, (30, 70, 5, 110)),
    "small square image, edge": (120, 120, (0, 120, 100, 120)),
}
NON_SQUARE_CASES = {
    "wide image, object inside": (240, 400, (60, 150, 20, 200)),
    "wide image, object at the right edge": (240, 400, (60, 150, 300, 400)),
    "tall image, object at the bottom edge": (400, 240, (300, 400, 40, 200)),
    "tall image, thin mask at the top": (400, 240, (0, 5, 10, 230)),
}


@pytest.mark.parametrize("case", sorted(AUTHORS_CASES))
def test_default_is_the_authors_crop_blur_highlight352(case):
    h, w, box = AUTHORS_CASES[case]
    img, mask = _case(h, w, box)
    ours = engineer_visual_prompt(img, mask, VisualPromptConfig(size=352))
    theirs = authors_crop_blur_highlight(img, mask)
    assert ours.shape == theirs.shape == (3, 352, 352)
    assert (ours - theirs).abs().max().item() < 1e-5


@pytest.mark.parametrize("case", sorted(NON_SQUARE_CASES))
def test_non_square_images_follow_the_authors_code_with_width_and_height_in_place(case):
    h, w, box = NON_SQUARE_CASES[case]
    img, mask = _case(h, w, box)
    ours = engineer_visual_prompt(img, mask, VisualPromptConfig(size=352))
    theirs = authors_crop_blur_highlight(img, mask, fix_sizes=True)
    assert (ours - theirs).abs().max().item() < 1e-5
    literal = authors_crop_blur_highlight(img, mask) if box[3] + 20 < h else None  # their code as written
    if literal is not None and literal.numel():
        assert (literal - theirs).abs().max() > 0.1  # the mix-up moves their crop off the object


def test_square_context_style_is_kept_as_an_option():
    img, mask = _case(352, 352, (0, 90, 0, 140))
    a = engineer_visual_prompt(img, mask, VisualPromptConfig(size=352, style="square-context"))
    b = engineer_visual_prompt(img, mask, VisualPromptConfig(size=352))
    assert a.shape == b.shape and (a - b).abs().max() > 0.1
    with pytest.raises(ValueError, match="style"):
        VisualPromptConfig(style="nope")
