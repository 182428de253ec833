"""Known pretrained checkpoints, as data (like timm's pretrained configs).

Each entry says where the files live; `loader.load_clipseg` fetches them when online
and always accepts the same files from a local path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainedSource:
    name: str
    kind: str  # "hf-hub" (a full CLIPSeg repo) | "url" (a single file) | "zip-member" (a file in a zip)
    location: str  # hub repo id or URL
    variant: str  # our model variant
    sha256: str | None = None
    description: str = ""
    member: str | None = None  # for "zip-member": the file's name inside the zip


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
    ]
}

DEFAULT_WEIGHTS = "CIDAS/clipseg-rd64-refined"


# The environment variable naming the weights the command line and the service load by default.
ENV_WEIGHTS = "CLIPSEG_WEIGHTS"
# `tiny:random[:SEED]`: a small randomly initialised model (tests, offline smoke runs).
RANDOM_PREFIX = "tiny:random"


def default_weights() -> str:
    """$CLIPSEG_WEIGHTS if set, else the registry default."""
    import os

    return os.environ.get(ENV_WEIGHTS) or DEFAULT_WEIGHTS
