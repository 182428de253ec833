import numpy as np
import pytest
import torch

from clipseg.evaluation.metrics import (
    THRESHOLDS,
    BinaryCounts,
    MultiClassIoU,
    average_precision,
    precision_recall,
    simpson,
)


def _random_batch(rng, n=6, h=24, w=20, separation=1.0):
    targets = rng.random((n, h, w)) < rng.uniform(0.1, 0.5)
    logits = rng.normal(size=targets.shape) + separation * (2 * targets - 1)
    return (1 / (1 + np.exp(-logits))).astype(np.float32), targets


def _direct_counts(probs, targets, t):
    pred = probs > t
    return (
        np.sum(pred & targets),
        np.sum(pred & ~targets),
        np.sum(~pred & targets),
        np.sum(~pred & ~targets),
    )


def test_thresholds():
    assert len(THRESHOLDS) == 49
    assert THRESHOLDS[0] == pytest.approx(0.02) and THRESHOLDS[-1] == pytest.approx(0.98)


def test_ious_match_direct_numpy_computation():
    rng = np.random.default_rng(0)
    probs, targets = _random_batch(rng)
    acc = BinaryCounts()
    acc.update(torch.from_numpy(probs), torch.from_numpy(targets))
    curves = acc.curves()
    for k, t in enumerate(THRESHOLDS):
        tp, fp, fn, tn = _direct_counts(probs, targets, t)
        assert acc.counts[:, k].tolist() == [tp, fp, fn, tn]
        assert curves["iou_fg"][k] == pytest.approx(tp / (tp + fp + fn))
        assert curves["iou_bin"][k] == pytest.approx(0.5 * (tp / (tp + fp + fn) + tn / (tn + fp + fn)))
    r = acc.result(0.3)
    tp, fp, fn, tn = _direct_counts(probs, targets, THRESHOLDS[14])
    assert r.threshold == pytest.approx(0.3) and not r.best
    assert r.iou_fg == pytest.approx(tp / (tp + fp + fn))
    assert np.isnan(r.miou)  # no keys given


def test_numpy_and_torch_inputs_and_shapes_agree():
    rng = np.random.default_rng(1)
    probs, targets = _random_batch(rng, n=3)
    a, b, c = BinaryCounts(), BinaryCounts(), BinaryCounts()
    a.update(probs, targets)
    b.update(torch.from_numpy(probs)[:, None], torch.from_numpy(targets).float()[:, None])  # (N, 1, H, W)
    for p, t in zip(probs, targets):  # (H, W) one at a time
        c.update(p, t)
    assert torch.equal(a.counts, b.counts) and torch.equal(a.counts, c.counts)


def test_per_key_miou():
    rng = np.random.default_rng(2)
    probs, targets = _random_batch(rng, n=8)
    keys = ["cat", "dog", "cat", "cow", "dog", "cat", "cow", "cow"]
    acc = BinaryCounts()
    acc.update(probs[:5], targets[:5], key=keys[:5])
    acc.update(probs[5:], targets[5:], key=keys[5:])
    k = 20
    t = THRESHOLDS[k]
    expected = []
    for name in ("cat", "dog", "cow"):
        idx = [i for i, key in enumerate(keys) if key == name]
        tp, fp, fn, _ = _direct_counts(probs[idx], targets[idx], t)
        expected.append(tp / (tp + fp + fn))
    r = acc.result(float(t))
    assert r.num_keys == 3
    assert r.miou == pytest.approx(np.mean(expected))
    # a single key for a whole batch
    acc2 = BinaryCounts()
    acc2.update(probs, targets, key="all")
    assert acc2.result(float(t)).miou == pytest.approx(acc2.result(float(t)).iou_fg)


def test_best_threshold_selection():
    rng = np.random.default_rng(3)
    probs, targets = _random_batch(rng, n=4)
    acc = BinaryCounts()
    acc.update(probs, targets, key=list("abab"))
    best = acc.result()
    assert best.best and best.selected_by == "miou"
    assert best.miou == pytest.approx(np.max(acc.curves()["miou"]))
    by_fg = acc.result(select="iou_fg")
    assert by_fg.iou_fg == pytest.approx(np.max(acc.curves()["iou_fg"]))
    with pytest.raises(ValueError, match="not one of the 49"):
        acc.result(0.31)
    no_keys = BinaryCounts()
    no_keys.update(probs, targets)
    assert no_keys.result().selected_by == "iou_fg"


def _staircase_area(counts):
    """Sum of |dR * dP| over the closed PR curve used by average_precision."""
    precision, recall = precision_recall(counts)
    keep = ~np.isnan(precision)
    pts = sorted(zip(recall[keep], precision[keep]))
    pos, total = counts[0, 0] + counts[2, 0], counts[:, 0].sum()
    pts = [(0.0, pts[0][1])] + pts + [(1.0, pos / total)]
    r, p = np.array(pts).T
    return float(np.sum(np.diff(r) * np.abs(np.diff(p))))


