"""Masks from probability maps: label maps and the "not present" answer (numpy only)."""

from __future__ import annotations

import numpy as np

# The one default threshold of masks, label maps ("none" below it) and presence, in the
# library, the command line, the HTTP service and the web page.
DEFAULT_THRESHOLD = 0.5

# The one definition of "present": at least this share of the image's pixels passes the
# threshold. The library, the command line, the HTTP service, the web page and the
# evaluation's "negatives rejected" (an absent thing's map under it) all use it, so the
# rejection rate in the tables is the rate of the answer users get. One percent of a
# 352 x 352 input is about five of its 16 px patches, the smallest blob the model resolves.
PRESENCE_MIN_FRACTION = 0.01


def label_map(probs: np.ndarray, none_threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """(N, H, W) probabilities -> (H, W) int32 labels, 0 = none, k = map k - 1."""
    best = probs.argmax(axis=0).astype(np.int32) + 1
    best[probs.max(axis=0) < none_threshold] = 0
    return best


def is_present(prob: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
               min_fraction: float = PRESENCE_MIN_FRACTION) -> bool:
    """The "not present" answer: does at least `min_fraction` of the image pass the threshold?"""
    return present_by_area(float((prob >= threshold).mean()) if prob.size else 0.0, min_fraction)


def present_by_area(area_fraction: float, min_fraction: float = PRESENCE_MIN_FRACTION) -> bool:
    """`is_present` from the share of pixels in the mask (what the JSON outputs carry)."""
    return bool(area_fraction >= min_fraction)
