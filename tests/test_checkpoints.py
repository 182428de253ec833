"""Every checkpoint format users have, written in its real layout, loads to identical outputs;
bad files fail with errors that name the file, the format and the keys."""

import pickle

import pytest
import torch

from clipseg import CheckpointError, build_clipseg, load_clipseg, save_clipseg
from clipseg.model.fast_cpu import reference_forward
from clipseg.weights import read_backbone, read_checkpoint

from checkpoint_writers import (
    write_authors_decoder,
    write_hf_clipseg_bin,
    write_openai_state_dict,
    write_openai_torchscript,
)
from hf_reference import make_hf_clipseg, token_ids

TINY_LAYERS = (1, 2, 3)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_clipseg("tiny").eval()


@pytest.fixture(scope="module")
def inputs():
    torch.manual_seed(1)
    return torch.randn(2, 3, 64, 64), token_ids(2, 16), torch.randn(2, 3, 64, 64)


def _same_outputs(a, b, inputs, atol=1e-6):
    pixels, ids, cond_pixels = inputs
    with torch.no_grad():
        assert torch.allclose(a(pixels, text_ids=ids), b(pixels, text_ids=ids), atol=atol)
        assert torch.allclose(a(pixels, cond_pixels=cond_pixels), b(pixels, cond_pixels=cond_pixels), atol=atol)


def test_native_round_trip(model, inputs, tmp_path):
    loaded = load_clipseg(save_clipseg(model, tmp_path / "m.safetensors"))
    assert loaded.config == model.config
    with reference_forward(loaded):  # the plain blocks, as `model` runs: bit for bit
        _same_outputs(model, loaded, inputs, atol=0)


def test_native_decoder_only_with_backbone(model, inputs, tmp_path):
    dec = save_clipseg(model, tmp_path / "dec.safetensors", decoder_only=True)
    backbone = write_openai_state_dict(model, tmp_path / "clip.pt")
    with reference_forward(load_clipseg(dec, backbone=backbone)) as loaded:  # plain blocks, as `model` runs
        _same_outputs(model, loaded, inputs, atol=0)


@pytest.mark.parametrize("backbone_format", ["torchscript", "state_dict", "open_clip"])
def test_authors_decoder_with_openai_backbone(model, inputs, tmp_path, backbone_format):
    decoder = write_authors_decoder(model, tmp_path / "rd16-uni.pth")
    if backbone_format == "torchscript":
        backbone = write_openai_torchscript(model, tmp_path / "ViT-B-16.pt")
        assert read_checkpoint(backbone).format == "torchscript"
    elif backbone_format == "state_dict":
        backbone = write_openai_state_dict(model, tmp_path / "ViT-B-16.pt")
    else:
        backbone = write_openai_state_dict(model, tmp_path / "open_clip.pt", wrap="state_dict")
    loaded = load_clipseg(decoder, backbone=backbone, extract_layers=TINY_LAYERS)
    assert loaded.config.decoder == model.config.decoder
    _same_outputs(model, loaded, inputs)


def test_decoder_saved_on_cuda_loads_on_cpu(model, tmp_path):
    """The released .pth files hold cuda:0 tensors; torch.load must map them to CPU.
    Without a GPU we check the map_location path with a 'meta'-free stand-in: the
    reader always passes map_location='cpu'."""
    path = write_authors_decoder(model, tmp_path / "rd64.pth")
    raw = read_checkpoint(path)
    assert all(t.device.type == "cpu" for t in raw.state_dict.values())


@pytest.mark.parametrize("refined", [False, True])
@pytest.mark.parametrize("weights_file", ["safetensors", "bin"])
def test_hf_clipseg_folder_matches_transformers(refined, weights_file, tmp_path):
    hf = make_hf_clipseg(refined, size="tiny")
    folder = tmp_path / "clipseg-hf"
    if weights_file == "safetensors":
        hf.save_pretrained(str(folder))
        assert (folder / "model.safetensors").exists()
    else:
        write_hf_clipseg_bin(hf, folder)
    ours = load_clipseg(folder)
    pixels, ids = torch.randn(2, 3, 64, 64), token_ids(2, 16)
    with torch.no_grad():
        assert (ours(pixels, text_ids=ids) - hf(pixel_values=pixels, input_ids=ids).logits).abs().max() < 1e-4
    # the same weights as a bare file, config inferred from the shapes
    ours_file = load_clipseg(folder / "model.safetensors", extract_layers=TINY_LAYERS) if weights_file == "safetensors" else None
    if ours_file is not None:
        assert ours_file.config.decoder.refined == refined


