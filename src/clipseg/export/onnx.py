"""ONNX export of CLIPSeg as three graphs, split so that the image part runs once per image.

    from clipseg import build_clipseg
    from clipseg.export import export_onnx
    paths = export_onnx(model, "clipseg-onnx")   # {'image_encoder': ..., 'text_encoder': ..., 'decoder': ..., 'metadata': ...}

Graphs (float32; names of inputs and outputs are fixed):

- ``image_encoder.onnx``: ``pixels`` (B, 3, H, W) normalized, H x W = the export's
  ``input_size`` -> ``act_<layer>`` (B, 1 + gh*gw, width) for each extract layer,
  shallow to deep (the residual streams the decoder reads; the ViT stops after the
  deepest one). B is dynamic.
- ``text_encoder.onnx``: ``input_ids`` (N, L) int64 CLIP ids (SOT ... EOT, 0-padded;
  L <= context length, dynamic; cutting the padding after the last EOT changes nothing,
  the mask is causal) -> ``cond`` (N, embed_dim).
- ``decoder.onnx``: ``act_<layer>`` (1 or N, T, width) and ``cond`` (N, embed_dim) ->
  ``logits`` (N, H, W). Activations of batch 1 are broadcast against N conditionals, so
  one image's features serve N prompts in one call. N is dynamic.

``clipseg_onnx.json`` next to them describes the export (input size, grid, extract
layers, mean/std, context length, file and tensor names); `OnnxPredictor` reads it.

Exporter: torch's TorchScript-based exporter, ``torch.onnx.export(..., dynamo=False)``.
The dynamo exporter (torch's default since 2.9) needs the ``onnxscript`` package, which
the ``onnx`` extra does not install; the TorchScript one works with torch 2.2 - 2.13.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from ..model.fast_cpu import reference_forward
from ..model.clipseg import CLIPSeg

from .format import FILES, FORMAT, FORMAT_VERSION, METADATA_NAME, TOKENIZER_NAME, WEIGHT_FILES, read_metadata  # noqa: F401


def activation_names(model: CLIPSeg) -> list[str]:
    return [f"act_{i}" for i in model.config.decoder.extract_layers]


class ImageEncoderGraph(nn.Module):
    """pixels (B, 3, H, W) -> the extracted residual streams (one output per layer)."""

    def __init__(self, model: CLIPSeg):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.encode_image(pixels).activations)


class TextEncoderGraph(nn.Module):
    """input_ids (N, L) -> cond (N, E). Runs all L positions (no data-dependent cut) and
    pools at argmax(ids) with a flat gather, which every exporter and runtime handles."""

    def __init__(self, model: CLIPSeg):
        super().__init__()
        self.text = model.clip.text

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.text
        n, length = ids.shape[0], ids.shape[1]
        x = t.token_embedding(ids) + t.positional_embedding[:length]
        x, _ = t.transformer(x, causal=True)
        eot = ids.argmax(dim=-1)
        rows = torch.arange(n, device=ids.device) * length + eot
        x = t.ln_final(x.reshape(-1, x.shape[-1]).index_select(0, rows))
        return x @ t.text_projection


class VisualPromptEncoderGraph(nn.Module):
    """engineered visual prompts (N, 3, S, S) -> cond (N, E): CLIP's image embedding."""

    def __init__(self, model: CLIPSeg):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_visual_prompt(pixels)


class DecoderGraph(nn.Module):
    """act_<layer>... (1|N, T, width), cond (N, E) -> logits (N, H, W)."""

    def __init__(self, model: CLIPSeg, grid: tuple[int, int]):
        super().__init__()
        self.decoder = model.decoder
        self.grid = grid

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        *acts, cond = inputs
        return self.decoder(list(acts), cond, self.grid)


def _visual_prompt_settings() -> dict:
    """The default visual prompt engineering, which the torch-free runtime repeats."""
    from dataclasses import asdict

    from ..prompts.visual import VisualPromptConfig

    return {k: v for k, v in asdict(VisualPromptConfig()).items() if k != "size"}


