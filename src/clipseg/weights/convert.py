"""Small named conversions from foreign checkpoint layouts to this project's keys.

Our keys: `clip.visual.*` and `clip.text.*` (OpenAI names inside each tower),
`clip.logit_scale`, `decoder.*` (the authors' decoder names).
"""

from __future__ import annotations

import re

import torch

Tensors = dict[str, torch.Tensor]

# Keys some formats carry that hold no weights we use.
_IGNORED = re.compile(
    r"(^|\.)(input_resolution|context_length|vocab_size|attn_mask|position_ids|num_batches_tracked)$"
)


def drop_ignored(sd: Tensors) -> Tensors:
    return {k: v for k, v in sd.items() if not _IGNORED.search(k)}


def detect_layout(sd: Tensors) -> str:
    """Name the layout of a state dict by its keys."""
    keys = set(sd)
    if "decoder.film_mul.weight" in keys and any(k.startswith("clip.visual.") for k in keys):
        return "clipseg"
    if any(k.startswith("clip.vision_model.") for k in keys):
        return "hf-clipseg"
    if any(k.startswith("vision_model.embeddings.") for k in keys):
        return "hf-clip"
    if "visual.conv1.weight" in keys and "token_embedding.weight" in keys:
        return "openai-clip"
    if "film_mul.weight" in keys and any(k.startswith("reduces.") for k in keys):
        return "authors-decoder"
    if "film_mul.weight" in keys and "reduce.weight" in keys:
        return "authors-deconv"
    if "decoder.film_mul.weight" in keys:
        return "clipseg-decoder"
    if "patch_embed.proj.weight" in keys and "cls_token" in keys and any(k.startswith("blocks.") for k in keys):
        return "timm-vit"
    if any(re.match(r"(vit\.)?embeddings\.patch_embeddings\.projection\.weight$", k) for k in keys):
        return "hf-vit"
    return "unknown"


# --- OpenAI CLIP / open_clip --------------------------------------------------------

_OPENAI_TEXT = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


def openai_clip_to_ours(sd: Tensors) -> Tensors:
    """OpenAI `ViT-B-16.pt` / open_clip keys -> `clip.*` keys."""
    out = {}
    for k, v in drop_ignored(sd).items():
        if k.startswith("visual."):
            out["clip." + k] = v
        elif k.startswith(_OPENAI_TEXT):
            out["clip.text." + k] = v
        elif k == "logit_scale":
            out["clip.logit_scale"] = v
        else:
            out[k] = v  # left unknown: reported as unexpected
    return out


def ours_to_openai_clip(sd: Tensors) -> Tensors:
    """`clip.*` keys -> OpenAI layout (for writing OpenAI-format files)."""
    out = {}
    for k, v in sd.items():
        if k.startswith("clip.text."):
            out[k[len("clip.text.") :]] = v
        elif k.startswith("clip."):
            out[k[len("clip.") :]] = v
    return out


# --- the authors' decoder files -------------------------------------------------------


def authors_decoder_to_ours(sd: Tensors) -> Tensors:
    """rd64-uni.pth etc. (decoder only, top-level names) -> `decoder.*`. Drops the
    unused `reduce.*` the CLIPSeg files carry; keeps it for the deconv baseline."""
    layout = detect_layout(sd)
    return {
        "decoder." + k: v
        for k, v in drop_ignored(sd).items()
        if not (layout == "authors-decoder" and k.startswith("reduce."))
    }


# --- Hugging Face transformers ----------------------------------------------------------

# HF name <-> our name, inside a tower (after `vision_model.` / `text_model.` / `clip.visual.` ...)
# and inside the decoder; {N} is a layer number. A name ending in "." or "_" is a prefix.
_TOWER_NAMES = [
    ("embeddings.patch_embedding.weight", "conv1.weight"),
    ("embeddings.class_embedding", "class_embedding"),
    ("embeddings.position_embedding.weight", "positional_embedding"),
    ("embeddings.token_embedding.weight", "token_embedding.weight"),
    ("pre_layrnorm.", "ln_pre."),
    ("post_layernorm.", "ln_post."),
    ("final_layer_norm.", "ln_final."),
    ("encoder.layers.{N}.self_attn.in_proj_", "transformer.resblocks.{N}.attn.in_proj_"),
    ("encoder.layers.{N}.self_attn.out_proj.", "transformer.resblocks.{N}.attn.out_proj."),
    ("encoder.layers.{N}.layer_norm1.", "transformer.resblocks.{N}.ln_1."),
    ("encoder.layers.{N}.layer_norm2.", "transformer.resblocks.{N}.ln_2."),
    ("encoder.layers.{N}.mlp.fc1.", "transformer.resblocks.{N}.mlp.c_fc."),
    ("encoder.layers.{N}.mlp.fc2.", "transformer.resblocks.{N}.mlp.c_proj."),
]
_DECODER_NAMES = [
    ("transposed_convolution", "trans_conv"),  # a prefix: trans_conv.0.weight, trans_conv.weight
    ("layers.{N}.layer_norm1.", "blocks.{N}.norm1."),
    ("layers.{N}.layer_norm2.", "blocks.{N}.norm2."),
    ("layers.{N}.mlp.fc1.", "blocks.{N}.linear1."),
    ("layers.{N}.mlp.fc2.", "blocks.{N}.linear2."),
    ("layers.{N}.self_attn.", "blocks.{N}.self_attn."),
]