def test_hf_clip_model_as_backbone(model, tmp_path):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(3)
    hf_clip = CLIPModel(CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1,
                         max_position_embeddings=16),
        vision_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=2,
                           image_size=64, patch_size=8),
        projection_dim=64,
    )).eval()
    hf_clip.save_pretrained(str(tmp_path / "clip"))
    decoder = save_clipseg(model, tmp_path / "dec.safetensors", decoder_only=True)
    ours = load_clipseg(decoder, backbone=tmp_path / "clip")
    ids, pixels = token_ids(3, 16), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours.encode_text(ids) - hf_clip.get_text_features(input_ids=ids).pooler_output).abs().max() < 1e-5
        assert (ours.encode_visual_prompt(pixels) - hf_clip.get_image_features(pixel_values=pixels).pooler_output).abs().max() < 1e-5
    sd, _ = read_backbone(tmp_path / "clip")
    assert all(k.startswith("clip.") for k in sd)


# --- bad files -------------------------------------------------------------------------


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_clipseg(tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_clipseg(tmp_path / "empty.pth")


@pytest.mark.parametrize("kind", ["safetensors", "torch-zip", "torchscript"])
def test_truncated_files_name_file_and_format(model, tmp_path, kind):
    if kind == "safetensors":
        path = save_clipseg(model, tmp_path / "m.safetensors")
    elif kind == "torch-zip":
        path = write_authors_decoder(model, tmp_path / "rd64-uni.pth")
    else:
        path = write_openai_torchscript(model, tmp_path / "ViT-B-16.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert str(path) in str(e.value) and ("truncated" in str(e.value) or "corrupt" in str(e.value))


def test_unknown_bytes(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"GIF89a not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_clipseg(path)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickles_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"film_mul.weight": torch.zeros(1), "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="safe loading refuses"):
        load_clipseg(path)
    legacy = tmp_path / "evil_legacy.pth"
    with open(legacy, "wb") as f:
        pickle.dump(Evil(), f, protocol=2)
    with pytest.raises(CheckpointError):
        read_checkpoint(legacy)
    assert "this must never run" not in capsys.readouterr().out


def test_wrong_checkpoint_lists_keys(model, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.layer.0.weight": torch.zeros(3), "head.bias": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout.*encoder.layer.0.weight"):
        load_clipseg(path)
    backbone = write_openai_state_dict(model, tmp_path / "ViT-B-16.pt")
    with pytest.raises(CheckpointError, match="CLIP backbone.*pass it as backbone="):
        load_clipseg(backbone)


def test_mismatched_decoder_names_shapes(model, tmp_path):
    """An rd64 folder whose weights are from another size: shape mismatches are listed."""
    hf = make_hf_clipseg(False, size="tiny")
    folder = tmp_path / "hf"
    hf.save_pretrained(str(folder))
    import json

    cfg = json.loads((folder / "config.json").read_text())
    cfg["reduce_dim"] = 32
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"does not fit the model; 44 shape mismatches.*decoder.blocks.0.linear1.weight \(64, 16\) vs \(64, 32\)"):
        load_clipseg(folder)


def test_missing_keys_are_listed(model, tmp_path):
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("decoder.blocks.1.")}
    from safetensors.torch import save_file

    import json

    save_file(sd, str(tmp_path / "m.safetensors"),
              metadata={"format": "clipseg", "clipseg_config": json.dumps(model.config.to_dict())})
    with pytest.raises(CheckpointError, match=r"missing \d+ keys: decoder.blocks.1"):
        load_clipseg(tmp_path / "m.safetensors")


def test_offline_hub_name_gives_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="CIDAS/clipseg-rd64-refined.*local"):
        load_clipseg("CIDAS/clipseg-rd64-refined", cache_dir=tmp_path)


