"""Writers of each checkpoint format users have on disk, in its real layout, with the
weights of a given model (random here). Used by the round-trip tests."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from clipseg.model import CLIPSeg
from clipseg.weights.convert import ours_to_openai_clip


class _OpenAILayout(nn.Module):
    """A module whose state_dict has OpenAI CLIP's key names (for tracing to TorchScript)."""

    def __init__(self, model: CLIPSeg):
        super().__init__()
        clip = model.clip
        self.visual = clip.visual
        self.token_embedding = clip.text.token_embedding
        self.positional_embedding = clip.text.positional_embedding
        self.transformer = clip.text.transformer
        self.ln_final = clip.text.ln_final
        self.text_projection = clip.text.text_projection
        self.logit_scale = clip.logit_scale
        # OpenAI's archive carries these three as tensors; loaders must ignore them.
        vis = model.config.clip.vision
        self.register_buffer("input_resolution", torch.tensor(vis.image_size))
        self.register_buffer("context_length", torch.tensor(model.config.clip.text.context_length))
        self.register_buffer("vocab_size", torch.tensor(model.config.clip.text.vocab_size))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


def write_openai_torchscript(model: CLIPSeg, path: Path) -> Path:
    """OpenAI `ViT-B-16.pt` style: a TorchScript archive of the CLIP model (fp16 like OpenAI's)."""
    wrapper = _OpenAILayout(model).eval()
    size = model.config.clip.vision.image_size
    traced = torch.jit.trace(wrapper, torch.randn(1, 3, size, size), check_trace=False)
    torch.jit.save(traced, str(path))
    return path


def write_openai_state_dict(model: CLIPSeg, path: Path, wrap: str | None = None) -> Path:
    """OpenAI/open_clip keys saved with torch.save; wrap='state_dict' mimics open_clip
    training checkpoints ({'epoch', 'state_dict': {'module.visual...'}, ...})."""
    sd = ours_to_openai_clip(model.state_dict())
    if wrap:
        sd = {"epoch": 3, "name": "ViT-B-16", wrap: {"module." + k: v for k, v in sd.items()}}
    torch.save(sd, path)
    return path


def write_authors_decoder(model: CLIPSeg, path: Path) -> Path:
    """rd64-uni.pth style: decoder-only flat dict with the authors' names, plus the
    unused `reduce.*` the released files carry."""
    sd = {k[len("decoder.") :]: v.clone() for k, v in model.state_dict().items() if k.startswith("decoder.")}
    d = model.config.decoder.reduce_dim
    sd["reduce.weight"] = torch.randn(d, model.config.clip.vision.width)
    sd["reduce.bias"] = torch.randn(d)
    torch.save(sd, path)
    return path


def write_hf_clipseg_bin(hf_model, folder: Path) -> Path:
    """HF folder with pytorch_model.bin (older uploads) instead of model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    hf_model.config.to_json_file(str(folder / "config.json"))
    torch.save(hf_model.state_dict(), folder / "pytorch_model.bin")
    return folder
