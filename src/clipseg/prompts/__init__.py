"""Prompts: text, visual (image + mask), mixed, raw embeddings; visual prompt engineering."""

from .encoder import PromptEncoder
from .types import MixedPrompt, Prompt, PromptError, VisualPrompt, describe
from .visual import VisualPromptConfig, engineer_visual_prompt

__all__ = ["PromptEncoder", "MixedPrompt", "Prompt", "PromptError", "VisualPrompt", "describe",
           "VisualPromptConfig", "engineer_visual_prompt"]
