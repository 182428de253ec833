"""The paper's segmentation metrics (Sec. 5, appendix "Average Precision Computation").

Binary prediction maps are scored at 49 fixed thresholds t in linspace(0, 1, 51)[1:-1]
(0.02, 0.04, ..., 0.98): a pixel is predicted foreground at t when prob > t. True/false
positives/negatives are summed per threshold over all pixels seen, globally and per key
(class name, or sample id for PhraseCut), so nothing per pixel is kept in memory.

- IoU_FG = TP / (TP + FP + FN) over the summed counts.
- IoU_BIN = (IoU_FG + IoU_BG) / 2, IoU_BG = TN / (TN + FN + FP).
- mIoU = mean over keys of each key's IoU_FG (classes; PhraseCut: samples).
- AP = area under the precision-recall curve built from the summed counts, by Simpson's
  rule (see `average_precision`).

Empty-denominator conventions: an IoU whose union is empty (nothing to find and nothing
predicted) is 1.0; a threshold at which nothing is predicted (TP + FP = 0) has no
precision and is left out of the curve; AP is NaN when the targets hold no foreground at
all; mIoU is NaN when no keys were given.

`MultiClassIoU` is the confusion-matrix mIoU of the generalized zero-shot benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..inference.masks import PRESENCE_MIN_FRACTION

THRESHOLDS = np.linspace(0, 1, 51)[1:-1]  # (49,) float64: 0.02 ... 0.98
_NUM_BINS = len(THRESHOLDS) + 1  # bucket b holds probs in (t[b-1], t[b]]
TP, FP, FN, TN = 0, 1, 2, 3  # rows of a (4, 49) count table

ArrayLike = torch.Tensor | np.ndarray


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def _safe_ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den elementwise, `empty` where den == 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_fg(counts: np.ndarray) -> np.ndarray:
    """(..., 4, T) counts -> (..., T) foreground IoU; 1.0 where the union is empty."""
    return _safe_ratio(counts[..., TP, :], counts[..., TP, :] + counts[..., FP, :] + counts[..., FN, :], 1.0)


def iou_bin(counts: np.ndarray) -> np.ndarray:
    """(..., 4, T) counts -> (..., T) mean of foreground and background IoU."""
    bg = _safe_ratio(counts[..., TN, :], counts[..., TN, :] + counts[..., FP, :] + counts[..., FN, :], 1.0)
    return 0.5 * (iou_fg(counts) + bg)


def simpson(y: np.ndarray, x: np.ndarray) -> float:
    """Integral of samples y(x) over strictly increasing x by composite Simpson's rule.

    Non-uniform spacing uses the three-point formula for uneven panels (as scipy's
    `simpson`); an odd number of intervals ends with one trapezoid. Each panel's estimate
    is clamped to [min(y), max(y)] times its width: with uneven spacing the fitted parabola
    can overshoot badly, and an area under a curve bounded by its samples cannot leave that
    range.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    h = np.diff(x)
    if (h <= 0).any():
        raise ValueError("simpson needs strictly increasing x")
    total = 0.0
    n_pairs = len(h) // 2
    for i in range(n_pairs):
        h0, h1 = h[2 * i], h[2 * i + 1]
        y0, y1, y2 = y[2 * i : 2 * i + 3]
        width = h0 + h1
        area = width / 6.0 * ((2 - h1 / h0) * y0 + width * width / (h0 * h1) * y1 + (2 - h0 / h1) * y2)
        lo, hi = min(y0, y1, y2), max(y0, y1, y2)
        total += float(np.clip(area, lo * width, hi * width))
    if len(h) % 2:
        total += 0.5 * h[-1] * (y[-2] + y[-1])
    return total


