"""The IRT chapter's claim statistics (scoring_lab.irt.judging) on constructed units and items: each
reaches its verdicts, coinciding estimators (c = 0) are counted once, units are named as units."""
import numpy as np
import pandas as pd
import pytest

from scoring_lab import verdicts
from scoring_lab.irt import judging
from scoring_lab.irt.estimators import GMP_IRT, GP_IRT, MP_IRT, P_IRT


def _errors(shift: dict, models=6, reps=5, sizes=(10, 20), seed=0) -> pd.DataFrame:
    """A Fig. 3 table: per (size, repetition, model) each estimator's error, random's noise plus ``shift``."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for r in range(reps):
            for m in range(models):
                base = rng.uniform(0.05, 0.15)
                for e, d in shift.items():
                    rows.append({"estimator": e, "subset_size": n, "repetition": r, "model": m,
                                 "abs_error": base + d + rng.normal(0, 0.002)})
    return pd.DataFrame(rows)


def test_c_zero_makes_the_g_estimator_the_plain_one_and_its_comparison_is_dropped():
    chosen = {GP_IRT: 0.0, GMP_IRT: 0.0}
    assert judging.canonical(GMP_IRT, chosen) == MP_IRT and judging.canonical(GP_IRT, {GP_IRT: 0.5}) == GP_IRT
    pairs, dropped = judging.distinct_pairs([(MP_IRT, P_IRT), (GMP_IRT, GP_IRT)], chosen)
    assert pairs == [(MP_IRT, P_IRT)] and len(dropped) == 1 and "not counted again" in dropped[0]
    pairs, dropped = judging.distinct_pairs([(MP_IRT, P_IRT), (GMP_IRT, GP_IRT)], {GP_IRT: 0.5, GMP_IRT: 0.0})
    assert pairs == [(MP_IRT, P_IRT), (MP_IRT, GP_IRT)] and dropped == []
    _, dropped = judging.distinct_pairs([(GMP_IRT, MP_IRT)], chosen)     # an estimator against itself
    assert len(dropped) == 1


def test_unit_scores_pair_the_same_units_and_leave_out_undefined_ones():
    t = _errors({"a": 0.0, "b": 0.01}, models=3, reps=2, sizes=(5,))
    t.loc[(t["estimator"] == "a") & (t["model"] == 0) & (t["repetition"] == 0), "abs_error"] = np.nan
    s = judging.unit_scores(t, "a", "b", "abs_error")
    zeros, a, b = s[5]
    assert len(a) == len(b) == len(zeros) == 5
    np.testing.assert_allclose(b - a, 0.01, atol=0.01)


def test_compare_units_holds_partly_and_fails_with_holm_over_sizes():
    kw = dict(value="abs_error", direction=verdicts.LESS, metric=judging.MAE, n_resamples=500, seed=0)
    held = judging.compare_units(_errors({MP_IRT: 0.0, P_IRT: 0.03}), [(MP_IRT, P_IRT)], **kw)
    assert held.verdict == verdicts.HELD and held.effect == pytest.approx(-0.03, abs=0.002)
    assert held.ci_low < held.effect < held.ci_high < 0
    assert "(held-out model, subset) units" in held.test and "test responses" not in held.test
    assert held.n_text.startswith("30 units per size (6 held-out models x 5 subsets) at 2 size(s), 2 comparisons")
    worse = judging.compare_units(_errors({MP_IRT: 0.03, P_IRT: 0.0}), [(MP_IRT, P_IRT)], **kw)
    assert worse.verdict == verdicts.NOT_HELD
    # lower at size 10, no different at 20: partly, one of two held after Holm
    t = pd.concat([_errors({MP_IRT: 0.0, P_IRT: 0.03}, sizes=(10,)), _errors({MP_IRT: 0.0, P_IRT: 0.0}, sizes=(20,), seed=1)])
    part = judging.compare_units(t, [(MP_IRT, P_IRT)], **kw)
    assert part.verdict == verdicts.PARTLY and part.held_each == (True, False) and part.test.startswith("1 of 2 held")


def _cells(diffs: dict, n=40, sd=0.01, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for cell, d in diffs.items():
        b = rng.uniform(0.02, 0.1, n)
        out[cell] = (np.zeros(n), b + d + rng.normal(0, sd, n), b)
    return out


@pytest.mark.slow
def test_equivalence_over_cells_reaches_every_verdict():
    held = judging.equivalent_units(_cells({1: 0.0, 2: 0.002}), 0.02)
    assert held.verdict == verdicts.HELD and held.held_each == (True, True) and -0.02 < held.ci_low < held.ci_high < 0.02
    assert "2 of 2 cells equivalent within ±0.02" in held.test and "units" in held.test
    partly = judging.equivalent_units({**_cells({1: 0.0}), **_cells({2: 0.015}, n=10, sd=0.05, seed=1)}, 0.02)
    assert partly.verdict == verdicts.PARTLY and partly.held_each == (True, False)
    beyond = judging.equivalent_units(_cells({1: 0.0, 2: 0.06}), 0.02)
    assert beyond.verdict == verdicts.NOT_HELD and "1 differ by more" in beyond.test
    unsure = judging.equivalent_units(_cells({1: 0.015}, n=8, sd=0.03), 0.02)
    assert unsure.verdict == verdicts.INCONCLUSIVE


def _items(p_a, p_b, n=300, seed=0, tasks=3):
    """Two models' 0/1 correctness on n items of ``tasks`` tasks, A right with p_a, B with p_b (correlated)."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    return (u < p_a).astype(float), (u < p_b).astype(float), np.arange(n) % tasks


