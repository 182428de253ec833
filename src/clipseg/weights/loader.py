"""Load a CLIPSeg model from whatever the user has: a hub name, a folder, or a file.

    load_clipseg("CIDAS/clipseg-rd64-refined")           # hub (online) or HF cache
    load_clipseg("path/to/clipseg-rd64-refined")         # HF folder: config.json + weights
    load_clipseg("rd64-uni-refined.pth", backbone="ViT-B-16.pt")   # authors' decoder + OpenAI CLIP
    load_clipseg("my_model.safetensors")                 # saved by save_clipseg
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import NamedTuple

import torch
from ..model.clipseg import CLIPSeg
from ..model.config import CLIPConfig, CLIPSegConfig, DecoderConfig, VisionConfig
from ..model.fast_cpu import optimize_for_cpu
from ..model.identity import ModelIdentity
from .convert import to_ours
from .errors import CheckpointError
from .fetch import OFFLINE_HINT, fetch, fetch_hub
from .hf_config import THRESHOLD_FIELD, clip_config_from_hf, clipseg_config_from_hf
from .native import CLIP_FORMAT, write_safetensors
from .infer import infer_clip_config, infer_decoder_config, infer_vit_config
from .reader import check_safetensors_header, read_checkpoint, read_json, sniff_format
from .registry import DEFAULT_WEIGHTS, OPENAI_VIT_B16, PRETRAINED

# safetensors metadata of a model's identity (see clipseg.model.identity)
TOKENIZER_KEY = "tokenizer"  # a word tokenizer's vocabulary (JSON)
THRESHOLD_KEY = "threshold"  # the recommended mask threshold, e.g. "0.22"
BACKBONE_KEY = "backbone"  # decoder-only files: the backbone they were trained on (a registry name or path)

NATIVE_FORMAT = "clipseg"
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_BACKBONE_LAYOUTS = ("openai-clip", "hf-clip")
_DECODER_LAYOUTS = ("authors-decoder", "authors-deconv", "clipseg-decoder")


def _summarize(keys: list[str], n: int = 8) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" ... (+{len(keys) - n} more)" if len(keys) > n else "")


def check_fits(own: dict[str, torch.Size], sd: dict[str, torch.Tensor], where: str, prefix: str = "") -> None:
    """CheckpointError unless sd holds exactly the parameters of `own` (name -> shape) under
    `prefix`, each with its shape."""
    own = {k: v for k, v in own.items() if k.startswith(prefix)}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k])}" for k in own if k in sd and sd[k].shape != own[k]]
    if missing or unexpected or wrong:
        parts = [f"{where} does not fit the model"]
        if missing:
            parts.append(f"missing {len(missing)} keys: {_summarize(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {_summarize(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (file vs model): {_summarize(wrong, 4)}")
        raise CheckpointError("; ".join(parts))


def model_shapes(config: CLIPSegConfig, where: str) -> dict[str, torch.Size]:
    """Parameter shapes of the model `config` describes, built on the meta device (no memory):
    a file is checked against these before any real tensor of the model is allocated. One
    build per config (a ViT-B/16 takes 0.7 s), however often a load asks."""
    try:
        return dict(_meta_shapes(json.dumps(config.to_dict(), sort_keys=True)))
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError, AssertionError) as e:
        raise CheckpointError(f"{where}: its configuration does not describe a valid model: "
                              f"{type(e).__name__}: {str(e)[:200]}") from None


@functools.lru_cache(maxsize=8)
def _meta_shapes(config_json: str) -> tuple[tuple[str, torch.Size], ...]:
    config = CLIPSegConfig.from_dict(json.loads(config_json))  # sizes within bounds, types right
    with torch.device("meta"):
        model = CLIPSeg(config)
    return tuple((k, v.shape) for k, v in model.state_dict().items())


def _uninitialized(config: CLIPSegConfig) -> CLIPSeg:
    """A CLIPSeg whose tensors are allocated but not initialised: the random init of ~150 M
    parameters that a file's weights overwrite at once is skipped. Every tensor must then be
    assigned (`assign_weights` over the prefixes "clip." and "decoder.", or all at once)."""
    with torch.device("meta"):
        model = CLIPSeg(config)
    return model.to_empty(device="cpu")


def assign_weights(model: torch.nn.Module, sd: dict[str, torch.Tensor], where: str, prefix: str = "") -> None:
    """Copy sd into the model's parameters under `prefix`; every such parameter must be
    given with its shape and no unknown key may remain, else CheckpointError."""
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    check_fits({k: v.shape for k, v in own.items()}, sd, where, prefix)
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)


def _config_from(text: object, where: str) -> CLIPSegConfig:
    """CLIPSegConfig from the JSON text (or parsed object) a file carries; CheckpointError if bad."""
    try:
        obj = json.loads(text) if isinstance(text, str) else text
        return CLIPSegConfig.from_dict(obj)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where}: its clipseg_config is not valid JSON ({e.msg} at character {e.pos})") from None
    except ValueError as e:
        raise CheckpointError(f"{where}: its clipseg_config is invalid: {e}") from None


def _tokenizer_from(text: str | None, where: str):
    """The WordTokenizer of a vocabulary stored in metadata, None for none; CheckpointError if invalid."""
    if text is None:
        return None
    from ..tokenizer.word import WordTokenizer

    try:
        return WordTokenizer.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise CheckpointError(f"{where}: its embedded tokenizer vocabulary is invalid: {str(e)[:200]}") from None


def _check_vocabulary(tokenizer, config, where: str) -> None:
    """CheckpointError when an embedded word tokenizer cannot drive the model's text encoder:
    more words than its embedding has rows, or a longer context than its positions."""
    if tokenizer is None:
        return
    text = config.clip.text
    if tokenizer.vocab_size > text.vocab_size:
        raise CheckpointError(f"{where}: its embedded vocabulary has {tokenizer.vocab_size} tokens, more than the "
                              f"{text.vocab_size} rows of the model's text embedding")
    if tokenizer.context_length > text.context_length:
        raise CheckpointError(f"{where}: its embedded vocabulary's context of {tokenizer.context_length} tokens is "
                              f"longer than the model's {text.context_length}")


def _threshold_from(text: str | None, where: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise CheckpointError(f"{where}: its recommended threshold {text[:40]!r} is not a number in [0, 1]")
    return value


def _shard_names(index_path: Path, folder: Path) -> list[str]:
    """The shard files of a sharded HF checkpoint: plain file names inside `folder`."""
    index = read_json(index_path)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index_path}: expected an object with a non-empty 'weight_map' object")
    names = set(weight_map.values())
    root = folder.resolve()
    for name in names:
        if not isinstance(name, str) or not name or "\0" in name:
            raise CheckpointError(f"{index_path}: shard names must be file names, got {type(name).__name__} "
                                  f"{str(name)[:60]!r}")
        target = (folder / name).resolve()
        if Path(name).is_absolute() or ".." in Path(name).parts or target.parent != root:
            raise CheckpointError(f"{index_path}: shard '{name[:100]}' is not a file in {folder}; refusing "
                                  "to read files outside the model folder")
    return sorted(names)


def _read_hf_config(folder: Path) -> dict:
    """config.json of a Hugging Face model folder, as a dict (read before any weights)."""
    config_path = folder / "config.json"
    if not config_path.exists():
        raise CheckpointError(f"{folder} has no config.json; expected a Hugging Face model folder")
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    return config


def _read_hf_weights(folder: Path) -> tuple[dict[str, torch.Tensor], str]:
    """State dict and description of a Hugging Face model folder's weights."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        sd: dict[str, torch.Tensor] = {}
        for shard in _shard_names(index, folder):
            sd.update(read_checkpoint(folder / shard).state_dict)
        return sd, f"{folder} (sharded safetensors)"
    for name in _HF_WEIGHT_FILES:
        if (folder / name).exists():
            raw = read_checkpoint(folder / name)
            return raw.state_dict, f"{raw.path} ({raw.format})"
    raise CheckpointError(f"{folder} has config.json but no weights ({' or '.join(_HF_WEIGHT_FILES)})")


