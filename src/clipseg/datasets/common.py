"""What every reader shares: the resize to the model input, path checks, seeding, supports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..prompts.templates import PROMPT_TEMPLATES  # noqa: F401  (re-exported)
from ..prompts.visual import VisualPromptConfig, engineer_visual_prompt
from ..io.transforms import InputTransform



@dataclass(frozen=True)
class SampleTransform:
    """Image -> normalized model input (bilinear, `InputTransform`); masks and label maps
    are resized to the same size with nearest neighbour."""

    input: InputTransform = field(default_factory=InputTransform)

    @classmethod
    def of_size(cls, size: int) -> "SampleTransform":
        return cls(InputTransform(size=size))

    def image(self, image: Image.Image) -> torch.Tensor:
        """RGB PIL image -> (3, H, W) normalized."""
        return self.input(image)

    def labels(self, labels: np.ndarray) -> torch.Tensor:
        """(h, w) integer/bool map -> (H, W) int64 at the input size of an image of that size."""
        h, w = self.input.input_hw(*labels.shape)
        if labels.shape != (h, w):
            labels = np.asarray(Image.fromarray(labels.astype(np.uint8)).resize((w, h), Image.NEAREST))
        return torch.from_numpy(np.array(labels, dtype=np.int64))

    def mask(self, mask: np.ndarray) -> torch.Tensor:
        """(h, w) bool -> (1, H, W) float in {0, 1}."""
        return self.labels(mask.astype(bool))[None].float()


def require(path: Path, what: str) -> Path:
    """Return `path` if it exists, else raise FileNotFoundError naming it and what it should be."""
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: '{path}'")
    return path


def read_json(path: Path, what: str):
    """Parse a JSON file, naming it in the error if it is missing or malformed."""
    require(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} '{path}' is not valid JSON: {e}") from None


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Independent, reproducible random stream for one item of one epoch (worker-safe)."""
    return np.random.default_rng([seed, epoch, index])


def make_support(
    image: Image.Image, mask: np.ndarray, size: int, config: VisualPromptConfig
) -> torch.Tensor | None:
    """Visual prompt (3, S, S) from an example image and its (h, w) bool object mask.

    The image is first brought to `size` on its longer side (aspect kept, so the object is
    not distorted before cropping); the mask is reduced by area, so a thin or tiny object
    does not vanish. Returns None when the mask is empty (no example object).
    """
    if not mask.any():
        return None
    transform = InputTransform(size=size, keep_aspect=True, multiple=1)
    image_t = transform(image)  # (3, h', w')
    mask_t = torch.from_numpy(mask.astype(np.float32))[None, None]
    mask_t = F.interpolate(mask_t, size=image_t.shape[1:], mode="area")[0, 0] > 0  # (h', w')
    return engineer_visual_prompt(image_t, mask_t, config)
