"""One request's prompts, as both front ends (command line and HTTP service) build them.

Text prompts, visual prompts (example image + mask) and an optional text weight become the
list of prompts the model answers and one name per prompt, by the same rules everywhere:

- without a text weight: the texts, then the visual prompts (named `visual`, or `visual-1`,
  `visual-2`, ... for several);
- with a text weight w in [0, 1]: exactly one visual prompt is mixed into every text
  prompt (w * text + (1 - w) * visual, paper Sec. 3.2), named `TEXT+visual`.

The names are what output files are keyed by (`clipseg.inference.naming.prompt_key`), so a
mask downloaded from the web page and one written by `clipseg segment` for the same prompt
and the same support files have the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import MixedPrompt, Prompt, PromptError, VisualPrompt


@dataclass(frozen=True)
class FieldNames:
    """How a front end calls the three inputs, for its error messages."""

    text: str = "a text prompt"
    visual: str = "example image with its mask"
    weight: str = "text weight"


CLI_FIELDS = FieldNames("--prompt (or --prompts-file)", "--support/--support-mask pair", "--text-weight")
HTTP_FIELDS = FieldNames("'prompt' field", "support_image + support_mask", "text_weight")


def count_prompts(n_texts: int, n_visuals: int, text_weight: float | None = None,
                  fields: FieldNames = FieldNames()) -> int:
    """How many prompts a request makes; PromptError when the combination is not allowed."""
    if n_texts == 0 and n_visuals == 0:
        raise PromptError(f"no prompt given: send at least one {fields.text} or a {fields.visual}")
    if text_weight is None:
        return n_texts + n_visuals
    if not 0.0 <= text_weight <= 1.0:
        raise PromptError(f"{fields.weight} must be between 0 (visual only) and 1 (text only), got {text_weight}")
    if n_visuals != 1:
        raise PromptError(f"{fields.weight} mixes one visual prompt into the text prompts: give exactly one "
                          f"{fields.visual}, got {n_visuals}")
    if n_texts == 0:
        raise PromptError(f"{fields.weight} mixes the visual prompt into text prompts: give at least one {fields.text}")
    return n_texts


def assemble(texts: Sequence[str], visuals: Sequence[VisualPrompt], text_weight: float | None = None,
             fields: FieldNames = FieldNames()) -> tuple[list[Prompt], list[str]]:
    """The prompts of a request and their names (see the module docstring)."""
    count_prompts(len(texts), len(visuals), text_weight, fields)
    if text_weight is None:
        names = list(texts) + (["visual"] if len(visuals) == 1 else [f"visual-{i + 1}" for i in range(len(visuals))])
        return [*texts, *visuals], names
    return [MixedPrompt(t, visuals[0], text_weight) for t in texts], [f"{t}+visual" for t in texts]
