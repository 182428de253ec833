"""clipseg: image segmentation by text and image prompts (CLIPSeg, Lüddecke & Ecker, CVPR 2022).

    import clipseg
    model = clipseg.load("CIDAS/clipseg-rd64-refined")   # or "world" (shipped), a folder, a file
    predictor = clipseg.Predictor(model)                  # the model's own tokenizer and threshold
    predictor.set_image("photo.jpg")
    probs = predictor.predict(["a cat", "something to sit on"])   # (2, H, W)
    masks = probs >= predictor.threshold
    edited = predictor.edit(["a cat | a dog"], grow=16, feather=8)  # masks for editing (clipseg.editing)

Names are imported on first use, so that `import clipseg` (the command line's start, the
torch-free ONNX runtime) does not load torch.
"""

from __future__ import annotations

from . import assets  # noqa: F401 (clipseg.assets: the shipped example files, by path; no torch)
from .constants import VERSION
from .io.lazy import lazy_getattr

__version__ = VERSION

_LAZY = {
    "ImageError": "io.image_io", "load_image": "io.image_io",
    "MaskOptions": "editing.options", "EditedMask": "editing.mask", "edit_map": "editing.mask",
    "cutout": "editing.cutout", "find_regions": "editing.regions",
    "load": "factory", "describe": "factory",
    "Predictor": "inference.predictor", "is_present": "inference.masks", "label_map": "inference.masks",
    "CLIPSeg": "model", "CLIPSegConfig": "model", "build_clipseg": "model",
    "MixedPrompt": "prompts.types", "PromptError": "prompts.types", "VisualPrompt": "prompts.types",
    "CLIPTokenizer": "tokenizer.bpe",
    "CheckpointError": "weights.errors", "load_clipseg": "weights.loader", "save_clipseg": "weights.loader",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
