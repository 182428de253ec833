"""Turning prompts into conditional vectors, with a cache of text embeddings."""

from __future__ import annotations

import sys
import warnings
from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F

from ..io.image_io import load_image, load_mask
from ..io.transforms import normalize, pil_to_tensor
from ..model.clipseg import CLIPSeg
from ..tokenizer import Tokenizer
from .conditions import assemble_conditions
from .text import TextEmbeddingCache, tokenize_prompts, unknown_words, unknown_words_warning
from .types import Prompt, PromptError, UnknownWordsWarning, VisualPrompt
from .visual import VisualPromptConfig, engineer_visual_prompt
from .visual_geometry import support_size


def _stacklevel_of_caller() -> int:
    """The `stacklevel` that makes a warning point at the first frame outside clipseg and
    torch's decorators (the user's call), whichever library path led to it."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("clipseg.", "torch.")):
        frame, level = frame.f_back, level + 1
    return level


class PromptEncoder:
    """Computes conditional vectors (N, embed_dim) for a list of prompts in batched passes.

    Text embeddings are cached by prompt string (LRU, `cache_size` entries), so a prompt
    asked again for another image costs nothing. The cache can be saved and restored
    (`cache_state`, `load_cache_state`): training checkpoints carry it, because an embedding
    computed in another batch of prompts differs in the last bits, and a resumed run must
    repeat the uninterrupted one exactly.
    """

    def __init__(
        self,
        model: CLIPSeg,
        tokenizer: Tokenizer,
        visual_config: VisualPromptConfig | None = None,
        cache_size: int = 1024,
        truncate: bool = False,
        warn_unknown_words: bool = True,
    ):
        vocab = model.config.clip.text.vocab_size
        if getattr(tokenizer, "vocab_size", 0) > vocab:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} token ids but the model's text encoder knows "
                             f"{vocab}: this model was trained with another tokenizer (leave the tokenizer out to "
                             "use the model's own, `model.tokenizer`)")
        self.model = model
        self.tokenizer = tokenizer
        self.visual_config = visual_config or VisualPromptConfig(size=model.config.input_size)
        self.truncate = truncate
        self.warn_unknown_words = warn_unknown_words  # off where the caller reports them its own way
        self.text_cache: TextEmbeddingCache[torch.Tensor] = TextEmbeddingCache(cache_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Validated token ids (N, L); empty or (unless truncate) too-long prompts raise PromptError."""
        return torch.from_numpy(tokenize_prompts(self.tokenizer, texts, self.model.config.clip.text.context_length,
                                                 self.truncate))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, embed_dim) text embeddings, computing only those not in the cache. Words outside
        the model's vocabulary (word tokenizers only) warn once per prompt (UnknownWordsWarning)."""

        def compute(todo: list[str]) -> torch.Tensor:
            message = self.warn_unknown_words and unknown_words_warning(unknown_words(self.tokenizer, todo))
            if message:
                warnings.warn(message, UnknownWordsWarning, stacklevel=_stacklevel_of_caller())
            return self.model.encode_text(self.tokenize(todo).to(self.device))

        return torch.stack(self.text_cache.lookup(texts, compute))

    def cache_state(self) -> dict:
        """The text cache in LRU order: {"texts": [...], "embeddings": (n, embed_dim)}."""
        texts = list(self.text_cache.entries)
        embeddings = torch.stack(list(self.text_cache.entries.values())).cpu() if texts else torch.zeros(0)
        return {"texts": texts, "embeddings": embeddings}

    def load_cache_state(self, state: dict) -> None:
        self.text_cache.entries = OrderedDict(
            (t, e.to(self.device)) for t, e in zip(state["texts"], state["embeddings"])
        )

    def visual_prompt_tensor(self, prompt: VisualPrompt) -> torch.Tensor:
        """Engineered conditional image (3, S, S) of a visual prompt.

        style "authors": the support is first brought to the scale the released weights saw
        in training (their loader resized each square crop to 352 px, bilinear with
        align_corners=True, the mask nearest): shorter side = S, longer side at most 4 S.
        style "square-context": longer side at most 2 S, as before.
        """
        cfg = self.visual_config
        image = load_image(prompt.image)
        mask = torch.from_numpy(load_mask(prompt.mask, size=image.size)).float()
        x = pil_to_tensor(image)  # (3, H, W) in [0, 1]
        h, w = x.shape[1:]
        if cfg.style == "authors":
            size = support_size(h, w, cfg.size)
            if size != (h, w):
                x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=True)[0]
                mask = F.interpolate(mask[None, None], size=size, mode="nearest")[0, 0]
        elif max(h, w) > 2 * cfg.size:  # blur at about the scale the references use, not at 24 Mpx
            scale = 2 * cfg.size / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
            mask = (F.interpolate(mask[None, None], size=size, mode="bilinear", align_corners=False)[0, 0] > 0.5).float()
        x = normalize(x, self.model.config.mean, self.model.config.std).to(self.device)
        try:
            return engineer_visual_prompt(x, mask.to(self.device), cfg, self.model.config.mean, self.model.config.std)
        except ValueError as e:
            raise PromptError(str(e)) from None

    def encode_visuals(self, prompts: Sequence[VisualPrompt]) -> torch.Tensor:
        pixels = torch.stack([self.visual_prompt_tensor(p) for p in prompts])
        return self.model.encode_visual_prompt(pixels)

    def encode(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """Conditional vectors (N, embed_dim), one per prompt, in order."""
        dim = self.model.config.clip.embed_dim

        def embedding(p, i: int) -> torch.Tensor:
            if not isinstance(p, torch.Tensor) or p.shape != (dim,):
                raise PromptError(f"prompt #{i}: an embedding must be a tensor of shape ({dim},), got "
                                  f"{type(p).__name__} {tuple(p.shape)}")
            return p.to(self.device, torch.float32)

        return torch.stack(assemble_conditions(prompts, self.encode_texts, self.encode_visuals, embedding))
