"""GW distances, similarities and merge plans (the GW-SMM chapter's library)."""
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import special_ortho_group

from scoring_lab.gw import gromov, merge_plans


def _cloud(n=60, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) * np.array([3, 2, 1, 0.5, 0.2])[:d]


@pytest.mark.parametrize("method", [gromov.CONDITIONAL_GRADIENT, pytest.param(gromov.ENTROPIC, marks=pytest.mark.slow)])
def test_a_cloud_is_at_zero_from_itself_and_from_an_isometric_copy(method):
    x = _cloud()
    rotated = x @ special_ortho_group.rvs(5, random_state=1) + 7.0                    # rotated, moved
    copy = (rotated * 4.0)[np.random.default_rng(2).permutation(len(x))]              # scaled, permuted
    settings = gromov.GWSettings(method=method)
    other = gromov.gw_distance(gromov.cost_matrix(x), gromov.cost_matrix(_cloud(seed=5) ** 3), settings).distance
    self_d = gromov.gw_distance(gromov.cost_matrix(x), gromov.cost_matrix(x), settings).distance
    copy_d = gromov.gw_distance(gromov.cost_matrix(x), gromov.cost_matrix(copy), settings)
    assert copy_d.marginal_error < 1e-3 and other > 1e-3
    if method == gromov.CONDITIONAL_GRADIENT:
        assert self_d < 1e-6 and copy_d.distance < 1e-6
    else:   # entropic GW is biased upward by about epsilon (its coupling is blurred), the same for both
        assert self_d < 2 * settings.epsilon < other / 2
        assert copy_d.distance == pytest.approx(self_d, rel=1e-3)


def test_the_coupling_keeps_its_marginals_and_a_non_converged_run_is_an_error():
    c1, c2 = gromov.cost_matrix(_cloud(40)), gromov.cost_matrix(_cloud(30, seed=3))
    r = gromov.gw_distance(c1, c2, gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT))
    np.testing.assert_allclose(r.coupling.sum(axis=1), 1 / 40, atol=1e-9)
    np.testing.assert_allclose(r.coupling.sum(axis=0), 1 / 30, atol=1e-9)
    with pytest.raises(gromov.GWError, match="did not converge in 10 iterations"):
        gromov.gw_distance(c1, c2, gromov.GWSettings(epsilon=1e-4, max_iter=10, tol=1e-12), "a vs b")


def test_the_conditional_gradient_solver_stopped_at_its_limit_is_an_error_and_converged_it_is_not():
    c1, c2 = gromov.cost_matrix(_cloud(40)), gromov.cost_matrix(_cloud(30, seed=3) ** 3)
    cg = gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT)
    done = gromov.gw_distance(c1, c2, cg)
    assert 1 < done.iterations < cg.max_iter
    with pytest.raises(gromov.GWError, match=r"conditional-gradient GW \(a vs b\) did not converge in 2 iterations"):
        gromov.gw_distance(c1, c2, gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT, max_iter=2), "a vs b")
    # POT's stopping rule: a relative or an absolute change below the tolerance
    assert gromov.cg_converged([1.0, 0.5, 0.5 + 1e-12]) and gromov.cg_converged([3.0, 1e-12, 0.0])
    assert not gromov.cg_converged([1.0, 0.5, 0.4]) and gromov.cg_converged([0.7])
    assert gromov.LABELS[gromov.CONDITIONAL_GRADIENT] == "non-entropic GW (conditional gradient, local)"


def test_a_solve_that_warned_but_met_its_marginals_is_kept_and_its_warning_counted():
    """An inner Sinkhorn loop at its limit (20 iterations) while the coupling meets its marginals: the
    distance stands, and the pair's warning is in the result's table, not dropped."""
    feats = {"a": _cloud(40), "b": _cloud(30, seed=3) ** 3, "c": _cloud(35, seed=4)}
    short = gromov.GWSettings(epsilon=0.05, sinkhorn_iter=20, tol=1e-7)
    r = gromov.gw_distance(gromov.cost_matrix(feats["a"]), gromov.cost_matrix(feats["b"]), short)
    assert r.solver_warnings == ["Sinkhorn did not converge"] and r.marginal_error < short.marginal_tol
    result = gromov.pairwise_gw(feats, short, progress=False)
    assert list(result.warnings.columns) == gromov.WARNING_COLUMNS
    assert ("a", "b", "Sinkhorn did not converge") in set(map(tuple, result.warnings.to_numpy()))
    assert 1 <= result.pairs_warned <= 3
    pd.testing.assert_frame_equal(result.distance, gromov.pairwise_distances(feats, short, progress=False))
    clean = gromov.pairwise_gw(feats, gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT), progress=False)
    assert clean.pairs_warned == 0 and clean.warnings.empty


def test_degenerate_clouds_give_a_clear_error_or_a_defined_value():
    bad = _cloud()
    bad[[3, 8]] = np.nan
    with pytest.raises(gromov.GWError, match=r"task_x: 2 response\(s\) have NaN .* rows \[3, 8\]"):
        gromov.cost_matrix(bad, "task_x")
    with pytest.raises(gromov.GWError, match="at least 2 responses, got 1"):
        gromov.cost_matrix(np.ones((1, 4)), "one")
    same = np.ones((10, 4))
    np.testing.assert_array_equal(gromov.cost_matrix(same), np.zeros((10, 10)))     # identical points: all zeros
    d = gromov.gw_distance(gromov.cost_matrix(same), gromov.cost_matrix(same),
                           gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT))
    assert d.distance == pytest.approx(0.0, abs=1e-12)


