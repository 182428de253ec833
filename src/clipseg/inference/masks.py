"""Masks from probability maps: label maps and the "not present" answer (numpy only)."""

from __future__ import annotations

import numpy as np

from ..constants import DEFAULT_THRESHOLD, PRESENCE_MIN_FRACTION  # noqa: F401 (re-exported)
from ..editing.mask import present_by_area  # noqa: F401 (re-exported: the one presence rule)


def label_map(probs: np.ndarray, none_threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """(N, H, W) probabilities -> (H, W) int32 labels, 0 = none, k = map k - 1."""
    return labels_of_best(probs.argmax(axis=0).astype(np.int32), probs.max(axis=0), none_threshold)


def labels_of_best(index: np.ndarray, best: np.ndarray, none_threshold: float) -> np.ndarray:
    """The label rule: the most likely map's `index` (H, W) + 1, or 0 where its probability
    `best` (H, W) is below none_threshold."""
    out = index + 1
    out[best < none_threshold] = 0
    return out


def is_present(prob: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
               min_fraction: float = PRESENCE_MIN_FRACTION) -> bool:
    """The "not present" answer: does at least `min_fraction` of the image pass the threshold?"""
    return present_by_area(float((prob >= threshold).mean()) if prob.size else 0.0, min_fraction)
