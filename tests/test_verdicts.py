"""The verdict helpers reach every outcome from constructed inputs (issue 24, section 1)."""
import numpy as np
import pytest

from scoring_lab import verdicts as V


def accuracy(y, p):
    return float(np.mean(y == p))


def _pair(n_a_only, n_b_only, n_both=100, n_neither=20):
    """Labels and two models' predictions: A alone right on n_a_only responses, B alone on n_b_only."""
    y = np.ones(n_a_only + n_b_only + n_both + n_neither, dtype=int)
    a = np.r_[np.ones(n_a_only), np.zeros(n_b_only), np.ones(n_both), np.zeros(n_neither)].astype(int)
    b = np.r_[np.zeros(n_a_only), np.ones(n_b_only), np.ones(n_both), np.zeros(n_neither)].astype(int)
    return y, a, b


@pytest.mark.parametrize("a_only, b_only, direction, expected", [
    (40, 2, V.GREATER, V.HELD),            # A clearly ahead, as claimed
    (2, 40, V.GREATER, V.NOT_HELD),        # B clearly ahead: the claim fails
    (6, 5, V.GREATER, V.INCONCLUSIVE),     # a difference the data cannot tell from none
    (2, 40, V.LESS, V.HELD),               # "A is below B" (a drop), as claimed
])
def test_compare_reaches_every_outcome(a_only, b_only, direction, expected):
    y, a, b = _pair(a_only, b_only)
    v = V.compare(accuracy, y, a, b, direction=direction, n_resamples=500, metric_name="accuracy",
                  correct=(a == y, b == y))
    assert v.verdict == expected
    assert v.effect == pytest.approx((a_only - b_only) / len(y))
    assert v.ci_low <= v.effect <= v.ci_high and v.n == len(y)
    assert "McNemar" in v.test and "500 resamples" in v.test
    assert (v.detectable is not None) == (expected == V.INCONCLUSIVE)
    if expected != V.INCONCLUSIVE:
        assert v.p_value < 0.05


def test_compare_is_seeded_and_stratified_resampling_keeps_strata():
    y, a, b = _pair(10, 4)
    strata = np.arange(len(y)) % 3
    one = V.compare(accuracy, y, a, b, strata=strata, n_resamples=200, seed=3)
    two = V.compare(accuracy, y, a, b, strata=strata, n_resamples=200, seed=3)
    assert one == two and "stratified" in one.test
    idx = V._resample_indices(strata, np.random.default_rng(0))
    assert np.bincount(strata[idx]).tolist() == np.bincount(strata).tolist()


def test_compare_rejects_unpaired_input():
    with pytest.raises(ValueError, match="same responses"):
        V.compare(accuracy, np.ones(5), np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="direction"):
        V.compare(accuracy, *_pair(3, 3), direction="sideways", n_resamples=50)


def _verdict(verdict, p):
    return V.Verdict(verdict, 0.1, 0.0, 0.2, 100, "t", p)


@pytest.mark.parametrize("parts, expected, held", [
    ([(V.HELD, 0.001), (V.HELD, 0.002), (V.HELD, 0.003)], V.HELD, 3),
    ([(V.HELD, 0.001), (V.HELD, 0.04), (V.INCONCLUSIVE, 0.5)], V.PARTLY, 1),   # 0.04 fails after Holm
    ([(V.HELD, 0.001), (V.NOT_HELD, 0.001)], V.NOT_HELD, 1),
    ([(V.INCONCLUSIVE, 0.3), (V.HELD, 0.03)], V.INCONCLUSIVE, 0),             # 0.03 * 2 > 0.05
])
def test_compare_all_corrects_with_holm(parts, expected, held):
    verdict, each, note = V.compare_all([_verdict(v, p) for v, p in parts])
    assert verdict == expected and sum(each) == held
    assert note == f"{held} of {len(parts)} held after Holm's correction"


def test_compare_all_needs_a_comparison():
    with pytest.raises(ValueError):
        V.compare_all([])


@pytest.mark.parametrize("shift, noise, margin, expected", [
    (0.0, 0.05, 0.05, V.HELD),            # no difference, tight: equivalent within the margin
    (0.5, 0.05, 0.05, V.NOT_HELD),        # a difference far outside the margin
    (0.0, 1.0, 0.05, V.INCONCLUSIVE),     # too noisy to say either
])
def test_equivalent_reaches_every_outcome(shift, noise, margin, expected):
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 200)
    b = a - shift + rng.normal(0, noise, 200)
    v = V.equivalent(a, b, margin)
    assert v.verdict == expected and v.n == 200 and "TOST" in v.test
    assert v.ci_low <= v.effect <= v.ci_high


def test_a_non_significant_difference_is_not_equivalence():
    a = np.array([1, 0, 1, 1, 0, 1, 0, 1], dtype=float)
    b = np.array([1, 1, 0, 1, 0, 0, 1, 1], dtype=float)
    assert V.equivalent(a, b, margin=0.05).verdict == V.INCONCLUSIVE
    with pytest.raises(ValueError, match="margin"):
        V.equivalent(a, b, margin=0)


def test_equivalent_with_identical_differences():
    a = np.ones(10)
    assert V.equivalent(a, a, 0.01).verdict == V.HELD
    assert V.equivalent(a, a - 1, 0.01).verdict == V.NOT_HELD


@pytest.mark.parametrize("lo, hi, least, most", [
    (2.1, 2.5, V.HELD, V.NOT_HELD),
    (1.5, 1.9, V.NOT_HELD, V.HELD),
    (1.8, 2.2, V.INCONCLUSIVE, V.INCONCLUSIVE),
])
def test_one_sided_bands(lo, hi, least, most):
    assert V.at_least((lo + hi) / 2, lo, hi, 2.0, 10, "t").verdict == least
    assert V.at_most((lo + hi) / 2, lo, hi, 2.0, 10, "t").verdict == most


def test_an_unreachable_band_is_not_tested():
    assert V.reachable(40, 291 / 30, "the item ratio 291/30").startswith("not reachable here: the claim needs 40")
    assert V.reachable(5, 9.7, "the item ratio") is None
