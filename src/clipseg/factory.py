"""The one way to get a model: `clipseg.load(spec)`.

    model = clipseg.load("world")                         # shipped with the package (offline)
    model = clipseg.load("CIDAS/clipseg-rd64-refined")    # hub (online) or the HF cache
    model = clipseg.load("path/to/hf-folder")             # an HF CLIPSeg folder
    model = clipseg.load("rd64-uni.pth", backbone="ViT-B-16.pt")   # the authors' decoder + a CLIP
    model = clipseg.load("runs/x/model.safetensors")      # written by clipseg (training, save_clipseg)
    model = clipseg.load("tiny:random:0")                 # a small random model (tests, smoke runs)

It returns the `CLIPSeg` module itself, with `model.identity` filled: the tokenizer its
weights were trained with (`model.tokenizer`), its recommended threshold
(`model.threshold`), the backbone it needs, where it came from. `Predictor(model)`, the
command line, the HTTP service, training, evaluation and the ONNX export all take it, so
the tokenizer and threshold travel with the model, not with the caller.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .model import CLIPSeg, build_clipseg
from .model.fast_cpu import optimize_for_cpu
from .tokenizer import Tokenizer, load_tokenizer
from .weights import CheckpointError, load_clipseg
from .weights.registry import DEFAULT_WEIGHTS, ENV_WEIGHTS, RANDOM_PREFIX, WORLD_WEIGHTS, default_weights

REAL_WEIGHTS_HINT = ("`hf download CIDAS/clipseg-rd64-refined --local-dir clipseg-rd64-refined` on a "
                     "machine with network, then --weights clipseg-rd64-refined (or set $CLIPSEG_WEIGHTS)")
# Parameter dtypes a model can run in. bfloat16 on a CPU with AMX / AVX512-BF16: about 3.5x
# float32's speed, mask IoU 0.993 against float32 (benchmarks/results/inference.md).
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load(spec: str | Path | None = None, *, device: str | torch.device | None = "cpu", dtype: str | None = "float32",
         backbone: str | Path | None = None, fallback_to_world: bool = False,
         cache_dir: str | Path | None = None) -> CLIPSeg:
    """Load the model `spec` names (None: $CLIPSEG_WEIGHTS, else CIDAS/clipseg-rd64-refined) on
    `device` ('auto' = CUDA, else MPS, else CPU) in `dtype` ('float32', 'bfloat16', 'float16').

    backbone: CLIP weights for decoder-only files that do not name their own.
    fallback_to_world: when no weights were named (no spec, no $CLIPSEG_WEIGHTS) and the default
    ones cannot be had (offline, not cached), load the shipped world model instead;
    `model.identity.fallback` then says why. Weights the user named are never replaced.
    Raises CheckpointError (bad or missing weights) or ValueError (device, dtype).
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    named = spec is not None or bool(os.environ.get(ENV_WEIGHTS))
    spec = str(spec) if spec is not None else default_weights()
    try:
        model = _random_model(spec) if spec.startswith(RANDOM_PREFIX) else \
            load_clipseg(spec, backbone=backbone, cache_dir=cache_dir)
    except CheckpointError as e:
        if named or not fallback_to_world:
            raise
        model = load_clipseg(WORLD_WEIGHTS, cache_dir=cache_dir)
        model.identity.fallback = str(e).split(". ")[0][:200]  # the error's first sentence, for the notice
    return model.to(dev, dt).eval()


def _random_model(spec: str) -> CLIPSeg:
    rest = spec[len(RANDOM_PREFIX):]
    if rest and (not rest.startswith(":") or not rest[1:].isdigit()):
        raise CheckpointError(f"'{spec}': expected '{RANDOM_PREFIX}' or '{RANDOM_PREFIX}:SEED' (SEED an integer)")
    seed = int(rest[1:]) if rest else 0
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = optimize_for_cpu(build_clipseg("tiny"))  # as load_clipseg's models: the CPU speed paths
    finally:
        torch.random.set_rng_state(state)
    model.identity.weights, model.identity.source = spec, "random"
    model.identity.details = {"note": "randomly initialised tiny model (for tests; outputs are meaningless)",
                              "seed": seed}
    return model