def _size(input_size: int | tuple[int, int], patch: int) -> tuple[int, int]:
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if h % patch or w % patch or h <= 0 or w <= 0:
        raise ValueError(f"input_size {h}x{w} must be positive multiples of the patch size {patch}")
    return int(h), int(w)


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names, dynamic_axes, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice of the TorchScript exporter; tracer warnings
        torch.onnx.export(
            module, args, str(path), input_names=input_names, output_names=output_names,
            dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )


def _externalize(tensors, folder: Path, own: str, shared: dict[tuple, tuple[str, int, int]]) -> None:
    """Move the large initializers of a graph into external data: a tensor whose content is in
    `shared` (dtype, dims, sha256 -> file, offset, length) points there, the others are appended
    to the file `own` and added to `shared`."""
    import hashlib

    import onnx
    from onnx.external_data_helper import set_external_data

    with open(folder / own, "ab") as f:
        for t in tensors:
            if not t.HasField("raw_data") or len(t.raw_data) < 1024:
                continue  # small tensors stay inside the graph
            key = (t.data_type, tuple(t.dims), hashlib.sha256(t.raw_data).digest())
            if key not in shared:
                shared[key] = (own, f.tell(), len(t.raw_data))
                f.write(t.raw_data)
            location, offset, length = shared[key]
            set_external_data(t, location=location, offset=offset, length=length)
            t.ClearField("raw_data")
            t.data_location = onnx.TensorProto.EXTERNAL


def share_vision_weights(image_encoder: Path, visual_prompt_encoder: Path) -> dict[str, Path]:
    """Store the vision tower once for the two graphs that run it: the image encoder's weights go
    to image_encoder.weights, the visual-prompt encoder's point there where they are the same
    tensors (every block up to the deepest extract layer) and hold the rest (the last blocks, the
    pooling and projection) in visual_prompt_encoder.weights. onnxruntime reads external data
    relative to the graph's folder. Returns {name: path} of the two weight files."""
    import onnx

    folder = image_encoder.parent
    names = {"image_encoder_weights": WEIGHT_FILES["image_encoder"],
             "visual_prompt_encoder_weights": WEIGHT_FILES["visual_prompt_encoder"]}
    for name in names.values():
        (folder / name).unlink(missing_ok=True)
    shared: dict[tuple, tuple[str, int, int]] = {}
    for graph, own in ((image_encoder, names["image_encoder_weights"]),
                       (visual_prompt_encoder, names["visual_prompt_encoder_weights"])):
        proto = onnx.load(str(graph))
        _externalize(proto.graph.initializer, folder, own, shared)
        onnx.save(proto, str(graph))
    return {k: folder / v for k, v in names.items()}


