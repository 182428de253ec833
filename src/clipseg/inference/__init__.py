"""User-facing inference: the Predictor and mask utilities (the Predictor loads torch on first use)."""

from __future__ import annotations

from .masks import is_present, label_map


def __getattr__(name: str):
    if name == "Predictor":
        from .predictor import Predictor

        return Predictor
    raise AttributeError(name)


__all__ = ["Predictor", "is_present", "label_map"]