def prompt_tokenizer(model: CLIPSeg, spec: str | None = None) -> Tokenizer:
    """The tokenizer for `model`'s prompts: its own (None or 'auto'), CLIP's ('clip'), or a
    word-tokenizer vocabulary JSON (a path). ValueError when the file cannot be read."""
    if spec is None or spec == "auto":
        return model.tokenizer
    return load_tokenizer(spec)


def describe(model: CLIPSeg) -> dict:
    """What `clipseg info` and the service's /info print: source, threshold, sizes, parameters."""
    cfg, identity = model.config, model.identity
    param = next(model.parameters())
    vis, txt = cfg.clip.vision, cfg.clip.text
    return {
        "weights": identity.weights,
        "source": identity.source,
        **identity.details,
        "device": str(param.device),
        "dtype": str(param.dtype).replace("torch.", ""),
        "threshold": model.threshold,
        "threshold_source": "the weights" if identity.threshold is not None else "the default (the weights name none)",
        "tokenizer": "clip" if identity.tokenizer is None else f"word ({model.tokenizer.vocab_size} ids)",
        **({"backbone_weights": identity.backbone} if identity.backbone else {}),
        "input_size": cfg.input_size,
        "decoder": {
            "kind": cfg.decoder.kind,
            "reduce_dim": cfg.decoder.reduce_dim,
            "extract_layers": list(cfg.decoder.extract_layers),
            "refined": cfg.decoder.refined,
        },
        "backbone": {
            "patch_size": vis.patch_size,
            "width": vis.width,
            "layers": vis.layers,
            "text_context_length": txt.context_length,
            "embed_dim": cfg.clip.embed_dim,
        },
        "parameters": {"total": sum(p.numel() for p in model.parameters()),
                       "decoder": sum(p.numel() for p in model.decoder.parameters())},
    }


def fallback_notice(model: CLIPSeg) -> str | None:
    """The one line that says the embedded world model runs instead of real weights, or None."""
    if model.identity.fallback is None:
        return None
    return (f"no real weights ({model.identity.fallback}): using the embedded world model '{WORLD_WEIGHTS}', "
            f"which knows only the generated world's shapes. Real weights: {REAL_WEIGHTS_HINT}")


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """'float32' (default), 'bfloat16' or 'float16' (GPUs only). Raises ValueError otherwise."""
    name = (dtype or "float32").strip().lower()
    if name not in DTYPES:
        raise ValueError(f"unknown dtype '{dtype}'; choose one of {', '.join(DTYPES)}")
    if name == "float16" and device.type == "cpu":
        raise ValueError("float16 is for GPUs (CPU kernels for it are slow or missing); on CPU use bfloat16")
    return DTYPES[name]


def dtype_notice(dtype: torch.dtype, device: torch.device) -> str | None:
    """One line when `dtype` will be much slower than float32 on `device`, else None: bfloat16 on a
    CPU without native bfloat16 arithmetic (AVX512-BF16 or AMX) is emulated by conversions -
    measured 5.6x slower than float32 at 1 image x 1 prompt on a 2-core AVX2 AMD EPYC."""
    if dtype != torch.bfloat16 or device.type != "cpu":
        return None
    cpu = getattr(torch, "cpu", None)
    native = [getattr(cpu, f, None) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not all(callable(f) for f in native) or any(f() for f in native):
        return None
    return ("bfloat16 on this CPU (no AVX512-BF16 or AMX) runs emulated, several times slower than float32 "
            "(5.6x measured on an AVX2 EPYC); use float32 here")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' (or None) = cuda if available, else mps, else cpu. Raises ValueError when unavailable."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device '{device}': {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{device}' requested but CUDA is not available (torch {torch.__version__})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device '{device}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device '{device}' requested but MPS is not available")
    return dev


__all__ = ["DEFAULT_WEIGHTS", "DTYPES", "describe", "dtype_notice", "fallback_notice", "load", "prompt_tokenizer",
           "resolve_device", "resolve_dtype"]
