"""The kinds of prompt a model can be conditioned on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from ..io.image_io import ImageInput

if TYPE_CHECKING:
    import torch


class PromptError(ValueError):
    """A prompt is unusable (empty, too long, empty mask ...); the message says which and why."""


class UnknownWordsWarning(UserWarning):
    """A text prompt has words outside the model's vocabulary (word tokenizers only): they are
    read as <unk>, so the prompt means less than it says."""


@dataclass(frozen=True)
class VisualPrompt:
    """An example image and a mask of the object to find (paper: one-shot / visual prompt)."""

    image: ImageInput
    mask: ImageInput  # HxW array, or an image whose nonzero pixels mark the object


@dataclass(frozen=True)
class MixedPrompt:
    """cond = text_weight * text + (1 - text_weight) * visual (paper Sec. 3.2, interpolation)."""

    text: str
    visual: VisualPrompt
    text_weight: float = 0.5


# str: a text prompt; torch.Tensor: a ready conditional vector (embed_dim,)
Prompt = Union[str, VisualPrompt, MixedPrompt, "torch.Tensor"]


def describe(prompt: Prompt) -> str:
    """Short human-readable name of a prompt, for logs and outputs."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, VisualPrompt):
        return "<visual prompt>"
    if isinstance(prompt, MixedPrompt):
        return f"{prompt.text} + <visual prompt> (w={prompt.text_weight:g})"
    return "<embedding>"
