"""ImageNet ViTs for the ViTSeg baseline: timm's vit_base_patch16_224 layout (state dict
.pth and .safetensors) and HF ViTModel folders, written here with random weights in their
exact layouts, give the features of `transformers.ViTModel`."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

transformers = pytest.importorskip("transformers")

from clipseg.model.clip_vision import VisionTransformer  # noqa: E402
from clipseg.weights import CheckpointError, load_clipseg, read_vit_backbone  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hf_vit():
    torch.manual_seed(0)
    config = transformers.ViTConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
                                    image_size=32, patch_size=8, layer_norm_eps=1e-12)
    model = transformers.ViTModel(config, add_pooling_layer=True).eval()
    with torch.no_grad():  # LayerNorms and biases away from their init, so that a mix-up shows
        for name, p in model.named_parameters():
            if "layernorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    return model


def _hf_file_state_dict(hf, folder) -> dict[str, torch.Tensor]:
    """The model as HF writes it to disk (google/vit-base-patch16-224's key names)."""
    from safetensors.torch import load_file

    hf.save_pretrained(folder)
    return load_file(str(folder / "model.safetensors"))


def _timm_state_dict(hf, folder) -> dict[str, torch.Tensor]:
    """The HF model's weights under timm's vit_base_patch16_224 key names (what timm saves)."""
    sd = _hf_file_state_dict(hf, folder)
    out = {"cls_token": sd["embeddings.cls_token"], "pos_embed": sd["embeddings.position_embeddings"],
           "patch_embed.proj.weight": sd["embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": sd["embeddings.patch_embeddings.projection.bias"],
           "norm.weight": sd["layernorm.weight"], "norm.bias": sd["layernorm.bias"],
           "head.weight": torch.randn(10, 64), "head.bias": torch.randn(10)}
    for i in range(hf.config.num_hidden_layers):
        h, t = f"encoder.layer.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[t + f"norm1.{kind}"] = sd[h + f"layernorm_before.{kind}"]
            out[t + f"norm2.{kind}"] = sd[h + f"layernorm_after.{kind}"]
            out[t + f"attn.qkv.{kind}"] = torch.cat([sd[h + f"attention.attention.{p}.{kind}"]
                                                     for p in ("query", "key", "value")])
            out[t + f"attn.proj.{kind}"] = sd[h + f"attention.output.dense.{kind}"]
            out[t + f"mlp.fc1.{kind}"] = sd[h + f"intermediate.dense.{kind}"]
            out[t + f"mlp.fc2.{kind}"] = sd[h + f"output.dense.{kind}"]
    return {k: v.clone().contiguous() for k, v in out.items()}


def _ours(sd, vision) -> VisionTransformer:
    tower = VisionTransformer(vision, output_dim=16)
    own = tower.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            own[k.removeprefix("clip.visual.")].copy_(v)
    return tower.eval()


def _check_features(tower: VisionTransformer, hf, eps: float) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = hf(pixel_values=x, output_hidden_states=True)
        final, collected, grid = tower.forward_features(x, collect=(0, 1, 2))
    assert grid == (4, 4)
    for i, h in enumerate(collected):  # the residual stream after each block = HF's hidden_states[i + 1]
        assert (h - ref.hidden_states[i + 1]).abs().max() < 1e-5, i
    assert (tower.ln_post(final) - ref.last_hidden_state).abs().max() < 1e-5
    assert tower.ln_post.eps == eps


def test_hf_vit_folder_gives_the_features_of_transformers(hf_vit, tmp_path):
    hf_vit.save_pretrained(tmp_path / "vit")  # config.json + model.safetensors, as google/vit-base-patch16-224
    sd, vision, where = read_vit_backbone(tmp_path / "vit")
    assert "clip.visual.proj" not in sd and vision.heads == 4 and vision.activation == "gelu"
    _check_features(_ours(sd, vision), hf_vit, 1e-12)


def test_hf_vit_for_classification_folder(hf_vit, tmp_path):
    cls = transformers.ViTForImageClassification(hf_vit.config)
    cls.vit.load_state_dict(hf_vit.state_dict(), strict=False)
    cls.save_pretrained(tmp_path / "cls")  # keys under vit. plus the classifier
    sd, vision, _ = read_vit_backbone(tmp_path / "cls")
    _check_features(_ours(sd, vision), hf_vit, 1e-12)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_timm_state_dict_gives_the_features_of_transformers(hf_vit, tmp_path, fmt):
    sd = _timm_state_dict(hf_vit, tmp_path / "hf")
    path = tmp_path / f"vit_base_patch16_224.{fmt}"
    torch.save(sd, path) if fmt == "pth" else save_file(sd, str(path))
    ours, vision, _ = read_vit_backbone(path, heads=4)  # timm files do not show heads (default width // 64)
    assert vision.norm_eps == 1e-6  # timm's; the HF model here uses 1e-12
    tower = _ours(ours, vision)
    tower.ln_post.eps = 1e-12
    for block in tower.transformer.resblocks:
        block.ln_1.eps = block.ln_2.eps = 1e-12
    _check_features(tower, hf_vit, 1e-12)


def test_wrong_files_are_clear_errors(hf_vit, tmp_path):
    sd = _timm_state_dict(hf_vit, tmp_path / "hf")
    del sd["blocks.1.attn.qkv.weight"]
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="missing 1 keys: clip.visual.transformer.resblocks.1.attn.in_proj_weight"):
        read_vit_backbone(tmp_path / "broken.pth")
    hf_vit.save_pretrained(tmp_path / "vit")
    config = json.loads((tmp_path / "vit" / "config.json").read_text())
    (tmp_path / "vit" / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(CheckpointError, match="hidden_act 'relu'"):
        read_vit_backbone(tmp_path / "vit")
    with pytest.raises(CheckpointError, match="ImageNet ViT"):
        load_clipseg(tmp_path / "broken.pth")


def test_vitseg_build_takes_the_vit(hf_vit, tmp_path):
    """The ViTSeg experiment: CLIP text tower from --backbone, the ImageNet ViT as visual tower."""
    from checkpoint_writers import write_openai_state_dict

    from clipseg.model import build_clipseg
    from clipseg.cli.train_run import build_model
    from clipseg.training.config import ModelSpec

    clip = build_clipseg("tiny")
    write_openai_state_dict(clip, tmp_path / "clip.pt")
    hf_vit.save_pretrained(tmp_path / "vit")
    spec = ModelSpec(variant="tiny", backbone="clip-text", visual=str(tmp_path / "vit"),
                     decoder={"extract_layers": [0, 1, 2]})
    model = build_model(spec, str(tmp_path / "clip.pt"))
    _check_features(model.clip.visual, hf_vit, 1e-12)
    for k, v in clip.clip.text.state_dict().items():
        assert torch.equal(model.clip.text.state_dict()[k], v), k
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model.encode_image(x)
    assert len(features.activations) == 3
