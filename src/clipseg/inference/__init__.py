"""User-facing inference: the Predictor and mask utilities."""

from .predictor import Predictor, is_present, label_map

__all__ = ["Predictor", "is_present", "label_map"]
