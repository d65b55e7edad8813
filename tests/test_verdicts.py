"""The verdict helpers reach every outcome from constructed inputs (issue 24, section 1)."""
import numpy as np
import pytest

from scoring_lab import verdicts as V
from scoring_lab.paired_metrics import ACCURACY, MICRO_F1, pair


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
    v = V.compare(pair(ACCURACY, (y, a, b)), direction=direction, n_resamples=500, correct=(a == y, b == y))
    assert v.verdict == expected
    assert v.effect == pytest.approx((a_only - b_only) / len(y))
    assert v.ci_low <= v.effect <= v.ci_high and v.n == len(y) and v.n_text == f"{len(y)} responses"
    assert "McNemar" in v.test and "500 resamples" in v.test
    assert (v.detectable is not None) == (expected == V.INCONCLUSIVE)
    if expected != V.INCONCLUSIVE:
        assert v.p_value < 0.05


def test_compare_is_seeded_and_says_strata_and_seeds():
    y, a, b = _pair(10, 4)
    third = len(y) // 3
    strata = {s: (y[s * third:(s + 1) * third], [a[s * third:(s + 1) * third]] * 2, [b[s * third:(s + 1) * third]] * 2)
              for s in range(3)}
    one = V.compare(pair(ACCURACY, strata, combine="weighted"), n_resamples=200, seed=3)
    two = V.compare(pair(ACCURACY, strata, combine="weighted"), n_resamples=200, seed=3)
    assert one == two and "within 3 strata, weighted over them" in one.test and "seeds pooled" in one.test
    assert one.n_text == f"{3 * third} responses, 2 seeds"


def test_compare_rejects_unpaired_input_and_a_bad_direction():
    with pytest.raises(ValueError, match="same responses"):
        pair(ACCURACY, (np.ones(5), np.ones(5), np.ones(4)))
    with pytest.raises(ValueError, match="direction"):
        V.compare(pair(ACCURACY, _pair(3, 3)), direction="sideways", n_resamples=50)


def _verdict(verdict, p):
    return V.Verdict(verdict, 0.1, 0.0, 0.2, 100, "t", p)


@pytest.mark.parametrize("parts, expected, held", [
    ([(V.HELD, 0.001), (V.HELD, 0.002), (V.HELD, 0.003)], V.HELD, 3),
    ([(V.HELD, 0.001), (V.HELD, 0.04), (V.INCONCLUSIVE, 0.5)], V.PARTLY, 1),   # 0.04 fails after Holm
    ([(V.HELD, 0.001), (V.NOT_HELD, 0.001)], V.NOT_HELD, 1),
    ([(V.INCONCLUSIVE, 0.3), (V.HELD, 0.03)], V.INCONCLUSIVE, 0),             # 0.03 * 2 > 0.05
])
def test_compare_all_corrects_with_holm(parts, expected, held):
    overall = V.Verdict(V.HELD, 0.05, 0.01, 0.09, 300, "pooled", 0.01, n_text="300 responses")
    v = V.compare_all([_verdict(v, p) for v, p in parts], overall)
    assert v.verdict == expected and sum(v.held_each) == held
    assert v.test.startswith(f"{held} of {len(parts)} held after Holm's correction")
    assert (v.effect, v.ci_low, v.ci_high, v.n_text) == (0.05, 0.01, 0.09, "300 responses")


def test_compare_all_without_an_overall_comparison_has_no_interval():
    v = V.compare_all([_verdict(V.HELD, 0.001), _verdict(V.HELD, 0.001)])
    assert v.verdict == V.HELD and np.isnan(v.ci_low) and v.n == 200


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
    from scoring_lab.paired_metrics import MEAN
    v = V.equivalent(pair(MEAN, (a, a, b)), margin)
    assert v.verdict == expected and v.n == 200 and "TOST" in v.test
    assert v.ci_low <= v.effect <= v.ci_high


