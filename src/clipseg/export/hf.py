"""Publish a model in the Hugging Face layout of `CIDAS/clipseg-*`, and as the authors' decoder file.

    from clipseg.export.hf import export_hf
    export_hf(clipseg.load("runs/mine/model.safetensors"), "clipseg-mine")

writes, in OUT:

- ``config.json`` + ``model.safetensors``: `transformers.CLIPSegForImageSegmentation.from_pretrained(OUT)`
  loads them (and so does `clipseg.load(OUT)`, threshold included);
- ``preprocessor_config.json``, ``vocab.json``, ``merges.txt``, ``tokenizer_config.json``,
  ``special_tokens_map.json``: `CLIPSegProcessor.from_pretrained(OUT)` (ViTImageProcessor at the
  model's input size and mean/std, CLIP's BPE tokenizer giving the ids this project gives);
- ``authors/clipseg-decoder.pth``: the decoder with the authors' names (their
  `model.load_state_dict(torch.load(...), strict=False)`; `clipseg.load(..., backbone=...)`);
- ``README.md``: the model card (see `model_card`).

Only CLIP-based CLIPSeg models are representable: the world models (a word tokenizer HF has no
equivalent of), the CLIP-Deconv and ViTSeg baselines are refused with `HFExportError`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io.atomic import atomic_write
from ..model.clipseg import CLIPSeg
from ..tokenizer import CLIPTokenizer
from ..weights.convert import ours_to_authors_decoder, ours_to_hf_clipseg
from ..weights.hf_config import THRESHOLD_FIELD, hf_config_from_ours, hf_unrepresentable
from ..weights.native import write_safetensors
from .model_card import CardFacts, model_card

AUTHORS_FILE = "authors/clipseg-decoder.pth"
HF_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt",
            "tokenizer_config.json", "special_tokens_map.json", "README.md")
# CLIP's special tokens as openai/clip-vit-base-patch16 has them. HF pads with <|endoftext|>, this
# project with 0: the same logits, since the text encoder's mask is causal and pools at the first EOT.
SPECIAL_TOKENS = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                  "pad_token": "<|endoftext|>"}


class HFExportError(ValueError):
    """The model cannot be written in the Hugging Face layout (the message says why)."""


def check_exportable(model: CLIPSeg) -> None:
    """HFExportError naming what `transformers` cannot represent of `model` (nothing: returns)."""
    problems = hf_unrepresentable(model.config)
    if model.identity.tokenizer is not None:
        problems.append("its word tokenizer (HF's CLIPSeg takes CLIP's BPE tokenizer only)")
    vocab = model.config.clip.text.vocab_size
    if vocab != CLIPTokenizer().vocab_size:
        problems.append(f"a text vocabulary of {vocab} tokens (CLIP's BPE tokenizer has 49408)")
    if problems:
        raise HFExportError(f"'{model.identity.weights or 'this model'}' cannot be written in the Hugging Face "
                            f"CLIPSeg layout: {'; '.join(problems)}. `clipseg export-onnx` exports any model")


def _write_json(path: Path, value: dict) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def preprocessor_config(model: CLIPSeg) -> dict:
    """`ViTImageProcessor` settings of the model: resize to its input size, rescale, its mean/std."""
    size = model.config.input_size
    return {"image_processor_type": "ViTImageProcessor", "processor_class": "CLIPSegProcessor",
            "do_resize": True, "size": {"height": size, "width": size}, "resample": 2,  # bilinear
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": list(model.config.mean), "image_std": list(model.config.std)}


def export_hf(model: CLIPSeg, out_dir: str | Path, facts: CardFacts | None = None,
              authors: bool = True) -> dict[str, Path]:
    """Write `model` to `out_dir` in the CIDAS layout (+ the authors' decoder file unless
    authors=False, + the model card from `facts`); returns {file name: path}. Raises
    HFExportError for models HF cannot represent, before anything is written."""
    check_exportable(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.float() for k, v in model.state_dict().items()}
    paths: dict[str, Path] = {}

    config = hf_config_from_ours(model.config)
    if model.identity.threshold is not None:
        config[THRESHOLD_FIELD] = model.identity.threshold  # read back by clipseg.load; HF keeps it as an attribute
    _write_json(out / "config.json", config)
    paths["config.json"] = out / "config.json"
    paths["model.safetensors"] = write_safetensors(ours_to_hf_clipseg(sd), out / "model.safetensors",
                                                   {"format": "pt"})
    _write_json(out / "preprocessor_config.json", preprocessor_config(model))
    paths["preprocessor_config.json"] = out / "preprocessor_config.json"

    tokenizer = CLIPTokenizer(context_length=model.config.clip.text.context_length)
    paths["vocab.json"], paths["merges.txt"] = tokenizer.save_hf_vocab(out)
    _write_json(out / "special_tokens_map.json", SPECIAL_TOKENS)
    _write_json(out / "tokenizer_config.json", {"tokenizer_class": "CLIPTokenizer", "processor_class": "CLIPSegProcessor",
                                                 "model_max_length": model.config.clip.text.context_length,
                                                 "do_lower_case": True, "errors": "replace", **SPECIAL_TOKENS})
    paths["special_tokens_map.json"] = out / "special_tokens_map.json"
    paths["tokenizer_config.json"] = out / "tokenizer_config.json"

    if authors:
        import torch

        path = out / AUTHORS_FILE
        path.parent.mkdir(exist_ok=True)
        decoder = ours_to_authors_decoder(sd)
        atomic_write(path, lambda f: torch.save(decoder, f))
        paths[AUTHORS_FILE] = path

    card = model_card(model, facts or CardFacts(), authors_file=AUTHORS_FILE if authors else None)
    atomic_write(out / "README.md", lambda f: f.write(card.encode("utf-8")))
    paths["README.md"] = out / "README.md"
    return paths


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload an `export_hf` folder to the Hugging Face hub (needs network and a token:
    `hf auth login`); returns the repo's URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload CLIPSeg model (clipseg export-hf)")
    return f"https://huggingface.co/{repo_id}"