def test_pairwise_distances_are_symmetric_with_a_zero_diagonal_and_subsampling_is_seeded():
    feats = {f"t{i}": _cloud(50, seed=i) ** (1 + i % 2) for i in range(3)}
    s = gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT, max_points=30)
    d = gromov.pairwise_distances(feats, s, progress=False)
    assert list(d.index) == list(d.columns) == ["t0", "t1", "t2"]
    np.testing.assert_allclose(d.to_numpy(), d.to_numpy().T)
    assert (np.diag(d) == 0).all() and (d.to_numpy()[~np.eye(3, dtype=bool)] > 0).all()
    pd.testing.assert_frame_equal(d, gromov.pairwise_distances(feats, s, progress=False))
    assert len(gromov.subsample(feats["t0"], 30)) == 30
    # subsamples of one seed are nested: each smaller one lies inside every larger one
    small, mid, large = (set(gromov.subsample_rows(300, k, seed=4)) for k in (100, 200, 250))
    assert len(small) == 100 and small <= mid <= large and set(gromov.subsample_rows(300, 300)) == set(range(300))
    assert set(gromov.subsample_rows(300, 100, seed=5)) != small                     # and seeded


def test_similarity_rescales_the_off_diagonal_to_zero_one():
    d = pd.DataFrame([[0, 1, 3], [1, 0, 2], [3, 2, 0]], index=list("abc"), columns=list("abc"), dtype=float)
    s = gromov.similarity(d)
    np.testing.assert_allclose(s.to_numpy(), [[1, 1, 0], [1, 1, 0.5], [0, 0.5, 1]])
    np.testing.assert_array_equal(gromov.similarity(pd.DataFrame(1 - np.eye(3))), np.ones((3, 3)))  # all alike
    np.testing.assert_array_equal(gromov.similarity(pd.DataFrame([[0, 2.0], [2.0, 0]])), np.ones((2, 2)))  # one pair
    with pytest.raises(ValueError, match="NaN"):
        gromov.similarity(pd.DataFrame([[0, np.nan, 1], [np.nan, 0, 1], [1, 1, 0]]))


def test_partitions_are_all_there_once_each():
    stirling = {(4, 2): 7, (5, 3): 25, (9, 5): 6951}
    for (n, k), count in stirling.items():
        plans = list(merge_plans.partitions([str(i) for i in range(n)], k))
        assert len(plans) == count == len({frozenset(frozenset(g) for g in p) for p in plans})
        assert all(len(p) == k and sorted(sum(p, ())) == sorted(str(i) for i in range(n)) for p in plans)


def test_best_plan_matches_brute_force_over_label_assignments():
    rng = np.random.default_rng(0)
    names = list("abcdef")
    a = rng.uniform(size=(6, 6))
    sim = pd.DataFrame((a + a.T) / 2, index=names, columns=names)
    plan, score = merge_plans.best_plan(sim, 3)
    brute = -np.inf
    for labels in itertools.product(range(3), repeat=6):
        if len(set(labels)) != 3:
            continue
        groups = tuple(tuple(n for n, l in zip(names, labels) if l == g) for g in range(3))
        brute = max(brute, merge_plans.plan_score(groups, sim))
    assert score == pytest.approx(brute)
    assert merge_plans.plan_score(plan, sim) == pytest.approx(score)
    assert merge_plans.format_plan((("a", "b"), ("c",), ("d", "e", "f"))) == "(a, b), (d, e, f)"


def test_a_solver_that_breaks_down_numerically_is_an_error_not_a_number():
    c1, c2 = gromov.cost_matrix(_cloud(40)), gromov.cost_matrix(_cloud(30, seed=3))
    with pytest.raises(gromov.GWError, match="raise epsilon"):
        gromov.gw_distance(c1, c2, gromov.GWSettings(epsilon=1e-5, max_iter=1000, sinkhorn_iter=50))


def test_a_group_cap_limits_the_partitions_and_the_plan():
    names = [str(i) for i in range(6)]
    capped = list(merge_plans.partitions(names, 3, max_size=2))
    assert len(capped) == 15 and all(max(len(g) for g in p) == 2 for p in capped)   # perfect matchings of 6
    sim = pd.DataFrame(0.0, index=names, columns=names)
    sim.loc[["0", "1", "2", "3"], ["0", "1", "2", "3"]] = 1.0
    free, _ = merge_plans.best_plan(sim, 3)
    assert max(len(g) for g in free) == 4                          # one big group holds six pairs
    plan, score = merge_plans.best_plan(sim, 3, max_size=2)
    assert max(len(g) for g in plan) == 2 and score == 2.0
    with pytest.raises(ValueError, match="do not fit"):
        list(merge_plans.partitions(names, 2, max_size=2))


def test_a_plan_from_groups_keeps_the_rest_alone_and_refuses_bad_groups():
    plan = merge_plans.plan_from_groups(list("abcde"), [["d", "b"]])
    assert plan == (("a",), ("b", "d"), ("c",), ("e",))
    assert merge_plans.plan_labels(plan, list("abcde")) == [0, 1, 2, 1, 3]
    with pytest.raises(ValueError, match="unknown task"):
        merge_plans.plan_from_groups(list("abc"), [["a", "z"]])
    with pytest.raises(ValueError, match="two groups"):
        merge_plans.plan_from_groups(list("abc"), [["a", "b"], ["b", "c"]])


@pytest.mark.slow
def test_pairs_solved_in_two_processes_give_the_same_matrix():
    feats = {f"t{i}": _cloud(30, seed=i) ** (1 + i % 2) for i in range(3)}
    s = gromov.GWSettings(method=gromov.CONDITIONAL_GRADIENT)
    pd.testing.assert_frame_equal(gromov.pairwise_distances(feats, s, progress=False),
                                  gromov.pairwise_distances(feats, s, progress=False, workers=2))