def test_by_task_splits_items_and_accuracy_comparisons_pool_them():
    a, b, task = _items(0.7, 0.4)
    s = judging.by_task(a, b, task, ["x", "y", "z"])
    assert list(s) == ["x", "y", "z"] and sum(len(v[1]) for v in s.values()) == 300
    v = judging.compare_accuracy(s, verdicts.GREATER, 500, 0)
    assert v.verdict == verdicts.HELD and v.effect == pytest.approx(a.mean() - b.mean()) and "McNemar" in v.test
    assert judging.compare_accuracy(judging.by_task(b, a, task, "xyz"), verdicts.GREATER, 500, 0).verdict == \
        verdicts.NOT_HELD


def test_several_baselines_are_corrected_together_and_the_effect_is_the_named_ones():
    a, weak, task = _items(0.7, 0.4)
    _, close, _ = _items(0.7, 0.69)
    comps = {"weak": judging.by_task(a, weak, task, "xyz"), "close": judging.by_task(a, close, task, "xyz")}
    v = judging.compare_many(comps, "close", verdicts.GREATER, 500, 0)
    assert v.verdict == verdicts.PARTLY and v.held_each == (True, False)
    assert v.effect == pytest.approx(a.mean() - close.mean())


def test_comes_close_is_one_sided_non_inferiority():
    a, b, task = _items(0.5, 0.5)
    assert judging.close_to_accuracy(judging.by_task(a, b, task, "xyz"), 0.02, 500, 0).verdict == verdicts.HELD
    better, b, task = _items(0.8, 0.5)   # above is fine
    assert judging.close_to_accuracy(judging.by_task(better, b, task, "xyz"), 0.02, 500, 0).verdict == verdicts.HELD
    worse, b, task = _items(0.3, 0.5)
    v = judging.close_to_accuracy(judging.by_task(worse, b, task, "xyz"), 0.02, 500, 0)
    assert v.verdict == verdicts.NOT_HELD and "McNemar" in v.test
    rng = np.random.default_rng(3)
    a, b = (rng.random(60) < 0.5).astype(float), (rng.random(60) < 0.5).astype(float)
    assert judging.close_to_accuracy(judging.by_task(a, b, np.zeros(60, int), "x"), 0.02, 500, 0).verdict == \
        verdicts.INCONCLUSIVE


def test_replicates_are_pooled_per_item_and_mcnemar_only_for_single_models():
    rng = np.random.default_rng(5)
    task = np.repeat([0, 1, 2], 40)
    a = [(rng.random(120) < 0.8).astype(float) for _ in range(3)]
    b = [(rng.random(120) < 0.5).astype(float) for _ in range(3)]
    samples = judging.by_task(a, b, task, "xyz")
    assert isinstance(samples["x"][1], list) and len(samples["x"][1]) == 3 and len(samples["x"][1][0]) == 40
    v = judging.compare_accuracy(samples, verdicts.GREATER, 500, 0)
    assert v.verdict == verdicts.HELD and "McNemar" not in v.test and "3 seeds" in v.n_text
    assert v.effect == pytest.approx(np.mean(a) - np.mean(b))
    same = judging.compare_accuracy(judging.by_task(a, a, task, "xyz"), verdicts.GREATER, 500, 0)
    assert same.verdict == verdicts.INCONCLUSIVE and same.effect == 0
    worse = judging.compare_accuracy(judging.by_task(b, a, task, "xyz"), verdicts.GREATER, 500, 0)
    assert worse.verdict == verdicts.NOT_HELD
    single = judging.compare_accuracy(judging.by_task(a[0], b[0], task, "xyz"), verdicts.GREATER, 500, 0)
    assert "McNemar" in single.test


def test_sameness_takes_a_margin_per_cell():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.02, 0.1, 80)
    cells = {"tight": (np.zeros(80), base + 0.01, base), "wide": (np.zeros(80), base + 0.01, base)}
    both = judging.equivalent_units(cells, {"tight": 0.005, "wide": 0.05})
    assert both.verdict == verdicts.NOT_HELD and both.held_each == (False, True)   # 0.01 is beyond 0.005
    assert "their margins (±0.005 to ±0.050)" in both.test
    assert judging.equivalent_units(cells, 0.05).verdict == verdicts.HELD
    noisy = {"n": (np.zeros(80), base + rng.normal(0, 0.2, 80), base)}
    assert judging.equivalent_units(noisy, 0.01).verdict == verdicts.INCONCLUSIVE


def test_no_worse_reaches_every_outcome():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.02, 0.1, 80)

    def cell(shift, sd=0.005, n=80):
        return (np.zeros(n), base[:n] + shift + rng.normal(0, sd, n), base[:n])

    margins = {"a": 0.02, "b": 0.02}
    assert judging.no_worse_units({"a": cell(-0.03), "b": cell(0.0)}, margins).verdict == verdicts.HELD  # better is fine
    v = judging.no_worse_units({"a": cell(0.0), "b": cell(0.06)}, margins)
    assert v.verdict == verdicts.NOT_HELD and v.held_each == (True, False)
    partly = judging.no_worse_units({"a": cell(0.0), "b": cell(0.02, sd=0.05, n=10)}, margins)
    assert partly.verdict == verdicts.PARTLY
    unsure = judging.no_worse_units({"a": cell(0.02, sd=0.05, n=10)}, {"a": 0.02})
    assert unsure.verdict == verdicts.INCONCLUSIVE and unsure.ci_low < unsure.effect < unsure.ci_high
    assert "one-sided paired t-tests" in v.test and v.n_text == "160 units in 2 cells"