def _read_hf_folder(folder: Path) -> tuple[dict[str, torch.Tensor], str, dict]:
    """State dict, description and config.json of a Hugging Face model folder."""
    config = _read_hf_config(folder)
    sd, where = _read_hf_weights(folder)
    return sd, where, config


def _apply_processor_config(folder: Path, config: CLIPSegConfig) -> None:
    """The input size and mean/std of an HF folder's preprocessor_config.json (a square `size`:
    an int or {height, width}), when it has one; the CIDAS folders say 352 and ImageNet's."""
    path = folder / "preprocessor_config.json"
    if not path.exists():
        return
    pre = read_json(path)
    where = str(path)
    if not isinstance(pre, dict):
        raise CheckpointError(f"{where}: expected a JSON object, got {type(pre).__name__}")
    size = pre.get("size")
    if isinstance(size, dict) and size.get("height") == size.get("width"):
        size = size.get("height")
    if isinstance(size, int) and not isinstance(size, bool):
        if not 16 <= size <= 8192:
            raise CheckpointError(f"{where}: image size {size} is outside 16..8192")
        config.input_size = size
    for name, key in (("mean", "image_mean"), ("std", "image_std")):
        value = pre.get(key)
        if value is None:
            continue
        if (not isinstance(value, list) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e3 for v in value)
                or (name == "std" and min(value) <= 0)):
            raise CheckpointError(f"{where}: {key} must be three numbers, got {str(value)[:60]}")
        setattr(config, name, tuple(float(v) for v in value))


