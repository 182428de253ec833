"""The layout of an ONNX export directory (no torch, no onnx needed to read it)."""

from __future__ import annotations

from pathlib import Path

TOKENIZER_NAME = "tokenizer.json"  # a word tokenizer's vocabulary, when the model has one
METADATA_NAME = "clipseg_onnx.json"
FILES = {"image_encoder": "image_encoder.onnx", "text_encoder": "text_encoder.onnx", "decoder": "decoder.onnx",
         "visual_prompt_encoder": "visual_prompt_encoder.onnx"}
# external data of the two vision graphs: the image encoder's weights, and the visual-prompt encoder's
# that are not the image encoder's (the graphs point into these files; see export.onnx.share_vision_weights)
WEIGHT_FILES = {"image_encoder": "image_encoder.weights", "visual_prompt_encoder": "visual_prompt_encoder.weights"}
FORMAT = "clipseg-onnx"
FORMAT_VERSION = 2  # 2: visual_prompt_encoder.onnx (CLIP image embedding of engineered visual prompts)


MAX_METADATA_BYTES = 4 << 20
MAX_GRAPH_BYTES = 8 << 30


def _fail(path: Path, what: str):
    raise ValueError(f"{path}: {what}")


def _ints(value, n: int, lo: int, hi: int) -> bool:
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value))


def _numbers(value, n: int) -> bool:
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def check_metadata(meta, path: Path) -> dict:
    """The fields `OnnxPredictor` uses, checked for type and range (ValueError naming the field)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, "not a clipseg ONNX description")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        _fail(path, f"format_version {str(version)[:40]!r}: not one this clipseg reads (at most {FORMAT_VERSION})")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        _fail(path, "'files' must map graph names to file names")
    for name, file in files.items():
        if Path(file).name != file or file in ("", ".", ".."):
            _fail(path, f"'files' names {file[:80]!r} for {name[:40]!r}: a plain file name in the folder is expected")
    weights = meta.get("weights", {})
    if not isinstance(weights, dict) or not all(isinstance(v, str) and Path(v).name == v and v not in ("", ".", "..")
                                                and v.endswith(".weights") for v in weights.values()):
        _fail(path, "'weights' must map graph names to plain .weights file names in the folder")
    tensors = meta.get("tensors")
    outputs = tensors.get("image_encoder", {}).get("outputs") if isinstance(tensors, dict) and \
        isinstance(tensors.get("image_encoder"), dict) else None
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
        _fail(path, "'tensors.image_encoder.outputs' must be a list of tensor names")
    if "tokenizer" in meta and (not isinstance(meta["tokenizer"], str) or Path(meta["tokenizer"]).name != meta["tokenizer"]):
        _fail(path, "'tokenizer' must be the file name of the vocabulary in the folder")
    context = meta.get("context_length")
    if not isinstance(context, int) or isinstance(context, bool) or not 2 <= context <= 1024:
        _fail(path, f"'context_length' must be a whole number from 2 to 1024, got {str(context)[:40]!r}")
    embed = meta.get("embed_dim")
    if not isinstance(embed, int) or isinstance(embed, bool) or not 1 <= embed <= 65536:
        _fail(path, f"'embed_dim' must be a whole number from 1 to 65536, got {str(embed)[:40]!r}")
    if not _ints(meta.get("input_size"), 2, 16, 8192):
        _fail(path, "'input_size' must be [height, width], whole numbers from 16 to 8192")
    if not _numbers(meta.get("mean"), 3) or not _numbers(meta.get("std"), 3) or not all(v > 0 for v in meta["std"]):
        _fail(path, "'mean' and 'std' must be three numbers each (std positive)")
    if "grid" in meta and not _ints(meta["grid"], 2, 1, 8192):
        _fail(path, "'grid' must be [rows, columns] of the patch grid")
    return meta


def model_vocab_size(meta: dict) -> int | None:
    """The rows of the exported text embedding, when the export records its model's config."""
    try:
        v = meta["model_config"]["clip"]["text"]["vocab_size"]
    except (KeyError, TypeError):
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def read_metadata(out_dir: str | Path) -> dict:
    """The clipseg_onnx.json of an export directory, checked (`check_metadata`); ValueError if
    it is missing, not a regular file, over 4 MiB, not JSON, or not a clipseg export's."""
    from ..io.files import load_json_file

    path = Path(out_dir) / METADATA_NAME
    if not path.exists():
        raise ValueError(f"{out_dir} is not a clipseg ONNX export: {METADATA_NAME} is missing")
    return check_metadata(load_json_file(path, MAX_METADATA_BYTES, "export description"), path)
