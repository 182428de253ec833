"""Confidence intervals for the paper's metrics by resampling evaluation samples.

The metrics of `metrics.BinaryCounts` are functions of per-sample pixel counts at the 49
thresholds. `SampleCounts` keeps those counts per sample (N x 4 x 49 integers, a few
hundred bytes per sample) together with each sample's key (its class, or its own id for
per-sample mIoU), so that the whole evaluation can be recomputed on resampled sets:

    sc = SampleCounts.from_batches(...)        # or .add(probs, targets, keys)
    point = sc.score()                          # {"t", "miou", "iou_fg", "iou_bin", "ap"}
    ci = sc.bootstrap(n=1000, seed=0)           # {"miou": (lo, hi), ...}, 95 % percentile intervals
    neg = sc.negatives(threshold=0.3)           # on empty targets: fp_rate, rejected share and its interval
    diff = paired_difference(a, b)              # CI of a - b on the same resampled samples

Every bootstrap replicate draws N samples with replacement and redoes what the point
estimate does, threshold selection included (best of the 49 thresholds by `select`), so
the interval covers the optimism of picking t on the evaluation set too. Two models
scored on the same samples are compared with the same draws (`paired_difference`), which
is the sharper test of "A beats B" than two overlapping intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..inference.masks import PRESENCE_MIN_FRACTION
from .metrics import _counts_per_sample, _threshold_index, average_precision, iou_bin, iou_fg, negative_rates

METRICS: tuple[str, ...] = ("miou", "iou_fg", "iou_bin", "ap")


@dataclass
class SampleCounts:
    """Per-sample TP/FP/FN/TN counts at the 49 thresholds, and each sample's key."""

    counts: list[np.ndarray] = field(default_factory=list)  # each (n, 4, 49) int64
    keys: list[str] = field(default_factory=list)

    def add(self, probs: torch.Tensor, targets: torch.Tensor, keys: Sequence[str],
            valid: torch.Tensor | None = None) -> None:
        """Add a batch: probs (N, H, W) in [0, 1], targets (N, H, W) binary, one key per sample."""
        n = probs.shape[0]
        if len(keys) != n:
            raise ValueError(f"got {len(keys)} keys for a batch of {n}")
        p = probs.reshape(n, -1)
        t = targets.reshape(n, -1)
        t = t if t.dtype == torch.bool else t > 0.5
        v = None if valid is None else valid.reshape(n, -1).bool()
        self.counts.append(_counts_per_sample(p, t, v).numpy())
        self.keys.extend(str(k) for k in keys)

    def __len__(self) -> int:
        return len(self.keys)

    def array(self) -> np.ndarray:
        """All counts, (N, 4, 49) int64."""
        return np.concatenate(self.counts) if self.counts else np.zeros((0, 4, 49), np.int64)

    def score(self, select: str = "miou", threshold_index: int | None = None) -> dict[str, float]:
        """The metrics at the best threshold by `select` (or at `threshold_index`)."""
        keys, key_index = np.unique(np.asarray(self.keys), return_inverse=True)
        return _score(self.array(), key_index, len(keys), select, threshold_index)

    def bootstrap(self, n: int = 1000, seed: int = 0, select: str = "miou",
                  level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile intervals of every metric over `n` resamples of the samples."""
        draws = _replicates(self, n, seed, select)
        return {m: _interval(draws[m], level) for m in METRICS}

    def negatives(self, threshold: float, n: int = 1000, seed: int = 0, max_fraction: float = PRESENCE_MIN_FRACTION,
                  level: float = 0.95) -> dict[str, Any]:
        """On empty targets, at `threshold` (one of the 49): the share of pixels predicted
        foreground, the share of samples "rejected" (under `max_fraction` of their pixels) and
        its percentile interval over `n` resamples."""
        fp_rate, rejected = negative_rates(self.array(), _threshold_index(threshold), max_fraction)
        draws = np.random.default_rng(seed).integers(0, len(rejected), size=(n, len(rejected)))
        return {"t": float(threshold), "fp_rate": fp_rate, "rejected": float(rejected.mean()), "n": len(self),
                "ci": {"rejected": list(_interval(rejected[draws].mean(1), level))}}


def _score(counts: np.ndarray, key_index: np.ndarray, n_keys: int, select: str,
           threshold_index: int | None = None) -> dict[str, float]:
    """Metrics of the samples `counts` (n, 4, 49) whose keys are `key_index` (n,) in [0, n_keys).
    mIoU averages over the keys that occur (a key drawn with no sample does not count)."""
    from .metrics import THRESHOLDS

    present, inverse = np.unique(key_index, return_inverse=True)
    per_key = np.zeros((len(present), *counts.shape[1:]), np.int64)
    np.add.at(per_key, inverse, counts)
    total = counts.sum(0)
    curves = {"miou": iou_fg(per_key).mean(0), "iou_fg": iou_fg(total), "iou_bin": iou_bin(total)}
    i = int(np.argmax(curves[select])) if threshold_index is None else threshold_index
    return {"t": float(THRESHOLDS[i]), "miou": float(curves["miou"][i]), "iou_fg": float(curves["iou_fg"][i]),
            "iou_bin": float(curves["iou_bin"][i]), "ap": average_precision(total)}


def _replicates(sc: SampleCounts, n: int, seed: int, select: str,
                draws: np.ndarray | None = None) -> dict[str, np.ndarray]:
    counts = sc.array()
    keys, key_index = np.unique(np.asarray(sc.keys), return_inverse=True)
    if draws is None:
        draws = np.random.default_rng(seed).integers(0, len(counts), size=(n, len(counts)))
    per_sample = len(keys) == len(counts)  # each sample its own key: a sample drawn twice counts twice
    out = {m: np.empty(len(draws)) for m in METRICS}
    for r, rows in enumerate(draws):
        s = _score(counts[rows], np.arange(len(rows)) if per_sample else key_index[rows], len(keys), select)
        for m in METRICS:
            out[m][r] = s[m]
    return out


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_difference(a: SampleCounts, b: SampleCounts, n: int = 1000, seed: int = 0, select: str = "miou",
                      metric: str = "miou", level: float = 0.95) -> dict[str, float]:
    """Point estimate and interval of metric(a) - metric(b) for two models scored on the same
    samples in the same order, with the same resampled rows for both."""
    if a.keys != b.keys:
        raise ValueError("paired_difference needs both models scored on the same samples in the same order")
    draws = np.random.default_rng(seed).integers(0, len(a), size=(n, len(a)))
    da = _replicates(a, n, seed, select, draws)[metric]
    db = _replicates(b, n, seed, select, draws)[metric]
    lo, hi = _interval(da - db, level)
    return {"diff": a.score(select)[metric] - b.score(select)[metric], "lo": lo, "hi": hi}
