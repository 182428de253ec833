"""Choosing the weights and device for the command line and the HTTP service.

`--weights` (default: $CLIPSEG_WEIGHTS, else the registry default) accepts everything
`clipseg.load_clipseg` does, plus `tiny:random[:SEED]`: a small randomly initialised model
(64 px input) for tests and offline smoke runs. Its outputs mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..weights.registry import (  # noqa: F401 (re-exported)
    ENV_WEIGHTS, PRETRAINED, RANDOM_PREFIX, WORLD_WEIGHTS, default_weights,
)

REAL_WEIGHTS_HINT = ("`huggingface-cli download CIDAS/clipseg-rd64-refined --local-dir clipseg-rd64-refined` on a "
                     "machine with network, then --weights clipseg-rd64-refined (or set $CLIPSEG_WEIGHTS)")
# Parameter dtypes a model can run in. bfloat16 on a CPU with AMX / AVX512-BF16: about 3.5x
# float32's speed, mask IoU 0.993 against float32 (benchmarks/results/inference.md).
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def resolve_device(device: str | None) -> torch.device:
    """'auto' (or None) = cuda if available, else mps, else cpu. Raises ValueError when unavailable."""
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


@dataclass
class LoadedModel:
    model: "torch.nn.Module"
    weights: str  # what the user asked for
    source: str  # what was read (absolute path, hub id, or 'random')
    device: torch.device
    details: dict = field(default_factory=dict)
    dtype: torch.dtype = torch.float32
    tokenizer: object | None = None  # the word tokenizer the weights carry (None: CLIP's BPE tokenizer)
    fallback: str | None = None  # why the embedded world model runs instead of the default weights

    def make_tokenizer(self, spec: str = "auto"):
        """The tokenizer for prompts: 'auto' = the one the weights carry, else CLIP's BPE;
        'clip'; or the path of a word-tokenizer vocabulary JSON."""
        from ..tokenizer import load_tokenizer

        if spec == "auto":
            return self.tokenizer if self.tokenizer is not None else load_tokenizer("clip")
        return load_tokenizer(spec)

    def describe(self) -> dict:
        cfg = self.model.config
        n_all = sum(p.numel() for p in self.model.parameters())
        n_dec = sum(p.numel() for p in self.model.decoder.parameters())
        vis, txt = cfg.clip.vision, cfg.clip.text
        return {
            "weights": self.weights,
            "source": self.source,
            **self.details,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
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
            "parameters": {"total": n_all, "decoder": n_dec},
        }


def _random_model(spec: str):
    from ..model import build_clipseg

    rest = spec[len(RANDOM_PREFIX):]
    seed = 0
    if rest:
        if not rest.startswith(":") or not rest[1:].isdigit():
            from ..weights import CheckpointError

            raise CheckpointError(f"'{spec}': expected '{RANDOM_PREFIX}' or '{RANDOM_PREFIX}:SEED' (SEED an integer)")
        seed = int(rest[1:])
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_clipseg("tiny")
    finally:
        torch.random.set_rng_state(gen_state)
    return model, {"note": "randomly initialised tiny model (for tests; outputs are meaningless)", "seed": seed}


def load_model(weights: str | None = None, device: str | None = "cpu", backbone: str | None = None,
               dtype: str | None = "float32") -> LoadedModel:
    """Load `weights` on `device` in `dtype` (see DTYPES).

    Raises CheckpointError (bad/missing weights) or ValueError (device, dtype)."""
    from ..weights import embedded_tokenizer, load_clipseg

    spec = weights or default_weights()
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if spec.startswith(RANDOM_PREFIX):
        model, details = _random_model(spec)
        return LoadedModel(model.to(dev, dt).eval(), spec, "random", dev, details, dt)
    model = load_clipseg(spec, backbone=backbone, device=dev).to(dt)
    path = Path(spec).expanduser()
    details: dict = {}
    tokenizer = embedded_tokenizer(spec)
    if path.exists():
        source = str(path.resolve())
        if path.is_file():
            details["file_size"] = path.stat().st_size
        else:
            details["files"] = sorted(p.name for p in path.iterdir() if p.is_file())[:20]
    elif spec in PRETRAINED and PRETRAINED[spec].kind == "package":
        source = f"'{spec}' (shipped with clipseg)"
    else:
        source = f"pretrained '{spec}' (hub / cache)"
    if backbone:
        details["backbone_file"] = str(Path(backbone).expanduser().resolve())
    return LoadedModel(model, spec, source, dev, details, dt, tokenizer)


def load_model_or_world(weights: str | None = None, device: str | None = "cpu", backbone: str | None = None,
                        dtype: str | None = "float32") -> LoadedModel:
    """`load_model`, except that when the user named no weights (no `weights`, no
    $CLIPSEG_WEIGHTS) and the default hub model cannot be had (offline, not cached), the
    embedded world model runs instead; `fallback` then says why. Weights the user named are
    never replaced: their errors propagate."""
    import os

    from ..weights import CheckpointError

    if weights or os.environ.get(ENV_WEIGHTS):
        return load_model(weights, device, backbone, dtype)
    try:
        return load_model(None, device, backbone, dtype)
    except CheckpointError as e:
        reason = str(e).split(". No network?")[0].split(" (")[0]
    loaded = load_model(WORLD_WEIGHTS, device, None, dtype)
    loaded.fallback = reason
    return loaded


def fallback_notice(loaded: LoadedModel) -> str | None:
    """The one line that says the embedded world model runs instead of real weights, or None."""
    if loaded.fallback is None:
        return None
    return (f"no real weights ({loaded.fallback[:120]}): using the embedded world model '{WORLD_WEIGHTS}', "
            f"which knows only the generated world's shapes. Real weights: {REAL_WEIGHTS_HINT}")
