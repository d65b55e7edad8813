"""Count-based metrics equal scoring_lab.metrics, and Paired resamples responses within strata."""
import numpy as np
import pytest

from scoring_lab import metrics
from scoring_lab import paired_metrics as P


def _multilabel(seed, n=60, L=4, flip=0.3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (n, L))
    p = np.where(rng.random((n, L)) < flip, 1 - y, y)
    return y, p


@pytest.mark.parametrize("seed", range(6))
def test_multilabel_count_metrics_equal_the_library_metrics(seed):
    y, p = _multilabel(seed)
    if seed == 5:                      # degenerate labels: one constant in both, one all-zero
        y[:, 0] = p[:, 0] = 1
        y[:, 1] = p[:, 1] = 0
    report = metrics.multilabel_report(y, p)
    for name, metric in P.MULTILABEL.items():
        assert metric(y, p) == pytest.approx(report[name], abs=1e-12), name


@pytest.mark.parametrize("k, seed", [(2, 0), (3, 1), (4, 2), (5, 3)])
def test_multiclass_count_metrics_equal_the_library_metrics(k, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, 80)
    p = np.where(rng.random(80) < 0.4, rng.integers(0, k, 80), y)
    report = metrics.multiclass_report(y, p, n_classes=k)
    assert P.ACCURACY(y, p) == pytest.approx(report["accuracy"])
    assert P.multiclass_macro_f1(k)(y, p) == pytest.approx(report["macro_f1"])
    assert P.quadratic_kappa(k)(y, p) == pytest.approx(report["qwk"])
    assert P.quadratic_kappa(k)(y, y) == 1.0 and P.quadratic_kappa(k)(np.zeros(5), np.zeros(5)) == 1.0


def test_out_of_range_classes_are_refused():
    with pytest.raises(ValueError, match="0..2"):
        P.quadratic_kappa(3)(np.array([0, 3]), np.array([0, 1]))


def test_paired_combines_strata_and_pools_seeds():
    y1, a1 = _multilabel(0)
    _, b1 = _multilabel(1)
    y2, a2 = _multilabel(2, n=30, L=2)
    _, b2 = _multilabel(3, n=30, L=2)
    mean = P.pair(P.MICRO_F1, {"t1": (y1, a1, b1), "t2": (y2, a2, b2)})
    va, vb = mean.values()
    assert va == pytest.approx((metrics.micro_f1(y1, a1) + metrics.micro_f1(y2, a2)) / 2)
    weighted = P.pair(P.MICRO_F1, {"t1": (y1, a1, b1), "t2": (y2, a2, b2)}, combine="weighted")
    assert weighted.values()[1] == pytest.approx((60 * metrics.micro_f1(y1, b1) + 30 * metrics.micro_f1(y2, b2)) / 90)
    assert mean.n == 90 and mean.strata == ("t1", "t2")
    seeds = P.pair(P.ACCURACY, (y1[:, 0], [a1[:, 0], a1[:, 1]], b1[:, 0]))
    assert seeds.seeds == (2, 1)
    assert seeds.values()[0] == pytest.approx((np.mean(a1[:, 0] == y1[:, 0]) + np.mean(a1[:, 1] == y1[:, 0])) / 2)
    d1 = mean.resampled_differences(300, seed=4)
    assert d1.shape == (300,) and np.array_equal(d1, mean.resampled_differences(300, seed=4))
    assert not np.array_equal(d1, mean.resampled_differences(300, seed=5))


def test_paired_refuses_unpaired_or_uneven_input():
    y, a = _multilabel(0)
    with pytest.raises(ValueError, match="same responses"):
        P.pair(P.MICRO_F1, (y, a, a[:10]))
    with pytest.raises(ValueError, match="same number of seeds"):
        P.pair(P.ACCURACY, {"x": (y[:, 0], [a[:, 0]], a[:, 1]), "z": (y[:, 0], [a[:, 0], a[:, 1]], a[:, 1])})
    with pytest.raises(ValueError, match="combine"):
        P.Paired(P.ACCURACY, (np.ones((2, 2)),), (np.ones((2, 2)),), ("s",), combine="median")
    with pytest.raises(ValueError, match="not a mean of per-response"):
        P.pair(P.MICRO_F1, (y, a, a)).per_response()