@pytest.mark.parametrize("seed", range(6))
def test_ap_matches_sklearn_on_grid_quantised_predictions(seed):
    """Predictions quantised to the centres of the 50 threshold bins leave sklearn exactly the
    operating points we have (our 49 thresholds plus "everything positive"). What remains is
    how each recall step is integrated: sklearn takes the precision at the step's right end
    (a staircase), Simpson interpolates between both ends. The difference is therefore at most
    about half the staircase area sum(|dR * dP|); we allow 0.6 of it (Simpson's curvature can
    add a little beyond the trapezoid's exact half)."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    probs, targets = _random_batch(rng, n=4, h=40, w=40, separation=rng.uniform(0.2, 3))
    centres = np.concatenate([[0.01], (THRESHOLDS[:-1] + THRESHOLDS[1:]) / 2, [0.99]])
    quantised = centres[np.searchsorted(THRESHOLDS, probs)]  # bucket b -> centre of (t[b-1], t[b]]
    acc = BinaryCounts()
    acc.update(quantised, targets)
    ap = acc.result().ap
    reference = sklearn_metrics.average_precision_score(targets.ravel(), quantised.ravel())
    stair = _staircase_area(acc.counts.numpy().astype(float))
    assert abs(ap - reference) <= 0.6 * stair + 1e-9
    assert abs(ap - reference) < 0.015


def test_ap_close_to_sklearn_on_continuous_predictions():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    probs, targets = _random_batch(rng, n=4, h=40, w=40, separation=1.5)
    acc = BinaryCounts()
    acc.update(probs, targets)
    # continuous scores: 49 thresholds only sample sklearn's curve; agreement within ~0.01
    reference = sklearn_metrics.average_precision_score(targets.ravel(), probs.ravel())
    assert acc.result().ap == pytest.approx(reference, abs=0.01)


def test_perfect_predictions_give_one():
    rng = np.random.default_rng(4)
    targets = rng.random((3, 16, 16)) < 0.3
    for probs in (targets.astype(np.float32), np.where(targets, 0.9, 0.1)):
        acc = BinaryCounts()
        acc.update(probs, targets, key=["a", "b", "c"])
        for r in (acc.result(), acc.result(0.5)):
            assert (r.miou, r.iou_fg, r.iou_bin, r.ap) == (1.0, 1.0, 1.0, 1.0)


def test_empty_conventions():
    acc = BinaryCounts()
    acc.update(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), bool), key=["empty"])
    r = acc.result(0.5)
    assert r.iou_fg == 1.0 and r.miou == 1.0 and np.isnan(r.ap)  # nothing to find, nothing predicted


def test_merge_state_dict_and_add_equal_single_pass():
    rng = np.random.default_rng(5)
    probs, targets = _random_batch(rng, n=6)
    keys = ["a", "b", "c", "a", "b", "c"]
    single = BinaryCounts()
    single.update(probs, targets, key=keys)
    left, right = BinaryCounts(), BinaryCounts()
    left.update(probs[:2], targets[:2], key=keys[:2])
    right.update(probs[2:], targets[2:], key=keys[2:])
    merged = left + right
    restored = BinaryCounts.from_state_dict(left.state_dict()).merge(BinaryCounts.from_state_dict(right.state_dict()))
    for other in (merged, restored, right.sync_distributed().merge(left)):
        assert torch.equal(other.counts, single.counts)
        assert other.key_counts.keys() == single.key_counts.keys()
        for k in single.key_counts:
            assert torch.equal(other.key_counts[k], single.key_counts[k])
        assert other.result() == single.result()


def test_valid_mask_ignores_pixels():
    rng = np.random.default_rng(6)
    probs, targets = _random_batch(rng, n=2)
    valid = rng.random(probs.shape) < 0.7
    acc = BinaryCounts()
    acc.update(probs, targets, valid=valid)
    ref = BinaryCounts()
    ref.update(probs[valid][None], targets[valid][None])
    assert torch.equal(acc.counts, ref.counts)


def test_rejects_logits_and_nan():
    acc = BinaryCounts()
    with pytest.raises(ValueError, match="sigmoid"):
        acc.update(np.full((1, 2, 2), 3.0), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        acc.update(np.full((1, 2, 2), np.nan), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        acc.update(np.zeros((1, 2, 2)), np.ones((1, 2, 3)))


def test_simpson_matches_scipy_on_smooth_functions():
    integrate = pytest.importorskip("scipy.integrate")
    x = np.sort(np.concatenate([[0.0, 1.0], np.random.default_rng(0).uniform(0, 1, 19)]))  # 20 intervals
    for f in (np.sin, np.exp, lambda v: 1 - v**2):
        assert simpson(f(x), x) == pytest.approx(integrate.simpson(f(x), x=x), rel=1e-6)
    xs = np.linspace(0, 1, 11)
    assert simpson(xs**2, xs) == pytest.approx(1 / 3)


def test_average_precision_of_a_known_curve():
    # TP=5, FP=5, FN=5, TN=85 at every threshold -> one point (R .5, P .5), closed by the flat
    # extension (0, .5) and the "all foreground" point (1, base rate .1); Simpson over the two
    # equal intervals: (1/6) * (.5 + 4 * .5 + .1)
    counts = np.tile(np.array([[5], [5], [5], [85]]), (1, 49))
    assert average_precision(counts) == pytest.approx((0.5 + 4 * 0.5 + 0.1) / 6)


def test_multiclass_iou():
    rng = np.random.default_rng(8)
    target = rng.integers(0, 4, (2, 10, 10))
    target[0, 0] = 255
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 4, target.shape)) % 4
    m = MultiClassIoU(4)
    m.update(pred, target)
    keep = target != 255
    for c in range(4):
        inter = np.sum((pred == c) & (target == c) & keep)
        union = np.sum(((pred == c) | (target == c)) & keep)
        assert m.iou()[c] == pytest.approx(inter / union)
    assert m.miou([1, 2]) == pytest.approx(np.mean(m.iou()[[1, 2]]))
