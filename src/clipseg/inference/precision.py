"""Mixed precision: the one place that turns a dtype into an autocast context.

Used by inference (`clipseg segment`), decoder training and CLIP pretraining alike.
"""

from __future__ import annotations

import contextlib

import torch


def autocast_context(dtype: torch.dtype | None, device: torch.device | str) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device`, or nothing for None (full precision)."""
    device_type = torch.device(device).type
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)
