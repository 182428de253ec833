"""Bad input through every interface: corrupt, truncated, zero-size, gigantic (decompression
bomb), non-image files; CMYK / 16-bit / palette+transparency / RGBA images (which must
work); empty and 1000-token prompts; unknown checkpoint files. The CLI gives an exit code
and a clear message and continues past bad files; the server answers 4xx JSON and keeps
serving."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clipseg.cli.main import cli
from clipseg.inference import naming

W = ["--weights", "tiny:random", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A valid PNG header declaring w x h pixels (10 Gpx), with almost no data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(h=48, w=64, seed=0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))


def bad_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, what the error must mention)."""
    jpeg = _encode(_photo(), "JPEG", quality=90)
    png = _encode(_photo(), "PNG")
    return {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) // 2], "truncated"),
        "empty.png": (b"", "empty"),
        "random.jpg": (np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not an image"),
        "text.png": (b"hello, I am a text file pretending to be a PNG\n", "not an image"),
        "bomb.png": (bomb_png(), "too large"),  # 10 Gpx: Pillow itself refuses to open it
        "bomb_81mpx.png": (bomb_png(9000, 9000), "9000x9000"),  # under Pillow's limits, over ours
    }


def odd_files() -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Unusual but valid images: name -> (bytes, (height, width))."""
    cmyk = Image.new("CMYK", (40, 30), (10, 200, 30, 5))
    i16 = Image.fromarray((np.arange(30 * 40).reshape(30, 40) * 50).astype(np.uint16))
    assert i16.mode == "I;16"
    pal = Image.new("P", (40, 30), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    pal.paste(2, (10, 10, 30, 20))
    rgba = Image.fromarray(np.dstack([np.asarray(_photo(30, 40)), np.full((30, 40), 128, np.uint8)]), "RGBA")
    return {
        "cmyk.jpg": (_encode(cmyk, "JPEG"), (30, 40)),
        "sixteen_bit.png": (_encode(i16, "PNG"), (30, 40)),
        "palette_transparent.png": (_encode(pal, "PNG", transparency=0), (30, 40)),
        "rgba.png": (_encode(rgba, "PNG"), (30, 40)),
        "gray.png": (_encode(_photo(30, 40).convert("L"), "PNG"), (30, 40)),
    }


def test_the_generated_files_are_what_they_claim():
    assert Image.open(io.BytesIO(odd_files()["cmyk.jpg"][0])).mode == "CMYK"
    assert Image.open(io.BytesIO(odd_files()["sixteen_bit.png"][0])).mode in ("I;16", "I")
    pal = Image.open(io.BytesIO(odd_files()["palette_transparent.png"][0]))
    assert pal.mode == "P" and "transparency" in pal.info
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb_png()))
    assert Image.open(io.BytesIO(bomb_png(9000, 9000))).size == (9000, 9000)


# ---------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    for name, (data, _) in bad_files().items():
        (root / "bad" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "bad" / name).write_bytes(data)
    for name, (data, _) in odd_files().items():
        (root / "odd" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "odd" / name).write_bytes(data)
    _photo().save(root / "good.png")
    return root


def test_cli_batch_continues_past_every_bad_file_and_reports_them(folder, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["segment", str(folder), "-p", "a thing", "--prob", "npy", "-o", str(out), *W])
    assert res.exit_code == 1, res.output
    n_bad, n_ok = len(bad_files()), len(odd_files()) + 1
    assert f"{n_bad + n_ok} image(s): {n_ok} segmented, 0 skipped (outputs exist), {n_bad} failed" in res.output
    report = res.output[res.output.index("failed:"):]
    for name, (_, reason) in bad_files().items():
        line = next(ln for ln in report.splitlines() if name in ln)
        assert reason in line, line
    assert "Traceback" not in res.output
    for name, (_, hw) in odd_files().items():  # the unusual-but-valid ones all worked
        key = naming.prompt_key("a thing", "text:a thing")
        prob = np.load(out / "odd" / f"{name}.{key}.prob.npy")
        assert prob.shape == hw and np.isfinite(prob).all()


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_cli_single_bad_file_exit_1_with_reason(name, tmp_path):
    data, reason = bad_files()[name]
    path = tmp_path / name
    path.write_bytes(data)
    res = CliRunner().invoke(cli, ["segment", str(path), "-p", "x", "-o", str(tmp_path / "o"), *W])
    assert res.exit_code == 1 and reason in res.output and "Traceback" not in res.output


def test_cli_pixel_limit(tmp_path):
    _photo(48, 64).save(tmp_path / "a.png")
    res = CliRunner().invoke(cli, ["segment", str(tmp_path / "a.png"), "-p", "x", "-o", str(tmp_path / "o"),
                                   "--max-pixels", "1000", *W])
    assert res.exit_code == 1 and "64x48" in res.output and "limit" in res.output


def test_cli_directory_given_as_image_and_unreadable_prompt_file(tmp_path):
    res = CliRunner().invoke(cli, ["segment", str(tmp_path / "missing"), "-p", "x", "-o", str(tmp_path / "o"), *W])
    assert res.exit_code == 2 and "does not exist" in res.output and not (tmp_path / "o").exists()
    (tmp_path / "p.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    res = CliRunner().invoke(cli, ["segment", str(tmp_path), "--prompts-file", str(tmp_path / "p.txt"), *W])
    assert res.exit_code == 2 and "cannot read prompts file" in res.output


@pytest.mark.parametrize("prompt,reason", [("", "empty"), ("   ", "empty"), (" ".join(["word"] * 1000), "too long")])
def test_cli_bad_prompts_exit_2(prompt, reason, tmp_path):
    _photo().save(tmp_path / "a.png")
    res = CliRunner().invoke(cli, ["segment", str(tmp_path / "a.png"), "-p", "fine", "-p", prompt, "-o",
                                   str(tmp_path / "o"), *W])
    assert res.exit_code == 2 and reason in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()  # refused before any work


@pytest.mark.parametrize("kind", ["random.pth", "empty.safetensors", "text.bin", "folder", "state_dict.pt"])
def test_cli_unknown_checkpoint_files_exit_2(kind, tmp_path):
    import torch

    path = tmp_path / kind
    if kind == "random.pth":
        path.write_bytes(os.urandom(1000))
    elif kind == "empty.safetensors":
        path.write_bytes(b"")
    elif kind == "text.bin":
        path.write_text("definitely not weights")
    elif kind == "folder":
        path.mkdir()
        (path / "readme.txt").write_text("nothing here")
    else:  # a real torch file with keys of some other model
        torch.save({"resnet.conv1.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(10)}, path)
    _photo().save(tmp_path / "a.png")
    for args in (["info"], ["segment", str(tmp_path / "a.png"), "-p", "x", "-o", str(tmp_path / "o")]):
        res = CliRunner().invoke(cli, [*args, "--weights", str(path)])
        assert res.exit_code == 2, (kind, res.output)
        assert kind in res.output and "Traceback" not in res.output
        assert res.output.startswith("Error: cannot load weights")


# ---------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi", reason="the server extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from clipseg import load as load_model
    from clipseg.server import ServerSettings, create_app

    app = create_app(load_model("tiny:random"), ServerSettings(max_pixels=10_000_000))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _post(c, data: bytes, prompts=("a thing",), name="x.png"):
    return c.post("/segment", files={"image": (name, data, "application/octet-stream")}, data={"prompt": list(prompts)})


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_http_bad_file_4xx_json_and_still_serving(client, name):
    data, reason = bad_files()[name]
    r = _post(client, data, name=name)
    assert 400 <= r.status_code < 500, r.text
    j = r.json()
    assert set(j) >= {"error", "detail"} and reason in j["detail"]
    if name.startswith("bomb"):
        assert r.status_code == 413 and j["error"] == "image_too_large"
    else:
        assert r.status_code == 400 and j["error"] == "bad_image"
    assert client.get("/health").json()["status"] == "ok"
    assert _post(client, _encode(_photo(), "PNG")).status_code == 200


@pytest.mark.parametrize("name", sorted(odd_files()))
def test_http_unusual_images_work(client, name):
    data, (h, w) = odd_files()[name]
    r = _post(client, data, name=name)
    assert r.status_code == 200, r.text
    assert (r.json()["image"]["height"], r.json()["image"]["width"]) == (h, w)


def test_http_bad_support_image_and_mask(client):
    good = _encode(_photo(), "PNG")
    empty_mask = _encode(Image.new("L", (64, 48), 0), "PNG")
    r = client.post("/segment", files={"image": ("x.png", good), "support_image": ("s.png", good),
                                       "support_mask": ("m.png", empty_mask)})
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt" and "mask" in r.json()["detail"].lower()
    r = client.post("/segment", files={"image": ("x.png", good), "support_image": ("s.png", b"junk"),
                                       "support_mask": ("m.png", empty_mask)})
    assert r.status_code == 400 and r.json()["error"] == "bad_image"
    r = client.post("/segment", files={"image": ("x.png", good), "support_image": ("s.png", good),
                                       "support_mask": ("m.png", bomb_png())})
    assert r.status_code == 413
    assert _post(client, good).status_code == 200


@pytest.mark.parametrize("prompt,reason", [("", "empty"), ("   ", "empty"), (" ".join(["word"] * 1000), "too long"),
                                           (" ".join(["a"] * 1000), "too long"), (" ".join(["a"] * 140), "142 tokens")])
def test_http_bad_prompts_422(client, prompt, reason):
    metrics = client.app.state.service.metrics
    runs = metrics.get("clipseg_backbone_runs_total")
    r = _post(client, _encode(_photo(seed=9), "PNG"), ["fine", prompt])
    assert r.status_code == 422 and r.json()["error"] == "bad_prompt" and reason in r.json()["detail"]
    assert metrics.get("clipseg_backbone_runs_total") == runs  # refused before the backbone ran
    assert _post(client, _encode(_photo(), "PNG")).status_code == 200


def test_http_non_multipart_and_garbage_bodies(client):
    r = client.post("/segment", content=b"\x00\x01garbage", headers={"content-type": "application/octet-stream"})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    r = client.post("/segment", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = client.post("/segment", json={"prompt": "x"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    assert client.get("/health").status_code == 200
