"""Masks from probability maps: label maps and the "not present" answer (numpy only)."""

from __future__ import annotations

import numpy as np

# The one default threshold of masks, label maps ("none" below it) and presence, in the
# library, the command line, the HTTP service and the web page.
DEFAULT_THRESHOLD = 0.5


def label_map(probs: np.ndarray, none_threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """(N, H, W) probabilities -> (H, W) int32 labels, 0 = none, k = map k - 1."""
    best = probs.argmax(axis=0).astype(np.int32) + 1
    best[probs.max(axis=0) < none_threshold] = 0
    return best


def is_present(prob: np.ndarray, threshold: float = DEFAULT_THRESHOLD, min_fraction: float = 0.001) -> bool:
    """The "not present" answer: does at least `min_fraction` of the image pass the threshold?"""
    return bool((prob >= threshold).mean() >= min_fraction)