def _scores(a, b):
    from scoring_lab.paired_metrics import MEAN
    return pair(MEAN, (np.asarray(a), np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def test_a_non_significant_difference_is_not_equivalence():
    a = [1, 0, 1, 1, 0, 1, 0, 1]
    b = [1, 1, 0, 1, 0, 0, 1, 1]
    assert V.equivalent(_scores(a, b), margin=0.05).verdict == V.INCONCLUSIVE
    with pytest.raises(ValueError, match="margin"):
        V.equivalent(_scores(a, b), margin=0)


def test_equivalent_with_identical_differences():
    a = np.ones(10)
    assert V.equivalent(_scores(a, a), 0.01).verdict == V.HELD
    assert V.equivalent(_scores(a, a - 1), 0.01).verdict == V.NOT_HELD


@pytest.mark.parametrize("flip_b, margin, expected", [
    (0.10, 0.05, V.HELD),            # the same error rate, many responses: equivalent
    (0.45, 0.05, V.NOT_HELD),        # B far worse
    (0.13, 0.05, V.INCONCLUSIVE),    # a difference near the margin
])
def test_equivalent_by_bootstrap_for_f1(flip_b, margin, expected):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (3000 if expected == V.HELD else 400, 3))
    a = np.where(rng.random(y.shape) < 0.10, 1 - y, y)
    b = np.where(rng.random(y.shape) < flip_b, 1 - y, y)
    v = V.equivalent(pair(MICRO_F1, (y, a, b)), margin, n_resamples=400)
    assert v.verdict == expected and "paired bootstrap of the micro-F1" in v.test


@pytest.mark.parametrize("lo, hi, least, most", [
    (2.1, 2.5, V.HELD, V.NOT_HELD),
    (1.5, 1.9, V.NOT_HELD, V.HELD),
    (1.8, 2.2, V.INCONCLUSIVE, V.INCONCLUSIVE),
])
def test_one_sided_bands(lo, hi, least, most):
    assert V.at_least((lo + hi) / 2, lo, hi, 2.0, 10, "t").verdict == least
    assert V.at_most((lo + hi) / 2, lo, hi, 2.0, 10, "t").verdict == most


@pytest.mark.parametrize("lo, hi, expected", [(0.80, 0.86, V.HELD), (0.60, 0.70, V.NOT_HELD),
                                              (0.90, 0.95, V.NOT_HELD), (0.70, 0.80, V.INCONCLUSIVE)])
def test_two_sided_band(lo, hi, expected):
    assert V.band((lo + hi) / 2, lo, hi, 10, "t", at_least=0.779, at_most=0.879).verdict == expected
    with pytest.raises(ValueError, match="band needs"):
        V.band(0.5, 0.4, 0.6, 10, "t")


@pytest.mark.parametrize("a_only, b_only, expected", [(40, 2, V.NOT_HELD), (2, 2, V.HELD), (22, 2, V.INCONCLUSIVE)])
def test_difference_band_judges_a_gap_on_its_interval(a_only, b_only, expected):
    v = V.difference_band(pair(ACCURACY, _pair(a_only, b_only, n_both=300, n_neither=60)), at_most=0.05,
                          n_resamples=500)
    assert v.verdict == expected and "<= 0.05" in v.test


@pytest.mark.parametrize("n_wrong, expected", [(10, V.HELD), (60, V.NOT_HELD), (25, V.INCONCLUSIVE)])
def test_figure_band_judges_one_model(n_wrong, expected):
    y = np.ones(200, dtype=int)
    a = np.r_[np.zeros(n_wrong), np.ones(200 - n_wrong)].astype(int)
    v = V.figure_band(pair(ACCURACY, (y, a, a)), at_least=0.85, n_resamples=500)
    assert v.verdict == expected and v.effect == pytest.approx(1 - n_wrong / 200)


def test_an_unreachable_band_is_not_tested():
    assert V.reachable(40, 291 / 30, "the item ratio 291/30").startswith("not reachable here: the claim needs 40")
    assert V.reachable(5, 9.7, "the item ratio") is None


@pytest.mark.parametrize("p", [[0.001, 0.04, 0.5], [0.03, 0.01, 0.02, 0.04], [0.2], [0.01, 0.01, 0.9, 0.049]])
def test_holm_equals_statsmodels(p):
    from statsmodels.stats.multitest import multipletests

    rejected, adjusted = V.holm(p)
    theirs = multipletests(p, alpha=0.05, method="holm")
    assert rejected.tolist() == theirs[0].tolist() and np.allclose(adjusted, theirs[1])


def test_comparisons_on_the_same_responses_share_their_draws():
    y, a, b = _pair(10, 4)
    one = pair(ACCURACY, (y, a, b)).resampled_differences(300, seed=2)
    two = pair(ACCURACY, (y, b, a)).resampled_differences(300, seed=2)
    assert np.allclose(one, -two)      # the same resamples, the models swapped