def test_download_code_path_with_file_urls(model, tmp_path):
    """The URL fetchers (used for OpenAI's ViT-B-16.pt and the authors' zip) run on
    file:// URLs here: download, sha256 check, zip extraction, cache reuse."""
    import hashlib
    import zipfile

    from clipseg.weights.fetch import fetch
    from clipseg.weights.registry import PretrainedSource

    dec = write_authors_decoder(model, tmp_path / "rd16-uni.pth")
    archive = tmp_path / "weights.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(dec, "clipseg_weights/rd16-uni.pth")
    src = PretrainedSource("rd16-uni", "zip-member", archive.as_uri(), "rd16-uni", member="rd16-uni.pth")
    cache = tmp_path / "cache"
    got = fetch(src, cache)
    assert got.read_bytes() == dec.read_bytes()
    archive.unlink()
    assert fetch(src, cache) == got  # cached: no second download

    backbone = write_openai_state_dict(model, tmp_path / "ViT-B-16.pt")
    digest = hashlib.sha256(backbone.read_bytes()).hexdigest()
    ok = PretrainedSource("clip", "url", backbone.as_uri(), "tiny", sha256=digest)
    assert fetch(ok, cache).read_bytes() == backbone.read_bytes()
    bad = PretrainedSource("clip2", "url", backbone.as_uri(), "tiny", sha256="0" * 64)
    with pytest.raises(CheckpointError, match="sha256"):
        fetch(bad, tmp_path / "cache2")
    assert not list((tmp_path / "cache2" / "files").glob("*"))  # nothing half-written left


# ---------------------------------------------------------------- hostile files and folders


@pytest.mark.parametrize("name", sorted(__import__("hostile_files").HOSTILE_FILES))
def test_hostile_files_are_refused_before_anything_is_allocated(name, tmp_path):
    """Each file is tiny but declares gigabytes (a 4096-wide model, 1 GiB deflated storages,
    stride-0 views, a 1 TB safetensors header); the refusal must name the file and come at
    once (memory is measured by benchmarks/hostile_inputs.py)."""
    import time

    from hostile_files import HOSTILE_FILES

    path = HOSTILE_FILES[name](tmp_path / "hostile.bin")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        load_clipseg(path)
    assert str(path) in str(info.value)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("index,config,match", [
    (["model.safetensors"], None, "weight_map"),
    ({"weight_map": {"a": 5}}, None, "shard names must be file names"),
    ({"weight_map": {"a": "../outside.safetensors"}}, None, "outside the model folder"),
    ({"weight_map": {"a": "/etc/hostname"}}, None, "outside the model folder"),
    (None, [1, 2], "expected a JSON object"),
    ({"weight_map": {"a": "m.safetensors"}}, {"clipseg_config": "x"}, "clipseg_config"),
], ids=["index-list", "non-string-shard", "dotdot", "absolute", "config-list", "clipseg-config-type"])
def test_bad_hf_folders_are_clear_errors(tmp_path, index, config, match):
    from hostile_files import hf_folder

    (tmp_path / "outside.safetensors").write_bytes(b"")
    folder = hf_folder(tmp_path / "m", index=index, config=config)
    with pytest.raises(CheckpointError, match=match):
        load_clipseg(folder)


def test_native_config_problems_are_clear_errors(model, tmp_path):
    from safetensors.torch import save_file

    path = save_clipseg(model, tmp_path / "ok.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        sd = {k: f.get_tensor(k) for k in f.keys()}
    for metadata, match in [({"format": "clipseg"}, "without its clipseg_config"),
                            ({"format": "clipseg", "clipseg_config": "{oops"}, "not valid JSON"),
                            ({"format": "clipseg", "clipseg_config": '{"clip": {"vision": {"width": "w"}}}'},
                             "config.clip.vision.width: expected int"),
                            ({"format": "clipseg", "clipseg_config": '{"input_size": 1e9}'}, "input_size")]:
        save_file(sd, str(tmp_path / "bad.safetensors"), metadata=metadata)
        with pytest.raises(CheckpointError, match=match):
            load_clipseg(tmp_path / "bad.safetensors")


def test_errors_never_echo_file_bytes(tmp_path):
    secret = tmp_path / "notes.txt"
    secret.write_text("SECRET-TOKEN-1234 and more")
    (tmp_path / "weights.pth").symlink_to(secret)
    with pytest.raises(CheckpointError) as info:
        load_clipseg(tmp_path / "weights.pth")
    assert "SECRET" not in str(info.value) and "unknown checkpoint format" in str(info.value)


def test_loading_skips_the_random_init_and_assigns_every_tensor(model, tmp_path):
    """load_clipseg allocates the model uninitialised and fills it from the file; that is only
    sound because the decoder-only path's two prefixes cover every tensor of a CLIPSeg."""
    from clipseg.weights.loader import _uninitialized

    assert {k.split(".")[0] for k in model.state_dict()} == {"clip", "decoder"}
    assert not list(model.buffers())  # to_empty would leave buffers made in __init__ as garbage
    fresh = _uninitialized(model.config)
    assert all(p.device.type == "cpu" for p in fresh.parameters())
    path = save_clipseg(model, tmp_path / "m.safetensors")
    loaded = load_clipseg(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
