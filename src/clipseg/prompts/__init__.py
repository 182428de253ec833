"""Prompts: text, visual (image + mask), mixed, raw embeddings; visual prompt engineering.

The prompt types load without torch; the encoder and the engineering on first use."""

from __future__ import annotations

import importlib

from .types import MixedPrompt, Prompt, PromptError, VisualPrompt, describe

_LAZY = {"PromptEncoder": "encoder", "VisualPromptConfig": "visual", "engineer_visual_prompt": "visual"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = ["PromptEncoder", "MixedPrompt", "Prompt", "PromptError", "VisualPrompt", "describe",
           "VisualPromptConfig", "engineer_visual_prompt"]
