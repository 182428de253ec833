"""The layout of an ONNX export directory (no torch, no onnx needed to read it)."""

from __future__ import annotations

import json
from pathlib import Path

TOKENIZER_NAME = "tokenizer.json"  # a word tokenizer's vocabulary, when the model has one
METADATA_NAME = "clipseg_onnx.json"
FILES = {"image_encoder": "image_encoder.onnx", "text_encoder": "text_encoder.onnx", "decoder": "decoder.onnx",
         "visual_prompt_encoder": "visual_prompt_encoder.onnx"}
FORMAT = "clipseg-onnx"
FORMAT_VERSION = 2  # 2: visual_prompt_encoder.onnx (CLIP image embedding of engineered visual prompts)


def read_metadata(out_dir: str | Path) -> dict:
    """The clipseg_onnx.json of an export directory (ValueError if missing or foreign)."""
    path = Path(out_dir) / METADATA_NAME
    if not path.is_file():
        raise ValueError(f"{out_dir} is not a clipseg ONNX export: {METADATA_NAME} is missing")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} cannot be read: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a clipseg ONNX description")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {meta.get('format_version')!r}, newer than this clipseg reads")
    return meta
