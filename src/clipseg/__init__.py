"""clipseg: image segmentation by text and image prompts (CLIPSeg, Lüddecke & Ecker, CVPR 2022).

    from clipseg import Predictor, load_clipseg
    predictor = Predictor(load_clipseg("CIDAS/clipseg-rd64-refined"))
    predictor.set_image("photo.jpg")
    probs = predictor.predict(["a cat", "something to sit on"])   # (2, H, W)
"""

from .data.image_io import ImageError, load_image
from .inference import Predictor, is_present, label_map
from .model import CLIPSeg, CLIPSegConfig, build_clipseg
from .prompts import MixedPrompt, PromptError, VisualPrompt
from .tokenizer import CLIPTokenizer
from .weights import CheckpointError, load_clipseg, save_clipseg

__version__ = "0.1.0"

__all__ = [
    "CLIPSeg", "CLIPSegConfig", "build_clipseg", "load_clipseg", "save_clipseg", "Predictor", "VisualPrompt",
    "MixedPrompt", "CLIPTokenizer", "CheckpointError", "ImageError", "PromptError", "load_image", "label_map",
    "is_present",
]
