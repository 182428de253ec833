"""CLIP text transformer: causal mask, pooled at the EOT token (argmax of the ids)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import TextConfig
from .transformer import Transformer


class TextTransformer(nn.Module):
    """OpenAI CLIP's text tower. OpenAI keeps these parameters at the top level of
    its model; the converters in `clipseg.weights` add/remove the `text.` prefix."""

    def __init__(self, config: TextConfig, output_dim: int):
        super().__init__()
        self.config = config
        w = config.width
        self.token_embedding = nn.Embedding(config.vocab_size, w)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, w))
        self.transformer = Transformer(w, config.layers, config.heads, config.mlp_ratio)
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.empty(w, output_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=w**-0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) with EOT = the largest id of each row -> text embedding (B, output_dim).

        With a causal mask nothing after the EOT token changes its output, so the
        sequence is cut after the last EOT of the batch (77 -> ~10 positions for
        typical prompts), which gives the same result faster.
        """
        eot = ids.argmax(dim=-1)  # (B,)
        length = int(eot.max()) + 1
        ids = ids[:, :length]
        x = self.token_embedding(ids) + self.positional_embedding[:length].to(self.token_embedding.weight.dtype)
        x, _ = self.transformer(x, causal=True)
        x = self.ln_final(x[torch.arange(x.shape[0], device=x.device), eot])  # (B, W)
        return x @ self.text_projection
