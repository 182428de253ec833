"""User-facing inference: the Predictor and mask utilities (the Predictor loads torch on first use)."""

from __future__ import annotations

from ..io.lazy import lazy_getattr
from .masks import is_present, label_map

__getattr__ = lazy_getattr(__name__, {"Predictor": "predictor"})

__all__ = ["Predictor", "is_present", "label_map"]
