"""What a folder run needs from a model, for PyTorch (`Predictor`) and onnxruntime
(`OnnxPredictor`, `clipseg segment --backend onnx`): preprocess an image (in a DataLoader
worker), encode the prompts once, and logits for a batch of images of one input shape."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..inference.precision import autocast_context
from ..inference.predictor import batch_logits


class TorchBackend:
    def __init__(self, predictor, autocast: torch.dtype | None = None):
        self.predictor, self.autocast = predictor, autocast
        self.device = predictor.device  # where maps are made full size (and refined)
        self.input_size = predictor.transform.size
        self.patch = predictor.model.config.clip.vision.patch_size

    def prepare(self, image: Image.Image) -> torch.Tensor:
        return self.predictor.transform(image)

    def encode_prompts(self, prompts: Sequence) -> torch.Tensor:
        with torch.inference_mode():
            return self.predictor.prompt_encoder.encode(list(prompts))  # PromptError here, before any image

    def batch_logits(self, pixels: list[torch.Tensor], cond: torch.Tensor) -> list[torch.Tensor]:
        """Logits (N, h, w) on the CPU per image: one backbone pass, one decoder pass per image."""
        with autocast_context(self.autocast, self.predictor.device):
            return [lg.float().cpu() for lg in batch_logits(self.predictor.model, pixels, cond)]


class OnnxBackend:
    def __init__(self, predictor):
        self.predictor = predictor
        self.device = torch.device("cpu")
        self.input_size = max(predictor.input_size)
        self.patch = predictor.input_size[0] // predictor.meta["grid"][0]

    def prepare(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(self.predictor.transform(image))

    def encode_prompts(self, prompts: Sequence) -> torch.Tensor:
        return torch.from_numpy(self.predictor.encode(list(prompts)))

    def batch_logits(self, pixels: list[torch.Tensor], cond: torch.Tensor) -> list[torch.Tensor]:
        features = self.predictor.encode_images(np.stack([p.numpy() for p in pixels]))
        c = cond.numpy()
        return [torch.from_numpy(self.predictor.decode(f, c)) for f in features]


def backend_for(predictor, autocast: torch.dtype | None = None):
    """The backend of a Predictor or an OnnxPredictor."""
    if hasattr(predictor, "sessions"):
        return OnnxBackend(predictor)
    return TorchBackend(predictor, autocast)