def export_onnx(
    model: CLIPSeg, out_dir: str | Path, input_size: int | tuple[int, int] = (352, 352), opset: int = 17,
) -> dict[str, Path]:
    """Write image_encoder.onnx, text_encoder.onnx, decoder.onnx, visual_prompt_encoder.onnx and
    clipseg_onnx.json to out_dir, with the model's identity: its recommended threshold in the
    JSON and, for a model with a word tokenizer (the generated world's), its vocabulary as
    tokenizer.json; `OnnxPredictor` uses both by default.

    model: a CLIPSeg (any variant; it is exported in float32 on the CPU, the model
        itself is left as it was). input_size: (H, W) or an int for a square, multiples
        of the patch size; the image graph is fixed to it (the positional embeddings are
        resized for it at export time). opset: ONNX opset (>= 14 for attention).
    The vision tower's weights are stored once for the image and visual-prompt graphs
    (`share_vision_weights`). Returns {'image_encoder', 'text_encoder', 'decoder',
    'visual_prompt_encoder', 'image_encoder_weights', 'visual_prompt_encoder_weights',
    'metadata'} -> paths.
    """
    cfg = model.config
    if cfg.decoder.kind != "clipseg":
        raise ValueError(f"ONNX export supports the clipseg decoder, not '{cfg.decoder.kind}'")
    if opset < 14:
        raise ValueError("opset must be at least 14 (scaled dot-product attention)")
    vis = cfg.clip.vision
    h, w = _size(input_size, vis.patch_size)
    grid = (h // vis.patch_size, w // vis.patch_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    param = next(model.parameters())
    was_training, device, dtype = model.training, param.device, param.dtype
    model.cpu().float().eval()
    acts = activation_names(model)
    paths = {k: out_dir / v for k, v in FILES.items()}
    try:
        with torch.no_grad(), reference_forward(model):  # the plain graph, whatever blocks the model runs
            pixels = torch.zeros(1, 3, h, w)
            _export(
                ImageEncoderGraph(model), (pixels,), paths["image_encoder"], ["pixels"], acts,
                {"pixels": {0: "batch"}, **{a: {0: "batch"} for a in acts}}, opset,
            )
            ctx = cfg.clip.text.context_length
            vocab = cfg.clip.text.vocab_size
            ids = torch.zeros(2, ctx, dtype=torch.long)  # [SOT, x, ..., EOT, 0, ...]
            ids[:, 0], ids[:, 1] = vocab - 2, 1
            ids[0, 2] = ids[1, min(4, ctx - 1)] = vocab - 1
            _export(
                TextEncoderGraph(model), (ids,), paths["text_encoder"], ["input_ids"], ["cond"],
                {"input_ids": {0: "batch", 1: "length"}, "cond": {0: "batch"}}, opset,
            )
            side = cfg.input_size
            _export(
                VisualPromptEncoderGraph(model), (torch.zeros(1, 3, side, side),), paths["visual_prompt_encoder"],
                ["pixels"], ["cond"], {"pixels": {0: "batch"}, "cond": {0: "batch"}}, opset,
            )
            paths.update(share_vision_weights(paths["image_encoder"], paths["visual_prompt_encoder"]))
            tokens = 1 + grid[0] * grid[1]
            example = tuple(torch.zeros(1, tokens, vis.width) for _ in acts) + (torch.zeros(2, cfg.clip.embed_dim),)
            _export(
                DecoderGraph(model, grid), example, paths["decoder"], acts + ["cond"], ["logits"],
                {**{a: {0: "image_batch"} for a in acts}, "cond": {0: "batch"}, "logits": {0: "batch"}}, opset,
            )
    finally:
        model.to(device=device, dtype=dtype).train(was_training)

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "input_size": [h, w],
        "grid": list(grid),
        "patch_size": vis.patch_size,
        "extract_layers": list(cfg.decoder.extract_layers),
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "context_length": cfg.clip.text.context_length,
        "embed_dim": cfg.clip.embed_dim,
        "width": vis.width,
        "opset": opset,
        "exporter": "torch.onnx.export(dynamo=False)",
        "torch_version": torch.__version__,
        "files": dict(FILES),
        "weights": dict(WEIGHT_FILES),  # external data of the two vision graphs (share_vision_weights)
        "tensors": {
            "image_encoder": {"inputs": ["pixels"], "outputs": acts},
            "text_encoder": {"inputs": ["input_ids"], "outputs": ["cond"]},
            "decoder": {"inputs": acts + ["cond"], "outputs": ["logits"]},
            "visual_prompt_encoder": {"inputs": ["pixels"], "outputs": ["cond"]},
        },
        "visual_prompt": {"size": cfg.input_size, **_visual_prompt_settings()},
        "model_config": cfg.to_dict(),
    }
    meta["threshold"] = model.threshold
    if model.identity.tokenizer is not None:  # CLIP's BPE needs no file: it ships with clipseg
        paths["tokenizer"] = out_dir / TOKENIZER_NAME
        paths["tokenizer"].write_text(model.identity.tokenizer.to_json() + "\n")
        meta["tokenizer"] = TOKENIZER_NAME
    paths["metadata"] = out_dir / METADATA_NAME
    paths["metadata"].write_text(json.dumps(meta, indent=2) + "\n")
    return paths
