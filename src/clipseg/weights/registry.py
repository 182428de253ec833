"""Known pretrained checkpoints, as data (like timm's pretrained configs).

Each entry says where the files live; `loader.load_clipseg` fetches them when online
and always accepts the same files from a local path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Files shipped inside the package (the generated world's trained models, example images).
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


@dataclass(frozen=True)
class PretrainedSource:
    name: str
    # "hf-hub" (a full CLIPSeg repo) | "url" (a single file) | "zip-member" (a file in a zip)
    # | "package" (a file shipped in clipseg/assets)
    kind: str
    location: str  # hub repo id, URL, or the file's path under clipseg/assets
    variant: str  # our model variant
    sha256: str | None = None
    description: str = ""
    member: str | None = None  # for "zip-member": the file's name inside the zip
    backbone: str | None = None  # decoder-only files: the backbone to load with them (a registry name or path)


def _world(name: str, file: str, description: str, backbone: bool = True) -> PretrainedSource:
    return PretrainedSource(name, "package", f"world/{file}", "world", description=description,
                            backbone="world-clip" if backbone else None)


OPENAI_VIT_B16 = PretrainedSource(
    name="openai/ViT-B-16",
    kind="url",
    location="https://openaipublic.azureedge.net/clip/models/"
    "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
    variant="rd64-uni",
    sha256="5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    description="OpenAI CLIP ViT-B/16 (TorchScript archive), the frozen backbone",
)

# The authors' decoder files come in one zip linked from their repository's README;
# they need the OpenAI backbone above.
AUTHORS_WEIGHTS_URL = "https://owncloud.gwdg.de/index.php/s/ioHbRzFx6th32hn/download"


def _authors(variant: str) -> PretrainedSource:
    return PretrainedSource(variant, "zip-member", AUTHORS_WEIGHTS_URL, variant, member=f"{variant}.pth",
                            description=f"the authors' {variant}.pth decoder (needs the OpenAI ViT-B/16 backbone)")


PRETRAINED: dict[str, PretrainedSource] = {
    s.name: s
    for s in [
        PretrainedSource("CIDAS/clipseg-rd64-refined", "hf-hub", "CIDAS/clipseg-rd64-refined", "rd64-uni-refined",
                         description="Hugging Face port of rd64-uni-refined (full model)"),
        PretrainedSource("CIDAS/clipseg-rd64", "hf-hub", "CIDAS/clipseg-rd64", "rd64-uni",
                         description="Hugging Face port of rd64-uni (full model)"),
        PretrainedSource("CIDAS/clipseg-rd16", "hf-hub", "CIDAS/clipseg-rd16", "rd16-uni",
                         description="Hugging Face port of rd16-uni (full model)"),
        _authors("rd64-uni"),
        _authors("rd64-uni-refined"),
        _authors("rd16-uni"),
        OPENAI_VIT_B16,
        _world("world-clip", "clip.safetensors", "the generated world's small CLIP (backbone of 'world')",
               backbone=False),
        _world("world", "clipseg.safetensors",
               "CLIPSeg trained on the generated world (small CLIP, shipped with the package; offline)"),
        _world("world-clip-deconv", "clip-deconv.safetensors", "the CLIP-Deconv baseline on the generated world"),
        _world("world-clipseg-random", "clipseg-random.safetensors",
               "the CLIPSeg decoder on a random (not pretrained) backbone, on the generated world", backbone=False),
    ]
}

# Entries that are CLIP backbones (for decoder-only files), not CLIPSeg models to segment with.
BACKBONE_NAMES = (OPENAI_VIT_B16.name, "world-clip")


def model_names() -> list[str]:
    """The registry's CLIPSeg models, by name (what --weights takes besides paths and hub ids)."""
    return [n for n in PRETRAINED if n not in BACKBONE_NAMES]


# The embedded model of the generated world: what runs when no real weights are available.
WORLD_WEIGHTS = "world"
# The world pipeline's model names -> the registry names of their shipped files.
WORLD_MODELS = {"clipseg": WORLD_WEIGHTS, "clip-deconv": "world-clip-deconv", "clipseg-random": "world-clipseg-random"}

DEFAULT_WEIGHTS = "CIDAS/clipseg-rd64-refined"


# The environment variable naming the weights the command line and the service load by default.
ENV_WEIGHTS = "CLIPSEG_WEIGHTS"
# `tiny:random[:SEED]`: a small randomly initialised model (tests, offline smoke runs).
RANDOM_PREFIX = "tiny:random"


def default_weights() -> str:
    """$CLIPSEG_WEIGHTS if set, else the registry default."""
    import os

    return os.environ.get(ENV_WEIGHTS) or DEFAULT_WEIGHTS
