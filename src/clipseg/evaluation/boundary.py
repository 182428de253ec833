"""Boundary F-score (Perazzi et al., DAVIS 2016; Csurka et al., BMVC 2013): how well a mask's
edge lies on the true edge, within a tolerance band, at the image's full resolution."""

from __future__ import annotations

import numpy as np

from ..editing.morphology import distance_to
from ..io.arrays import mask_outline


def boundary_f(pred: np.ndarray, target: np.ndarray, tolerance: float) -> float:
    """F-score of the boundary pixels of `pred` against those of `target` ((H, W) bool): a
    boundary pixel counts when the other boundary lies within `tolerance` px of it. 1 when
    both masks are empty, 0 when only one is."""
    pb, tb = mask_outline(np.asarray(pred, bool)), mask_outline(np.asarray(target, bool))
    if not pb.any() and not tb.any():
        return 1.0
    if not pb.any() or not tb.any():
        return 0.0
    precision = float((distance_to(tb)[pb] <= tolerance).mean())
    recall = float((distance_to(pb)[tb] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def boundary_tolerance(height: int, width: int, fraction: float = 0.0075) -> float:
    """The tolerance band scaled with the image: `fraction` of its diagonal (DAVIS's choice), at least 1 px."""
    return max(1.0, fraction * float(np.hypot(height, width)))
