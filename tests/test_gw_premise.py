"""The GW chapter's premise and plan-comparison machinery (issue 27): size-matched random plans, the oracle
search, distances that see where clouds lie, the Spearman correlation over task pairs with tasks resampled,
and the verdict helpers, each driven to every outcome."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import save_file
import torch

from scoring_lab import verdicts
from scoring_lab.gw import gromov, merge_plans, placed_distances
from scoring_lab.gw.evaluation import serialized_bytes
from scoring_lab.gw.pairwise import PairwiseMerges
from scoring_lab.gw.plan_ranks import rank_verdict, sample_verdict
from scoring_lab.gw.premise import premise_verdict, spearman_by_tasks
from scoring_lab.merging.evaluation import OWN

NAMES = list("abcdefghi")
GW_LIKE = (("a", "b", "c"), ("d", "e", "f"), ("g",), ("h",), ("i",))


def test_random_plans_like_share_the_sizes_exclude_the_plan_and_are_seeded():
    plans, total = merge_plans.random_plans_like(NAMES, GW_LIKE, 30, seed=3)
    assert total == 84 * 20 // 2 - 1            # two unordered trios of nine tasks, less the plan itself
    assert len(plans) == 30 and len({frozenset(map(frozenset, p)) for p in plans}) == 30
    assert all(merge_plans.sizes(p) == (3, 3, 1, 1, 1) for p in plans)
    assert not any(merge_plans.same_plan(p, GW_LIKE) for p in plans)
    assert plans == merge_plans.random_plans_like(NAMES, GW_LIKE, 30, seed=3)[0]
    assert plans != merge_plans.random_plans_like(NAMES, GW_LIKE, 30, seed=4)[0]
    # a plan no other plan shares sizes with: none to draw
    assert merge_plans.random_plans_like(["a", "b"], (("a", "b"),), 30) == ([], 0)


def test_best_plan_with_a_size_profile_keeps_those_sizes():
    rng = np.random.default_rng(0)
    sim = rng.random((9, 9))
    sim = pd.DataFrame((sim + sim.T) / 2, index=NAMES, columns=NAMES)
    free, free_score = merge_plans.best_plan(-sim, 5, 3)          # negative similarities: the fewest pairs win
    assert merge_plans.sizes(free) == (2, 2, 2, 2, 1)
    same, score = merge_plans.best_plan(-sim, 5, 3, (3, 3, 1, 1, 1))
    assert merge_plans.sizes(same) == (3, 3, 1, 1, 1) and score <= free_score
    every = [p for p in merge_plans.partitions(NAMES, 5, 3) if merge_plans.sizes(p) == (3, 3, 1, 1, 1)]
    assert score == pytest.approx(max(merge_plans.plan_score(p, -sim) for p in every))
    with pytest.raises(ValueError, match="has the sizes"):
        merge_plans.best_plan(sim, 5, 3, (4, 2, 1, 1, 1))          # above the cap


def _cloud(seed: int, n: int = 40, d: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_wasserstein_and_fused_gw_see_where_a_cloud_lies_and_gw_does_not():
    x = _cloud(0)
    feats = {"x": x, "same": x.copy(), "moved": x + 3.0}
    w = placed_distances.pairwise_wasserstein(feats)
    assert w.loc["x", "same"] == pytest.approx(0, abs=1e-9)
    assert w.loc["x", "moved"] == pytest.approx(9.0 * x.shape[1], rel=1e-6)   # every point moved by 3 in 5 dims
    fgw = placed_distances.pairwise_fused_gw(feats)
    assert fgw.loc["x", "same"] == pytest.approx(0, abs=1e-9) and fgw.loc["x", "moved"] > 0.01
    gw = gromov.pairwise_distances(feats, gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT), progress=False)
    assert gw.loc["x", "moved"] == pytest.approx(0, abs=1e-9)      # the same shape: GW cannot tell them apart
    assert (w.to_numpy() == w.to_numpy().T).all() and np.diag(fgw.to_numpy()).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="alpha"):
        placed_distances.pairwise_fused_gw(feats, alpha=1.5)
    with pytest.raises(gromov.GWError, match="moved.*NaN"):
        placed_distances.pairwise_wasserstein({"x": x, "moved": np.where(np.arange(5) == 2, np.nan, x)})


def _matrices(seed: int, t: int = 9, strength: float = 1.0):
    rng = np.random.default_rng(seed)
    close = rng.random((t, t))
    close = (close + close.T) / 2
    loss = -strength * close + rng.normal(0, 0.05, (t, t))
    loss = (loss + loss.T) / 2
    return close, loss


def test_spearman_by_tasks_is_scipys_rho_with_an_interval_from_resampled_tasks():
    from scipy import stats

    close, loss = _matrices(0)
    r = spearman_by_tasks(close, loss, n_resamples=300, seed=1)
    iu = np.triu_indices(9, 1)
    assert r["rho"] == pytest.approx(stats.spearmanr(close[iu], loss[iu]).statistic)
    assert r["rho"] < -0.8 and r["ci_low"] <= r["rho"] <= r["ci_high"] < 0
    assert r["n_pairs"] == 36 and r["n_tasks"] == 9 and r["resamples_used"] == 300
    assert r == spearman_by_tasks(close, loss, n_resamples=300, seed=1)
    # the vectorised resampling is scipy's spearmanr on each resample's pairs of two different tasks
    draws = np.random.default_rng(1).integers(0, 9, (300, 9))
    loop = []
    for d in draws:
        a, b = d[iu[0]], d[iu[1]]
        keep = a != b
        if keep.sum() >= 3:
            loop.append(stats.spearmanr(close[a[keep], b[keep]], loss[a[keep], b[keep]]).statistic)
    assert [r["ci_low"], r["ci_high"]] == pytest.approx(list(np.percentile(loop, [2.5, 97.5])))
    fam = np.equal.outer(np.arange(9) // 3, np.arange(9) // 3).astype(float)   # ties: average ranks, as scipy
    rf = spearman_by_tasks(fam, loss, n_resamples=50, seed=0)
    assert rf["rho"] == pytest.approx(stats.spearmanr(fam[iu], loss[iu]).statistic)
    flat = spearman_by_tasks(np.ones((9, 9)), loss, n_resamples=50)
    assert np.isnan(flat["rho"]) and flat["resamples_used"] == 0


@pytest.mark.parametrize("strength, verdict", [(1.0, verdicts.HELD), (-1.0, verdicts.NOT_HELD),
                                               (0.0, verdicts.INCONCLUSIVE)])
def test_the_premise_verdict_reaches_every_outcome(strength, verdict):
    close, loss = _matrices(2, strength=strength)
    r = spearman_by_tasks(close, loss, n_resamples=400, seed=0)
    v = premise_verdict(r["rho"], r["ci_low"], r["ci_high"], r["n_pairs"], r["n_tasks"], 400, 0)
    assert v.verdict == verdict and v.n == 36 and "resampling the 9 tasks" in v.test
    none = premise_verdict(np.nan, np.nan, np.nan, 36, 9, 400, 0)
    assert none.verdict == verdicts.NOT_TESTED


@pytest.mark.parametrize("value, verdict", [(1.0, verdicts.HELD), (-1.0, verdicts.NOT_HELD),
                                            (0.5, verdicts.INCONCLUSIVE)])
def test_the_rank_verdict_reaches_every_outcome(value, verdict):
    others = np.linspace(0, 0.9, 30)
    v = rank_verdict(value, others, n_resamples=200, seed=0)
    assert v.verdict == verdict and v.n == 30
    assert v.effect == pytest.approx(value - others.mean()) and v.ci_low <= v.effect <= v.ci_high
    if verdict == verdicts.HELD:
        assert v.p_value == pytest.approx(1 / 31) and "rank 1 of 31" in v.test
    # a tie with the best random plan is not "above every one": p = 2/31 > 0.05
    assert rank_verdict(0.9, others).verdict == verdicts.INCONCLUSIVE
    with pytest.raises(ValueError, match="at least one"):
        rank_verdict(1.0, [])


@pytest.mark.parametrize("shift, verdict", [(0.5, verdicts.HELD), (-0.5, verdicts.NOT_HELD),
                                            (0.0, verdicts.INCONCLUSIVE)])
def test_the_sample_verdict_reaches_every_outcome(shift, verdict):
    others = np.linspace(0, 1, 30)
    values = np.linspace(0.2, 0.8, 8) + shift
    v = sample_verdict(values, others, n_resamples=300, seed=0)
    assert v.verdict == verdict and v.n == 38 and "Mann-Whitney" in v.test
    with pytest.raises(ValueError, match="at least two"):
        sample_verdict([1.0], others)


def test_serialized_bytes_are_the_size_of_the_safetensors_file(tmp_path):
    state = {"w": torch.ones(3, 4), "b": torch.zeros(7, dtype=torch.float16)}
    save_file(state, str(tmp_path / "x.safetensors"))
    assert serialized_bytes(state) == (tmp_path / "x.safetensors").stat().st_size


class _Evaluator:
    """A fake merge's "predictions": each task's validation score itself, its own less 0.1 (scaling 1) or
    0.05 (scaling 2) when it is merged with another."""

    def __init__(self, own):
        self.own = own

    def predictions(self, group, merge, split):
        drop = 0.0 if merge.method == OWN else {1.0: 0.1, 2.0: 0.05}[merge.scaling]
        return {t: self.own[t] - drop for t in group}


def test_pairwise_merges_choose_the_setting_with_the_smallest_mean_loss(monkeypatch):
    from scoring_lab.gw import pairwise

    monkeypatch.setattr(pairwise, "split_metrics", lambda task, pred, split, names: {"micro_f1": pred})
    names = ["a", "b", "c"]
    tasks = {t: SimpleNamespace(val=[0] * n) for t, n in zip(names, (10, 20, 30))}
    setup = SimpleNamespace(names=names, tasks=tasks, main="micro_f1", timing={},
                            settings=SimpleNamespace(ties_density=(0.2,), ties_scaling=(1.0, 2.0)),
                            evaluator=_Evaluator({"a": 0.9, "b": 0.8, "c": 0.7}))
    pw = PairwiseMerges(setup)
    grid = pw.grid()
    assert len(grid) == 6 and set(map(tuple, grid[["task_a", "task_b"]].to_numpy())) == set(
        itertools.combinations(names, 2))
    first = grid.iloc[0]
    assert first["val_own"] == pytest.approx((0.9 * 10 + 0.8 * 20) / 30)   # weighted by validation sizes
    choice = pw.choice_table()
    assert choice["chosen"].tolist() == [False, True] and choice["mean_loss"].tolist() == pytest.approx([0.1, 0.05])
    assert pw.chosen().scaling == 2.0
    losses = pw.losses()
    assert (np.diag(losses) == 0).all() and losses.loc["a", "c"] == pytest.approx(0.05)
    assert "pairwise merges (validation)" in setup.timing


def test_task_metrics_equal_the_scikit_learn_reports():
    from scoring_lab import metrics
    from scoring_lab.paired_metrics import task_metrics

    rng = np.random.default_rng(0)
    y, p = (rng.random((50, 4)) < 0.4).astype(int), (rng.random((50, 4)) < 0.4).astype(int)
    names = ("micro_f1", "macro_f1", "exact_match", "per_label_accuracy")
    ours, theirs = task_metrics("multilabel", y, p, names), metrics.multilabel_report(y, p)
    assert ours == pytest.approx({**{n: theirs[n] for n in names}, "n_test": 50})
    yc, pc = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    ours = task_metrics("multiclass", yc, pc, ("qwk", "accuracy", "macro_f1"), 4)
    assert ours == pytest.approx({**metrics.multiclass_report(yc, pc, 4)})
    with pytest.raises(ValueError, match="number of classes"):
        task_metrics("multiclass", yc, pc, ("qwk",))