def _rules(names: list[tuple[str, str]], to_ours: bool, prefixes: bool = False) -> list[tuple[str, str]]:
    """(pattern, replacement) rules for `_rename` from a name table, in either direction."""
    rules = []
    for hf, ours in names:
        source, target = (hf, ours) if to_ours else (ours, hf)
        pattern = "^" + re.escape(source).replace(re.escape("{N}"), r"(\d+)")
        if not (prefixes or source.endswith((".", "_"))):
            pattern += "$"
        rules.append((pattern, target.replace("{N}", r"\1")))
    return rules


_HF_TOWER, _OURS_TOWER = _rules(_TOWER_NAMES, True), _rules(_TOWER_NAMES, False)
_HF_DECODER, _OURS_DECODER = _rules(_DECODER_NAMES, True, True), _rules(_DECODER_NAMES, False, True)


def _fuse_qkv(sd: Tensors) -> Tensors:
    """`*.q_proj/k_proj/v_proj.{weight,bias}` -> `*.in_proj_{weight,bias}` (rows q, k, v)."""
    out = dict(sd)
    for k in list(sd):
        m = re.match(r"(.*)\.q_proj\.(weight|bias)$", k)
        if m:
            base, kind = m.groups()
            parts = [out.pop(f"{base}.{p}_proj.{kind}") for p in "qkv"]
            out[f"{base}.in_proj_{kind}"] = torch.cat(parts, dim=0)
    return out


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key, n = re.subn(pattern, repl, key)
        if n:
            return key
    return key


def hf_clip_to_ours(sd: Tensors, prefix: str = "") -> Tensors:
    """HF `CLIPModel` keys (under `prefix`, e.g. 'clip.') -> `clip.*`."""
    out: Tensors = {}
    for k, v in _fuse_qkv(drop_ignored(sd)).items():
        if not k.startswith(prefix):
            out[k] = v
            continue
        rest = k[len(prefix) :]
        if rest.startswith("vision_model."):
            out["clip.visual." + _rename(rest[len("vision_model.") :], _HF_TOWER)] = v
        elif rest.startswith("text_model."):
            out["clip.text." + _rename(rest[len("text_model.") :], _HF_TOWER)] = v
        elif rest == "visual_projection.weight":
            out["clip.visual.proj"] = v.t().contiguous()
        elif rest == "text_projection.weight":
            out["clip.text.text_projection"] = v.t().contiguous()
        elif rest == "logit_scale":
            out["clip.logit_scale"] = v
        else:
            out[k] = v
    return out


def hf_clipseg_to_ours(sd: Tensors) -> Tensors:
    """HF `CLIPSegForImageSegmentation` keys -> ours."""
    out = hf_clip_to_ours(sd, prefix="clip.")
    return {
        ("decoder." + _rename(k[len("decoder.") :], _HF_DECODER) if k.startswith("decoder.") else k): v
        for k, v in out.items()
    }


def _split_qkv(sd: Tensors) -> Tensors:
    """`*.in_proj_{weight,bias}` -> `*.q_proj/k_proj/v_proj.{weight,bias}` (inverse of _fuse_qkv)."""
    out: Tensors = {}
    for k, v in sd.items():
        m = re.match(r"(.*)\.in_proj_(weight|bias)$", k)
        if m:
            base, kind = m.groups()
            for name, part in zip("qkv", v.chunk(3, dim=0)):
                out[f"{base}.{name}_proj.{kind}"] = part.contiguous()
        else:
            out[k] = v
    return out


def ours_to_hf_clipseg(sd: Tensors) -> Tensors:
    """Our keys -> HF `CLIPSegForImageSegmentation` keys (inverse of hf_clipseg_to_ours)."""
    out: Tensors = {}
    for k, v in sd.items():
        if k.startswith("clip.visual."):
            rest = k[len("clip.visual."):]
            out["clip.visual_projection.weight" if rest == "proj" else
                "clip.vision_model." + _rename(rest, _OURS_TOWER)] = v.t().contiguous() if rest == "proj" else v
        elif k.startswith("clip.text."):
            rest = k[len("clip.text."):]
            out["clip.text_projection.weight" if rest == "text_projection" else
                "clip.text_model." + _rename(rest, _OURS_TOWER)] = v.t().contiguous() if rest == "text_projection" else v
        elif k.startswith("decoder."):
            out["decoder." + _rename(k[len("decoder."):], _OURS_DECODER)] = v
        else:
            out[k] = v  # clip.logit_scale
    return _split_qkv(out)