def precision_recall(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, T) counts -> precision (T,) and recall (T,); NaN where undefined."""
    tp, fp, fn = (counts[i].astype(np.float64) for i in (TP, FP, FN))
    return _safe_ratio(tp, tp + fp, np.nan), _safe_ratio(tp, tp + fn, np.nan)


def average_precision(counts: np.ndarray) -> float:
    """Pixel-level AP from (4, T) summed counts: the area under precision as a function of recall.

    What is integrated, exactly:
    1. One point (recall_t, precision_t) per threshold t at which something is predicted
       (TP + FP > 0); precision = TP / (TP + FP), recall = TP / (TP + FN).
    2. Points are sorted by recall; where several thresholds share a recall, the highest
       precision is kept (the highest such threshold, with the fewest false positives; the
       step sum of sklearn's `average_precision_score` uses that point too).
    3. The curve is closed at both ends: if the lowest recall is above 0, the curve is
       extended flat to recall 0 with that point's precision (sklearn's first step does
       the same); if the highest recall is below 1, the point (1, P / (P + N)) is added,
       which is the exact operating point "everything is foreground" (threshold 0).
    4. AP = Simpson integral of precision over recall on [0, 1] (`simpson`).
    So AP lies in [0, 1] and is 1 for perfect predictions. NaN if no target pixel is foreground.

    The authors' code integrated with scipy's `simps` only over the recall range the 49
    points cover, with +1 in the precision/recall denominators; step 3 and the exact ratios
    make the value a proper area that matches sklearn on grid-quantised scores up to the
    step-versus-interpolation difference (about half of sum |dR * dP| over the curve).
    """
    counts = np.asarray(counts, dtype=np.float64)
    positives = counts[TP, 0] + counts[FN, 0]
    negatives = counts[FP, 0] + counts[TN, 0]
    if positives <= 0:
        return float("nan")
    precision, recall = precision_recall(counts)
    keep = ~np.isnan(precision)
    best: dict[float, float] = {}
    for r, p in zip(recall[keep].tolist(), precision[keep].tolist()):
        best[r] = max(p, best.get(r, 0.0))
    if not best:  # nothing predicted at any threshold: the curve is the "all foreground" point
        return positives / (positives + negatives)
    rs = sorted(best)
    ps = [best[r] for r in rs]
    if rs[0] > 0:
        rs, ps = [0.0] + rs, [ps[0]] + ps
    if rs[-1] < 1:
        rs, ps = rs + [1.0], ps + [positives / (positives + negatives)]
    return simpson(np.array(ps), np.array(rs))


@dataclass(frozen=True)
class MetricResult:
    """Metrics at one threshold. `best` tells whether `threshold` was chosen as the best one
    on the metric named in `selected_by` (otherwise it was given)."""

    threshold: float
    best: bool
    selected_by: str
    miou: float
    iou_fg: float
    iou_bin: float
    ap: float
    num_keys: int

    def as_dict(self) -> dict:
        return asdict(self)


def _threshold_index(threshold: float) -> int:
    hits = np.flatnonzero(np.isclose(THRESHOLDS, threshold, rtol=0.0, atol=1e-6))
    if len(hits) == 0:
        raise ValueError(f"threshold {threshold} is not one of the 49 fixed thresholds 0.02, 0.04, ..., 0.98")
    return int(hits[0])


def _counts_per_sample(
    probs: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None
) -> torch.Tensor:
    """(N, P) probabilities, (N, P) bool targets, optional (N, P) bool valid -> (N, 4, 49) int64.

    Each probability is bucketed once into the threshold bins; a cumulative sum over the
    bins from the top gives, for every threshold, how many pixels lie above it.
    """
    n = probs.shape[0]
    thresholds = torch.as_tensor(THRESHOLDS, dtype=torch.float64, device=probs.device)
    bucket = torch.bucketize(probs.double(), thresholds)  # (N, P) in [0, 49]: #thresholds < p
    sample = torch.arange(n, device=probs.device)[:, None]
    index = (sample * 2 + targets.long()) * _NUM_BINS + bucket  # (N, P)
    if valid is not None:
        index = torch.where(valid, index, torch.full_like(index, n * 2 * _NUM_BINS))  # ignored -> spill bin
    hist = torch.bincount(index.flatten(), minlength=n * 2 * _NUM_BINS + 1)[: n * 2 * _NUM_BINS]
    hist = hist.view(n, 2, _NUM_BINS)  # [:, 0] background pixels, [:, 1] foreground pixels
    above = hist.flip(-1).cumsum(-1).flip(-1)[..., 1:]  # (N, 2, 49): pixels with prob > t_k
    total = hist.sum(-1, keepdim=True)  # (N, 2, 1)
    tp, fp = above[:, 1], above[:, 0]
    fn, tn = total[:, 1] - tp, total[:, 0] - fp
    return torch.stack([tp, fp, fn, tn], dim=1).cpu()  # (N, 4, 49)


class BinaryCounts:
    """Accumulates TP/FP/FN/TN at the 49 thresholds, summed globally and per key.

    acc = BinaryCounts()
    acc.update(probs, targets, key=batch["class_name"])   # probs (N,H,W) in [0, 1]
    acc.result(0.3)        # metrics at t = 0.3
    acc.result()           # at the best threshold (by mIoU if keys were given, else IoU_FG)

    Distributed evaluation: `counts` is a plain (4, 49) int64 tensor that can be
    all-reduced directly; for the per-key tables use `sync_distributed()` (or exchange
    `state_dict()`s yourself and `merge` them).
    """

    def __init__(self) -> None:
        self.counts = torch.zeros(4, len(THRESHOLDS), dtype=torch.int64)  # rows TP, FP, FN, TN
        self.key_counts: dict[Hashable, torch.Tensor] = {}  # key -> (4, 49) int64

    # --- accumulation -------------------------------------------------------------------
    def update(
        self,
        probs: ArrayLike,
        targets: ArrayLike,
        key: Hashable | Sequence[Hashable] | None = None,
        valid: ArrayLike | None = None,
    ) -> None:
        """Add a batch. probs: (N, ...) probabilities in [0, 1] (apply sigmoid to logits
        first); targets: same shape, binary (bool, or > 0.5); (H, W) is one sample.
        key: None (global counts only), one key for the whole batch, or a list of N keys.
        valid: optional bool of the same shape; False pixels are ignored.
        """
        p, t = _as_tensor(probs), _as_tensor(targets)
        if p.shape != t.shape:
            raise ValueError(f"probs {tuple(p.shape)} and targets {tuple(t.shape)} must have the same shape")
        if p.dim() < 2:
            raise ValueError(f"expected maps of shape (N, H, W) or (H, W), got {tuple(p.shape)}")
        if p.dim() == 2:
            p, t = p[None], t[None]
        n = p.shape[0]
        p = p.reshape(n, -1)
        if not torch.is_floating_point(p):
            p = p.double()
        if torch.isnan(p).any():
            raise ValueError("probs contain NaN")
        if p.numel() and (p.min() < 0 or p.max() > 1):
            raise ValueError(
                f"probs must lie in [0, 1] (got [{float(p.min()):.3g}, {float(p.max()):.3g}]); apply sigmoid to logits"
            )
        t = t.reshape(n, -1).to(p.device)
        t = t if t.dtype == torch.bool else t > 0.5
        v = None
        if valid is not None:
            v = _as_tensor(valid)
            if v.numel() != p.numel():
                raise ValueError(f"valid {tuple(v.shape)} must have the shape of probs {tuple(probs.shape)}")
            v = v.reshape(n, -1).to(p.device).bool()

        per_sample = _counts_per_sample(p, t, v)  # (N, 4, 49)
        self.counts += per_sample.sum(0)
        if key is None:
            return
        if isinstance(key, (list, tuple)):
            if len(key) != n:
                raise ValueError(f"got {len(key)} keys for a batch of {n}")
            for k, c in zip(key, per_sample):
                self._add_key(k, c)
        else:
            self._add_key(key, per_sample.sum(0))

    def _add_key(self, key: Hashable, counts: torch.Tensor) -> None:
        if key in self.key_counts:
            self.key_counts[key] += counts
        else:
            self.key_counts[key] = counts.clone()

    # --- combining (distributed evaluation) ---------------------------------------------
    def merge(self, other: "BinaryCounts") -> "BinaryCounts":
        """Add another accumulator's counts into this one (in place); returns self."""
        self.counts += other.counts
        for k, c in other.key_counts.items():
            self._add_key(k, c)
        return self

    def __add__(self, other: "BinaryCounts") -> "BinaryCounts":
        return BinaryCounts().merge(self).merge(other)

    def state_dict(self) -> dict:
        """{"thresholds": (49,), "counts": (4, 49), "keys": list, "key_counts": (K, 4, 49)}."""
        keys = list(self.key_counts)
        if keys:
            key_counts = torch.stack([self.key_counts[k] for k in keys])  # (K, 4, 49)
        else:
            key_counts = torch.zeros(0, 4, len(THRESHOLDS), dtype=torch.int64)
        return {
            "thresholds": torch.as_tensor(THRESHOLDS),
            "counts": self.counts.clone(),
            "keys": keys,
            "key_counts": key_counts,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "BinaryCounts":
        """Inverse of `state_dict` (also accepts just {"counts": ...})."""
        if "thresholds" in state and not np.allclose(np.asarray(state["thresholds"]), THRESHOLDS):
            raise ValueError("state was computed with other thresholds")
        acc = cls()
        acc.counts = torch.as_tensor(state["counts"], dtype=torch.int64).clone().cpu()
        for k, c in zip(state.get("keys", []), state.get("key_counts", [])):
            acc._add_key(k, torch.as_tensor(c, dtype=torch.int64).cpu())
        return acc

    def sync_distributed(self, group=None) -> "BinaryCounts":
        """Sum all ranks' counts (global and per key) with torch.distributed; returns a new
        accumulator holding the total on every rank (a copy of self if not distributed)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return BinaryCounts().merge(self)
        states: list = [None] * dist.get_world_size(group)
        dist.all_gather_object(states, self.state_dict(), group=group)
        total = BinaryCounts()
        for state in states:
            total.merge(BinaryCounts.from_state_dict(state))
        return total

    # --- results ------------------------------------------------------------------------
    def curves(self) -> dict[str, np.ndarray]:
        """Per-threshold arrays (49,): thresholds, iou_fg, iou_bin, miou, precision, recall."""
        counts = self.counts.numpy()
        if self.key_counts:
            miou = iou_fg(torch.stack(list(self.key_counts.values())).numpy()).mean(0)  # (49,)
        else:
            miou = np.full(len(THRESHOLDS), np.nan)
        precision, recall = precision_recall(counts)
        return {
            "thresholds": THRESHOLDS.copy(),
            "iou_fg": iou_fg(counts),
            "iou_bin": iou_bin(counts),
            "miou": miou,
            "precision": precision,
            "recall": recall,
        }

    def result(self, threshold: float | None = None, select: str | None = None) -> MetricResult:
        """Metrics at `threshold` (one of THRESHOLDS), or at the best threshold on the metric
        `select` ("miou", "iou_fg" or "iou_bin"; default: "miou" when keys were given, else
        "iou_fg"); ties go to the lowest threshold. AP does not depend on the threshold."""
        curves = self.curves()
        select = select or ("miou" if self.key_counts else "iou_fg")
        if select not in ("miou", "iou_fg", "iou_bin"):
            raise ValueError(f"select must be 'miou', 'iou_fg' or 'iou_bin', not {select!r}")
        if select == "miou" and not self.key_counts:
            raise ValueError("cannot select the threshold by mIoU: no keys were given to update()")
        if threshold is None:
            index = int(np.argmax(curves[select]))
        else:
            index = _threshold_index(threshold)
        return MetricResult(
            threshold=float(THRESHOLDS[index]),
            best=threshold is None,
            selected_by=select if threshold is None else "",
            miou=float(curves["miou"][index]),
            iou_fg=float(curves["iou_fg"][index]),
            iou_bin=float(curves["iou_bin"][index]),
            ap=average_precision(self.counts.numpy()),
            num_keys=len(self.key_counts),
        )


class MultiClassIoU:
    """Confusion-matrix IoU for label maps (generalized zero-shot segmentation, Tab. 4).

    update(pred, target): integer label maps of the same shape; target pixels equal to
    `ignore_index` are skipped. iou() gives per-class IoU (NaN for a class absent from both
    prediction and target); miou(classes) averages over the given class indices, e.g. the
    seen or the unseen classes.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # [target, pred]

    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        p, t = _as_tensor(pred).long().flatten(), _as_tensor(target).long().flatten().to(_as_tensor(pred).device)
        if p.shape != t.shape:
            raise ValueError("pred and target must have the same number of pixels")
        keep = t != self.ignore_index
        p, t = p[keep], t[keep]
        if p.numel() and (p.min() < 0 or p.max() >= self.num_classes or t.min() < 0 or t.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}) apart from ignore_index")
        flat = torch.bincount(t * self.num_classes + p, minlength=self.num_classes**2)
        self.matrix += flat.view(self.num_classes, self.num_classes).cpu()

    def merge(self, other: "MultiClassIoU") -> "MultiClassIoU":
        self.matrix += other.matrix
        return self

    def iou(self) -> np.ndarray:
        m = self.matrix.numpy().astype(np.float64)
        inter = np.diag(m)
        union = m.sum(0) + m.sum(1) - inter
        return _safe_ratio(inter, union, np.nan)

    def miou(self, classes: Sequence[int] | None = None) -> float:
        ious = self.iou()
        if classes is not None:
            ious = ious[list(classes)]
        return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def negative_rates(per_sample: np.ndarray, index: int, max_fraction: float = PRESENCE_MIN_FRACTION) -> tuple[float, np.ndarray]:
    """On negatives (empty targets), from per-sample counts (N, 4, 49) at threshold `index`: the
    share of all pixels predicted foreground, and per sample whether it is "rejected" (under
    `max_fraction` of its pixels predicted foreground)."""
    c = np.asarray(per_sample)[:, :, index]
    fp_rate = float(c[:, FP].sum() / max(1, c[:, FP].sum() + c[:, TN].sum()))
    return fp_rate, foreground_fraction(per_sample, index) < max_fraction


def foreground_fraction(per_sample: np.ndarray, index: int) -> np.ndarray:
    """(N,) per sample, the share of its counted pixels predicted foreground at threshold
    `index`, from per-sample counts (N, 4, 49): what the "present" rule compares."""
    c = np.asarray(per_sample)[:, :, index]
    return (c[:, TP] + c[:, FP]) / np.maximum(1, c.sum(axis=1))


def negative_scores(counts: BinaryCounts, threshold: float, max_fraction: float = PRESENCE_MIN_FRACTION) -> dict[str, float]:
    """On a set of negatives (empty targets): the share of pixels predicted foreground at
    `threshold` and the share of samples "rejected" (under `max_fraction` of their pixels)."""
    i = int(np.argmin(np.abs(THRESHOLDS - threshold)))
    fp_rate = float(counts.counts[FP, i] / max(1, counts.counts[FP, i] + counts.counts[TN, i]))
    per = [k.numpy() for k in counts.key_counts.values()]
    rejected = float(negative_rates(np.stack(per), i, max_fraction)[1].mean()) if per else math.nan
    return {"t": float(THRESHOLDS[i]), "fp_rate": fp_rate, "rejected": rejected}