def _resolve(weights: str | Path, cache_dir: Path | None) -> Path:
    path = Path(weights).expanduser()
    if path.exists():
        return path
    name = str(weights)
    if name in PRETRAINED:
        return fetch(PRETRAINED[name], cache_dir)
    if name.count("/") == 1 and not name.startswith((".", "/")) and not path.suffix:
        return fetch_hub(name, cache_dir)  # any other hub repo id
    raise CheckpointError(f"checkpoint path '{name}' does not exist, and it is not a known pretrained name "
                          f"({', '.join(PRETRAINED)}). " + OFFLINE_HINT)


def read_backbone(backbone: str | Path | None, cache_dir: Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """CLIP weights (our `clip.*` keys) from OpenAI/open_clip files or an HF CLIPModel folder.
    None = the OpenAI ViT-B/16 from the cache, downloaded when online."""
    path = fetch(OPENAI_VIT_B16, cache_dir) if backbone is None else _resolve(backbone, cache_dir)
    if path.is_dir():
        sd, where, _ = _read_hf_folder(path)
    else:
        raw = read_checkpoint(path)
        sd, where = raw.state_dict, f"{raw.path} ({raw.format})"
        if raw.metadata.get("format") == CLIP_FORMAT:  # our own CLIP file (e.g. the generated world's)
            return {f"clip.{k}": v for k, v in sd.items()}, where
    sd, layout = to_ours(sd)
    if layout in ("hf-clipseg", "clipseg"):  # a full CLIPSeg model also carries a backbone
        sd = {k: v for k, v in sd.items() if k.startswith("clip.")}
    elif layout not in _BACKBONE_LAYOUTS:
        raise CheckpointError(f"{where}: expected a CLIP backbone (OpenAI, open_clip or HF CLIPModel), found layout '{layout}'")
    return sd, where


class Backbone(NamedTuple):
    state_dict: dict[str, torch.Tensor]  # the `clip.*` weights
    where: str  # the file and its format, for errors
    tokenizer: object | None  # the word tokenizer the backbone file carries (the world CLIP's), else None


def read_backbone_for(config: CLIPSegConfig, backbone: str | Path | None, cache_dir: Path | None = None,
                      infer_clip: bool = True) -> Backbone:
    """The CLIP weights of `backbone` (see read_backbone), checked against `config` before any
    model exists. infer_clip: first set `config.clip` from the weights (head counts by OpenAI's
    rule, width // 64), for configs that do not say what backbone they have."""
    sd, where = read_backbone(backbone, cache_dir)
    if infer_clip:  # an HF folder's config.json says what the weights cannot (head counts)
        folder = None if backbone is None else _resolve(backbone, cache_dir)
        config.clip = (clip_config_from_hf(_read_hf_config(folder), str(folder / "config.json"))
                       if folder is not None and folder.is_dir() else infer_clip_config(sd))
    check_fits(model_shapes(config, where), sd, where, prefix="clip.")
    tokenizer = embedded_tokenizer(backbone, cache_dir) if backbone is not None else None
    return Backbone(sd, where, tokenizer)


_VIT_LAYOUTS = ("timm-vit", "hf-vit")


def _hf_vit_settings(config: dict, where: str) -> tuple[int | None, float]:
    """(heads, LayerNorm eps) from an HF ViT config.json; checks it is an exact-GELU ViT."""
    if config.get("model_type", "vit") != "vit":
        raise CheckpointError(f"{where}: model_type is '{config.get('model_type')}', expected 'vit'")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise CheckpointError(f"{where}: hidden_act '{act}' is not supported (ImageNet ViTs use gelu)")
    if config.get("qkv_bias", True) is not True:
        raise CheckpointError(f"{where}: a ViT without query/key/value biases is not supported")
    heads, eps = config.get("num_attention_heads", 12), config.get("layer_norm_eps", 1e-12)
    if isinstance(heads, bool) or not isinstance(heads, int) or not isinstance(eps, (int, float)) or eps <= 0:
        raise CheckpointError(f"{where}: num_attention_heads / layer_norm_eps have wrong types")
    return heads, float(eps)


def read_vit_backbone(weights: str | Path, cache_dir: Path | None = None, heads: int | None = None
                      ) -> tuple[dict[str, torch.Tensor], VisionConfig, str]:
    """An ImageNet ViT as the visual tower of the ViTSeg baseline: timm's
    `vit_base_patch16_224` state dict (.pth / .bin / .safetensors) or an HF `ViTModel` /
    `ViTForImageClassification` folder (`google/vit-base-patch16-224`). Returns the
    `clip.visual.*` weights (all but `proj`, which an ImageNet ViT has no counterpart for),
    their VisionConfig and a description. CheckpointError for anything else.

    heads: for timm files, whose shapes do not show it (default width // 64: ViT-S 6, B 12, L 16).
    """
    path = _resolve(weights, cache_dir)
    eps = 1e-6  # timm's LayerNorm eps
    if path.is_dir():
        sd, where, hf_config = _read_hf_folder(path)
        heads, eps = _hf_vit_settings(hf_config, str(path / "config.json"))
    else:
        raw = read_checkpoint(path)
        sd, where = raw.state_dict, f"{raw.path} ({raw.format})"
    sd, layout = to_ours(sd)
    if layout not in _VIT_LAYOUTS:
        raise CheckpointError(f"{where}: expected an ImageNet ViT (timm vit_base_patch16_224 or an HF ViTModel), "
                              f"found layout '{layout}'")
    if layout == "hf-vit" and not path.is_dir():
        eps = 1e-12  # HF's default, for a bare model file without its config.json
    vision = infer_vit_config(sd, heads, eps)
    shapes = model_shapes(CLIPSegConfig(clip=CLIPConfig(vision=vision), decoder=DecoderConfig(extract_layers=(0,))),
                          where)
    shapes.pop("clip.visual.proj")
    check_fits(shapes, sd, where, prefix="clip.visual.")
    return sd, vision, where


def load_clipseg(
    weights: str | Path = DEFAULT_WEIGHTS,
    *,
    backbone: str | Path | None = None,
    extract_layers: tuple[int, ...] | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
) -> CLIPSeg:
    """Build and load a CLIPSeg model; see the module docstring for what `weights` may be.

    backbone: CLIP weights for decoder-only files (default: OpenAI ViT-B/16, cached/downloaded).
    extract_layers: override for decoder-only files (the released models use (3, 6, 9)).
    Raises CheckpointError naming the file, its format and the missing/unexpected keys.
    """
    cache = Path(cache_dir) if cache_dir else None
    path = _resolve(weights, cache)
    source = PRETRAINED.get(str(weights)) if not Path(weights).expanduser().exists() else None
    if backbone is None and source is not None and source.backbone:
        backbone = source.backbone  # a registry decoder ships with its own backbone
    native = False
    metadata: dict[str, str] = {}
    if path.is_dir():
        hf_config = _read_hf_config(path)  # the config is checked before any weights are read
        if "clipseg_config" in hf_config:  # our own folder format
            config = _config_from(hf_config["clipseg_config"], str(path / "config.json"))
        else:
            try:
                config = clipseg_config_from_hf(hf_config, str(path / "config.json"))
            except (TypeError, ValueError, AttributeError) as e:
                if isinstance(e, CheckpointError):
                    raise
                raise CheckpointError(f"{path / 'config.json'}: not a valid CLIPSeg config: {str(e)[:200]}") from None
        _apply_processor_config(path, config)
        if THRESHOLD_FIELD in hf_config:  # written by clipseg's HF export; checked here to name its file
            _threshold_from(str(hf_config[THRESHOLD_FIELD]), f"{path / 'config.json'} ({THRESHOLD_FIELD})")
            metadata = {THRESHOLD_KEY: str(hf_config[THRESHOLD_FIELD])}
        model_shapes(config, str(path / "config.json"))  # a sane model, before reading its weights
        sd, where = _read_hf_weights(path)
        sd, layout = to_ours(sd)
    else:
        raw = read_checkpoint(path)
        where = f"{raw.path} ({raw.format})"
        sd, layout = to_ours(raw.state_dict)
        native = raw.metadata.get("format") == NATIVE_FORMAT
        metadata = raw.metadata if native else {}
        if native:
            if "clipseg_config" not in raw.metadata:
                raise CheckpointError(f"{where}: a clipseg file without its clipseg_config metadata (written by "
                                      "another program, or damaged); cannot tell what model it is")
            config = _config_from(raw.metadata["clipseg_config"], where)
        elif layout == "hf-clipseg" or layout == "clipseg":
            config = CLIPSegConfig(clip=infer_clip_config(sd), decoder=infer_decoder_config(sd, extract_layers))
        elif layout in _DECODER_LAYOUTS:
            config = CLIPSegConfig(decoder=infer_decoder_config(sd, extract_layers))
        elif layout in _BACKBONE_LAYOUTS:
            raise CheckpointError(
                f"{where} is a CLIP backbone ({layout}), not a CLIPSeg model: pass it as backbone= "
                "together with decoder weights (rd64-uni.pth, rd64-uni-refined.pth or rd16-uni.pth)"
            )
        elif layout in _VIT_LAYOUTS:
            raise CheckpointError(f"{where} is an ImageNet ViT ({layout}), not a CLIPSeg model: it is the visual "
                                  "backbone of the ViTSeg baseline (train with --visual-backbone)")
        else:
            raise CheckpointError(f"{where}: unrecognised checkpoint layout; first keys: {_summarize(list(sd))}")
    if extract_layers is not None:
        config.decoder.extract_layers = tuple(extract_layers)
    tokenizer = _tokenizer_from(metadata.get(TOKENIZER_KEY), where)  # checked before any backbone is read
    _check_vocabulary(tokenizer, config, where)  # ... and before the model is built
    threshold = _threshold_from(metadata.get(THRESHOLD_KEY), where)
    if layout in _DECODER_LAYOUTS:
        if backbone is None and metadata.get(BACKBONE_KEY):
            backbone = metadata[BACKBONE_KEY]  # the file names the backbone it was trained on
            if not Path(backbone).expanduser().exists() and backbone not in PRETRAINED:
                raise CheckpointError(f"{where} is decoder-only and was trained on the backbone '{backbone[:200]}', "
                                      "which is neither a file here nor a known pretrained name: pass backbone= "
                                      "(--backbone) with that backbone's weights")
        if native:  # the file says what model it is: check it before reading the backbone
            check_fits(model_shapes(config, where), sd, where, prefix="decoder.")
        clip = read_backbone_for(config, backbone, cache, infer_clip=not native)
        check_fits(model_shapes(config, where), sd, where, prefix="decoder.")  # both checked before the model exists
        model = _uninitialized(config)  # the two prefixes cover every tensor of a CLIPSeg
        assign_weights(model, clip.state_dict, clip.where, prefix="clip.")
        assign_weights(model, sd, where, prefix="decoder.")
        tokenizer = tokenizer or clip.tokenizer  # a decoder trained on a backbone with its own vocabulary
    else:
        shapes = model_shapes(config, where)
        if "clip.logit_scale" in shapes:
            # unused by segmentation; CLIP's initial value when a file leaves it out
            sd.setdefault("clip.logit_scale", torch.full(shapes["clip.logit_scale"], math.log(1 / 0.07)))
        check_fits(shapes, sd, where)
        model = _uninitialized(config)
        assign_weights(model, sd, where)
    _check_vocabulary(tokenizer, config, where)  # also the one a decoder takes from its backbone
    model.identity = ModelIdentity(weights=str(weights), source=_source_name(weights, path, source),
                                   tokenizer=tokenizer, threshold=threshold,
                                   backbone=_backbone_name(weights, path, backbone, layout in _DECODER_LAYOUTS),
                                   details=_source_details(path, backbone))
    return optimize_for_cpu(model).to(device).eval()  # the CPU speed paths (same math; no-op elsewhere)


def _backbone_name(weights: str | Path, path: Path, backbone: str | Path | None, decoder_only: bool) -> str | None:
    """The backbone a decoder-only export of this model names: the backbone it was loaded with,
    or, for a full model, the model itself (its `clip.*` part is a backbone): a registry / hub
    name as given, a local path made absolute."""
    if decoder_only:
        return None if backbone is None else str(backbone)
    return str(path.resolve()) if Path(weights).expanduser().exists() else str(weights)


def _source_name(weights: str | Path, path: Path, registry_entry) -> str:
    """What was read, for people: a local path, a file shipped with clipseg, or a hub / cache copy."""
    if Path(weights).expanduser().exists():
        return str(path.resolve())
    if registry_entry is not None and registry_entry.kind == "package":
        return f"'{weights}' (shipped with clipseg)"
    return f"pretrained '{weights}' (hub / cache)"


def _source_details(path: Path, backbone: str | Path | None) -> dict:
    """The file's size (or a folder's files) and the backbone file's path, for `clipseg info`."""
    details: dict = {}
    if path.is_file():
        details["file_size"] = path.stat().st_size
    else:
        details["files"] = sorted(p.name for p in path.iterdir() if p.is_file())[:20]
    if backbone is not None and Path(backbone).expanduser().exists():
        details["backbone_file"] = str(Path(backbone).expanduser().resolve())
    return details


def save_clipseg(model: CLIPSeg, path: str | Path, decoder_only: bool = False, *, threshold: float | None = None,
                 backbone: str | None = None) -> Path:
    """Save in the native format: one safetensors file with the config and the model's identity
    (its word tokenizer, recommended threshold and, for decoder-only files, its backbone) in
    the metadata, so that `clipseg.load(path)` gives the same model back.

    decoder_only=True writes only the ~1 M decoder parameters; they load with the backbone the
    file names (`model.identity.backbone`, or `backbone` here) or one passed at load time.
    threshold / backbone: override the model's identity for this file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = model.state_dict()
    if decoder_only:
        sd = {k: v for k, v in sd.items() if k.startswith("decoder.")}
    identity = model.identity
    metadata = {"format": NATIVE_FORMAT, "clipseg_config": json.dumps(model.config.to_dict())}
    if identity.tokenizer is not None:
        metadata[TOKENIZER_KEY] = identity.tokenizer.to_json()
    threshold = identity.threshold if threshold is None else threshold
    if threshold is not None:
        metadata[THRESHOLD_KEY] = repr(float(threshold))
    backbone = identity.backbone if backbone is None else backbone
    if decoder_only and backbone:
        metadata[BACKBONE_KEY] = str(backbone)
    return write_safetensors(sd, path, metadata)


def embedded_tokenizer(weights: str | Path, cache_dir: str | Path | None = None):
    """The word tokenizer stored in a native weights file (or a registry name of one), or None
    when the weights carry none (they then use CLIP's BPE tokenizer). Reads only the file's
    header; hub models and folders are never fetched for this (they carry none).
    CheckpointError when the stored vocabulary is invalid."""
    path = Path(weights).expanduser()
    if not path.exists():
        source = PRETRAINED.get(str(weights))
        if source is None or source.kind != "package":
            return None
        path = fetch(source, Path(cache_dir) if cache_dir else None)
    if not path.is_file():
        return None
    if sniff_format(path) == "safetensors":
        check_safetensors_header(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            text = (f.metadata() or {}).get(TOKENIZER_KEY)
    except Exception:  # not a safetensors file: other formats carry no tokenizer
        return None
    return _tokenizer_from(text, str(path))


__all__ = ["load_clipseg", "save_clipseg", "embedded_tokenizer", "read_backbone", "read_vit_backbone", "assign_weights", "check_fits",
           "model_shapes"]
