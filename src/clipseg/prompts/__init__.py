"""Prompts: text, visual (image + mask), mixed, raw embeddings; visual prompt engineering.

The prompt types load without torch; the encoder and the engineering on first use."""

from __future__ import annotations

from ..io.lazy import lazy_getattr
from .types import MixedPrompt, Prompt, PromptError, UnknownWordsWarning, VisualPrompt, describe

_LAZY = {"PromptEncoder": "encoder", "VisualPromptConfig": "visual", "engineer_visual_prompt": "visual"}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = ["PromptEncoder", "MixedPrompt", "Prompt", "PromptError", "UnknownWordsWarning", "VisualPrompt", "describe",
           "VisualPromptConfig", "engineer_visual_prompt"]
