"""The one prompt-handling rule of `Predictor` (PyTorch) and `OnnxPredictor` (onnxruntime):
which arguments are one prompt, and how a list of prompts becomes conditional vectors.
Torch-free: the runtimes pass their own encoders and array type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..io.arrays import mix_conditions
from .types import MixedPrompt, PromptError, VisualPrompt


def prompt_list(prompts: Any) -> list:
    """A single prompt (text, VisualPrompt, MixedPrompt, an embedding array or tensor) -> [it];
    a sequence of prompts -> a list of them."""
    if isinstance(prompts, (str, VisualPrompt, MixedPrompt)) or hasattr(prompts, "shape"):
        return [prompts]
    if not isinstance(prompts, Sequence):
        raise PromptError(f"prompts must be a prompt or a sequence of prompts, got {type(prompts).__name__}")
    return list(prompts)


def assemble_conditions(prompts: Sequence, encode_texts: Callable[[list[str]], Sequence],
                        encode_visuals: Callable[[list[VisualPrompt]], Sequence],
                        embedding: Callable[[Any, int], Any]) -> list:
    """The conditional vector of each prompt, in order: texts encoded in one call, each visual
    prompt object once however many mixed prompts share it, mixed prompts by
    `mix_conditions`, embeddings checked by `embedding(value, index)`."""
    if len(prompts) == 0:
        raise PromptError("no prompts given")
    texts = [p if isinstance(p, str) else p.text for p in prompts if isinstance(p, (str, MixedPrompt))]
    visuals = {id(v): v for v in (p if isinstance(p, VisualPrompt) else p.visual for p in prompts
                                  if isinstance(p, (VisualPrompt, MixedPrompt)))}
    text_emb = iter(encode_texts(texts)) if texts else iter(())
    vis_emb = dict(zip(visuals, encode_visuals(list(visuals.values())))) if visuals else {}
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            out.append(next(text_emb))
        elif isinstance(p, VisualPrompt):
            out.append(vis_emb[id(p)])
        elif isinstance(p, MixedPrompt):
            out.append(mix_conditions(next(text_emb), vis_emb[id(p.visual)], float(p.text_weight)))
        elif hasattr(p, "shape"):
            out.append(embedding(p, i))
        else:
            raise PromptError(f"prompt #{i}: unsupported prompt type {type(p).__name__}")
    return out