def ours_to_authors_decoder(sd: Tensors) -> Tensors:
    """Our `decoder.*` keys -> the authors' decoder file (rd64-uni.pth): top-level names."""
    return {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}


# --- ImageNet ViTs (the ViTSeg baseline's visual tower): timm and HF ViTModel -------

_TIMM_VIT = [
    (r"^patch_embed\.proj\.", "conv1."),
    (r"^norm\.", "ln_post."),
    (r"^blocks\.(\d+)\.norm1\.", r"transformer.resblocks.\1.ln_1."),
    (r"^blocks\.(\d+)\.norm2\.", r"transformer.resblocks.\1.ln_2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", r"transformer.resblocks.\1.attn.in_proj_\2"),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"transformer.resblocks.\1.attn.out_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"transformer.resblocks.\1.mlp.c_fc."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"transformer.resblocks.\1.mlp.c_proj."),
]
# The classifier and pooler of ImageNet models: not part of the visual tower.
_VIT_HEADS = re.compile(r"^(head\.|fc_norm\.|head_drop|classifier\.|pooler\.)")


def timm_vit_to_ours(sd: Tensors) -> Tensors:
    """timm `vit_base_patch16_224` keys -> `clip.visual.*` (classifier dropped)."""
    return _vit_tower(drop_ignored(sd), "cls_token", "pos_embed", _TIMM_VIT)


def _vit_tower(sd: Tensors, cls_key: str, pos_key: str, rules: list[tuple[str, str]]) -> Tensors:
    """An ImageNet ViT's keys -> `clip.visual.*`: class token and positional embedding
    flattened as CLIP keeps them, the rest renamed by `rules`, heads dropped, unknown keys kept
    (so that loading names them)."""
    out: Tensors = {}
    for k, v in sd.items():
        if _VIT_HEADS.match(k):
            continue
        if k == cls_key:
            out["clip.visual.class_embedding"] = v.reshape(-1)
        elif k == pos_key:
            out["clip.visual.positional_embedding"] = v.reshape(v.shape[-2], v.shape[-1])
        else:
            renamed = _rename(k, rules)
            out["clip.visual." + renamed if renamed != k else k] = v
    return out


_HF_VIT = [
    (r"^embeddings\.patch_embeddings\.projection\.", "conv1."),
    (r"^layernorm\.", "ln_post."),
    (r"^encoder\.layer\.(\d+)\.layernorm_before\.", r"transformer.resblocks.\1.ln_1."),
    (r"^encoder\.layer\.(\d+)\.layernorm_after\.", r"transformer.resblocks.\1.ln_2."),
    (r"^encoder\.layer\.(\d+)\.attention\.attention\.in_proj_(weight|bias)$",
     r"transformer.resblocks.\1.attn.in_proj_\2"),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"transformer.resblocks.\1.attn.out_proj."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"transformer.resblocks.\1.mlp.c_fc."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"transformer.resblocks.\1.mlp.c_proj."),
]


def hf_vit_to_ours(sd: Tensors) -> Tensors:
    """HF `ViTModel` / `ViTForImageClassification` keys -> `clip.visual.*` (pooler, classifier dropped)."""
    sd = {(k[len("vit."):] if k.startswith("vit.") else k): v for k, v in drop_ignored(sd).items()}
    fused = dict(sd)
    for k in list(sd):
        m = re.match(r"(.*\.attention\.attention)\.query\.(weight|bias)$", k)
        if m:
            base, kind = m.groups()
            fused[f"{base}.in_proj_{kind}"] = torch.cat([fused.pop(f"{base}.{p}.{kind}") for p in
                                                         ("query", "key", "value")], dim=0)
    return _vit_tower(fused, "embeddings.cls_token", "embeddings.position_embeddings", _HF_VIT)


CONVERTERS = {
    "clipseg": lambda sd: sd,
    "clipseg-decoder": lambda sd: sd,
    "hf-clipseg": hf_clipseg_to_ours,
    "hf-clip": hf_clip_to_ours,
    "openai-clip": openai_clip_to_ours,
    "authors-decoder": authors_decoder_to_ours,
    "authors-deconv": authors_decoder_to_ours,
    "timm-vit": timm_vit_to_ours,
    "hf-vit": hf_vit_to_ours,
}


def to_ours(sd: Tensors) -> tuple[Tensors, str]:
    """Convert any known layout to our keys; returns (state_dict, layout name)."""
    layout = detect_layout(sd)
    if layout == "unknown":
        return sd, layout
    return CONVERTERS[layout](sd), layout
