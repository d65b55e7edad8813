"""The IRT chapter's compute ledger: every arm priced from the same timed evaluations, the set-up charged to
the arms that pay it, ratios and break-even by hand."""
import numpy as np
import pandas as pd
import pytest

from scoring_lab.irt import cost


def _timed():
    # three timed merges: 0.3 s to build and load, 0.6 s to score the pool, 0.06 s for 10 items per task
    return pd.DataFrame({"model": [0, 1, 2], "merge_seconds": [0.2, 0.3, 0.4], "pool_seconds": [0.6, 0.6, 0.6],
                         "pool_flops": [3e11] * 3, "10_seconds": [0.06] * 3, "10_flops": [3e10] * 3})


def test_every_arm_pays_the_merge_and_the_irt_arms_the_set_up():
    timed = _timed()
    setup = cost.setup_cost(timed, models_scored=10, fit_seconds=20.0, fit_flops=1e9)
    assert setup["setup_seconds"] == pytest.approx(10 * 0.9 + 20) and setup["setup_flops"] == pytest.approx(3e12 + 1e9)
    arms = {"full": (48, cost.FULL_ITEMS, 0.0, False), "irt": (48, "10", 0.04, True), "mean": (48, "10", 0.0, False)}
    t = cost.ledger(arms, timed, setup, "full").set_index("arm")
    assert t.loc["full", "seconds_per_evaluation"] == pytest.approx(0.9)
    assert t.loc["irt", "seconds_per_evaluation"] == pytest.approx(0.3 + 0.06 + 0.04)
    assert t.loc["mean", "setup_seconds"] == 0 and t.loc["irt", "setup_seconds"] == pytest.approx(29.0)
    assert t.loc["irt", "per_evaluation_flops_ratio"] == pytest.approx(10.0)
    assert t.loc["irt", "per_evaluation_seconds_ratio"] == pytest.approx(0.9 / 0.4)   # the merge is not saved
    assert t.loc["irt", "end_to_end_seconds_ratio"] == pytest.approx(48 * 0.9 / (29 + 48 * 0.4))
    assert t.loc["irt", "break_even_evaluations_seconds"] == pytest.approx(29 / 0.5)
    assert np.isnan(t.loc["mean", "break_even_evaluations_seconds"]) and np.isnan(t.loc["full", "break_even_evaluations_flops"])
    assert t.loc["full", "end_to_end_seconds_ratio"] == 1.0


def test_an_arm_that_saves_nothing_never_breaks_even():
    timed = _timed().assign(**{"10_seconds": 0.7})   # scoring the subset costs more than the pool
    t = cost.ledger({"full": (5, cost.FULL_ITEMS, 0.0, False), "irt": (5, "10", 0.0, True)}, timed,
                    cost.setup_cost(timed, 2, 1.0, 0.0), "full").set_index("arm")
    assert np.isnan(t.loc["irt", "break_even_evaluations_seconds"])


def test_the_ratio_interval_resamples_the_timed_merges():
    timed = _timed()
    ratio, lo, hi = cost.ratio_interval(timed, "10", 48, 0.04, 10, 20.0, 500, 0)
    assert ratio == pytest.approx(48 * 0.9 / (10 * 0.9 + 20 + 48 * 0.4))
    assert lo < ratio < hi
    same = timed.assign(merge_seconds=0.3)
    r, lo, hi = cost.ratio_interval(same, "10", 48, 0.04, 10, 20.0, 200, 0)
    assert lo == pytest.approx(r) == pytest.approx(hi)   # nothing varies: no width
    with pytest.raises(ValueError, match="whole pool"):
        cost.ratio_interval(timed, cost.FULL_ITEMS, 48, 0.0, 10, 20.0, 10, 0)
    assert cost.fit_flops(28, 582, 4, 500) == pytest.approx(6 * 28 * 582 * 4 * 500)


def test_route_costs_pool_each_arms_replicates_and_charge_the_set_up_to_irt_arms():
    from types import SimpleNamespace

    from scoring_lab.irt.searches import GA, SearchRun

    def found(run, n, est_s):
        return run, SimpleNamespace(log=pd.DataFrame({"estimator_seconds": [est_s] * n}))

    runs = dict([found(SearchRun(GA), 48, 0.0), found(SearchRun(GA, "gmp-IRT"), 48, 0.02),
                 found(SearchRun(GA, "gmp-IRT", replicate=1), 46, 0.04), found(SearchRun(GA, "random"), 48, 0.0),
                 found(SearchRun(GA, "gmp-IRT", per_task=5), 48, 0.01)])
    costs = cost.RouteCosts(_timed().assign(**{"5_seconds": 0.03, "5_flops": 1.5e10}), runs, 10, 20.0, 1e9, 10,
                            SearchRun(GA).label)
    arms = costs.arms()
    # replicates pooled: the mean evaluations per search, the mean estimator seconds per evaluation
    assert arms[SearchRun(GA, "gmp-IRT").label] == (47.0, "10", pytest.approx((48 * 0.02 + 46 * 0.04) / 94), True)
    assert arms[SearchRun(GA, "random").label][3] is False and arms[SearchRun(GA).label][1] == cost.FULL_ITEMS
    assert arms["GA, gmp-IRT fitness, 5 items per task"][1] == "5"
    t = costs.table().set_index("arm")
    assert len(t) == 4 and t.loc[SearchRun(GA, "random").label, "setup_seconds"] == 0
    ratio, lo, hi = costs.ratio(SearchRun(GA, "gmp-IRT").label, 200, 0)
    assert ratio == pytest.approx(t.loc[SearchRun(GA, "gmp-IRT").label, "end_to_end_seconds_ratio"])
