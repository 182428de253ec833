"""Image reading: every mode becomes upright 8-bit RGB; bad input raises ImageError."""

import io

import numpy as np
import pytest
from PIL import Image

from clipseg import ImageError, load_image
from clipseg.io.image_io import load_mask


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_modes_become_rgb(tmp_path):
    gray16 = Image.fromarray((np.arange(64 * 32).reshape(32, 64) * 30).astype(np.uint16))
    p = tmp_path / "g16.png"
    gray16.save(p)
    out = load_image(p)
    assert out.mode == "RGB" and out.size == (64, 32)
    assert np.asarray(out)[..., 0].max() > 200  # scaled from 16 bits, not clipped to 255 raw
    cmyk = Image.new("CMYK", (10, 10), (0, 255, 255, 0))  # red in CMYK
    r, g, b = load_image(cmyk).getpixel((5, 5))
    assert r > 200 and g < 50 and b < 50
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent -> white background
    assert load_image(rgba).getpixel((1, 1)) == (255, 255, 255)
    pal = Image.new("P", (8, 8), 3)
    pal.putpalette([0, 0, 0, 10, 10, 10, 20, 20, 20, 0, 255, 0] + [0] * 756)
    assert load_image(_png(pal)).getpixel((0, 0)) == (0, 255, 0)
    assert load_image(np.zeros((5, 7), bool)).size == (7, 5)
    assert load_image(np.ones((5, 7, 4), np.float32)).getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when shown
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif)
    assert load_image(p).size == (20, 40)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (_png(Image.new("RGB", (64, 64)))[:60], "corrupt or truncated"),
    ],
)
def test_bad_bytes(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_truncated_jpeg_and_missing_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, "JPEG")
    p = tmp_path / "t.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(p)
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")


def test_decompression_bomb_is_refused_before_decoding():
    for size in ((20000, 20000), (9000, 8000)):  # 400 Mpx (Pillow's limit), 72 Mpx (ours)
        data = _png(Image.new("1", size))  # 1-bit: a small file
        with pytest.raises(ImageError, match="decompression bomb"):
            load_image(data)


def test_mask_reading():
    m = load_mask(np.array([[0, 3], [0, 0]], np.uint8))
    assert m.tolist() == [[False, True], [False, False]]
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 0, 255))
    assert load_mask(rgba).sum() == 1
    assert load_mask(np.ones((2, 2)), size=(4, 6)).shape == (6, 4)
