"""Bootstrap intervals of the paper's metrics (clipseg.evaluation.bootstrap)."""

from __future__ import annotations

import pytest
import torch

from clipseg.evaluation.bootstrap import SampleCounts, paired_difference
from clipseg.evaluation.metrics import BinaryCounts


def _samples(n: int, noise: float, seed: int = 0, classes: int = 4):
    """n random 16x16 targets, predictions = target blurred by noise, and class keys."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.rand(n, 16, 16, generator=g) > 0.6
    probs = (targets.float() * 0.7 + noise * torch.rand(n, 16, 16, generator=g)).clamp(0, 1)
    keys = [f"c{i % classes}" for i in range(n)]
    return probs, targets, keys


@pytest.mark.parametrize("per_sample", [False, True])
def test_point_estimate_equals_binary_counts(per_sample):
    probs, targets, keys = _samples(40, 0.6)
    if per_sample:
        keys = [f"s{i}" for i in range(len(keys))]
    sc = SampleCounts()
    sc.add(probs[:25], targets[:25], keys[:25])
    sc.add(probs[25:], targets[25:], keys[25:])
    ref = BinaryCounts()
    ref.update(probs, targets, key=keys)
    want = ref.result(select="miou")
    got = sc.score()
    assert got["t"] == want.threshold
    assert got["miou"] == pytest.approx(want.miou) and got["iou_fg"] == pytest.approx(want.iou_fg)
    assert got["ap"] == pytest.approx(want.ap)


def test_interval_holds_the_estimate_and_narrows_with_more_samples():
    widths = []
    for n in (40, 400):
        probs, targets, keys = _samples(n, 0.8, seed=n)
        sc = SampleCounts()
        sc.add(probs, targets, keys)
        ci = sc.bootstrap(n=200, seed=1)
        point = sc.score()
        for m in ("miou", "ap"):
            lo, hi = ci[m]
            assert lo <= point[m] + 0.02 and point[m] - 0.02 <= hi  # selection optimism: a little slack
        widths.append(ci["miou"][1] - ci["miou"][0])
    assert widths[1] < 0.6 * widths[0]  # ~ 1/sqrt(10)
    assert sc.bootstrap(n=50, seed=3) == sc.bootstrap(n=50, seed=3)  # seeded


def test_paired_difference():
    probs, targets, keys = _samples(120, 0.5)
    good, bad, same = SampleCounts(), SampleCounts(), SampleCounts()
    good.add(probs, targets, keys)
    same.add(probs, targets, keys)
    noisy = (probs + 0.6 * torch.rand(probs.shape, generator=torch.Generator().manual_seed(9))).clamp(0, 1)
    bad.add(noisy, targets, keys)
    d = paired_difference(good, same, n=100)
    assert d["diff"] == 0 and d["lo"] == 0 and d["hi"] == 0
    d = paired_difference(good, bad, n=100)
    assert d["diff"] > 0 and 0 < d["lo"] <= d["diff"] <= d["hi"]
    other = SampleCounts()
    other.add(probs[:10], targets[:10], keys[:10])
    with pytest.raises(ValueError, match="same samples"):
        paired_difference(good, other)


def test_negatives_per_sample():
    from clipseg.evaluation.metrics import negative_rates

    sc = SampleCounts()
    empty = torch.zeros(3, 8, 8, dtype=torch.bool)
    probs = torch.zeros(3, 8, 8)
    probs[1, :4] = 0.9  # half the pixels foreground
    sc.add(probs, empty, ["a", "b", "c"])
    fp_rate, rejected = negative_rates(sc.array(), 24)  # t = 0.5
    assert fp_rate == pytest.approx(32 / 192) and rejected.tolist() == [True, False, True]
    neg = sc.negatives(0.5, n=50)
    assert neg["fp_rate"] == pytest.approx(32 / 192) and neg["rejected"] == pytest.approx(2 / 3) and neg["n"] == 3
    lo, hi = neg["ci"]["rejected"]
    assert 0 <= lo <= 2 / 3 <= hi <= 1


def test_rejected_negatives_are_the_not_present_answers():
    """The evaluation's "negatives rejected" counts exactly the maps `is_present` calls absent
    (one rule: PRESENCE_MIN_FRACTION), on both sides of the boundary."""
    from clipseg.inference.masks import PRESENCE_MIN_FRACTION, is_present
    from clipseg.evaluation.metrics import negative_rates

    side = 50  # 2500 pixels: 1 % = 25
    edge = round(PRESENCE_MIN_FRACTION * side * side)
    probs = torch.zeros(6, side, side)
    for k, n in enumerate((0, 1, edge - 1, edge, edge + 1, 400)):
        probs[k].view(-1)[:n] = 0.9
    sc = SampleCounts()
    sc.add(probs, torch.zeros(6, side, side, dtype=torch.bool), [str(k) for k in range(6)])
    _, rejected = negative_rates(sc.array(), 24)  # t = 0.5
    answers = [not is_present(p.numpy(), 0.5) for p in probs]
    assert rejected.tolist() == answers == [True, True, True, False, False, False]
