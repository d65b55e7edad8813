"""IRT and the estimators of MERGE³: against hand-computed values and on synthetic IRT populations whose
true parameters are known (seeded)."""
import numpy as np
import pytest

from scoring_lab.irt import estimators as irt


def _population(m=40, n_items=400, d=2, seed=0):
    rng = np.random.default_rng(seed)
    items = irt.ItemParameters(np.abs(rng.normal(1.0, 0.4, size=(n_items, d))), rng.normal(0.0, 1.0, size=n_items))
    gamma = rng.normal(0.0, 1.0, size=(m, d))
    y = (rng.random((m, n_items)) < items.prob(gamma)).astype(int)
    return items, gamma, y, rng


def test_the_item_response_curve_matches_a_hand_computed_value():
    alpha, beta = np.array([[2.0, 1.0]]), np.array([0.5])
    p = irt.item_response(np.array([1.0, 0.5]), alpha, beta)          # z = 2 + 0.5 - 0.5 = 2
    assert p.shape == (1,) and p[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert irt.item_response(np.zeros((3, 2)), alpha, beta).shape == (3, 1)


def test_py_irts_form_maps_to_the_papers_eq_1():
    rng = np.random.default_rng(1)
    a, b, theta = np.abs(rng.normal(size=(5, 3))), rng.normal(size=(5, 3)), rng.normal(size=3)
    items = irt.ItemParameters.from_py_irt(a, b)
    py_irt_logit = (a * (theta - b)).sum(axis=1)
    np.testing.assert_allclose(items.prob(theta), 1 / (1 + np.exp(-py_irt_logit)), rtol=1e-10)
    with pytest.raises(ValueError, match=r"alpha must be \(I, d\)"):
        irt.ItemParameters(np.ones(3), np.ones(3))


def test_p_irt_recovers_accuracy_better_than_the_random_mean_on_small_subsets():
    items, gamma, y, rng = _population()
    errors = {irt.RANDOM: [], irt.P_IRT: []}
    for rep in range(60):
        model = rep % len(gamma)
        subset, w = irt.random_subset(len(items), 15, seed=rep)
        truth = y[model].mean()
        for est in errors:
            errors[est].append(abs(irt.estimate(est, y[model, subset], subset, items, w) - truth))
    assert np.mean(errors[irt.P_IRT]) < 0.9 * np.mean(errors[irt.RANDOM])


def test_lambda_fitting_recovers_a_known_mixture_and_mp_irt_uses_it():
    items, gamma, _, rng = _population(n_items=3000, seed=2)
    endpoints = gamma[:2]
    merged = 0.7 * endpoints[0] + 0.3 * endpoints[1]
    y = (rng.random(len(items)) < items.prob(merged)).astype(int)
    lam = irt.fit_lambda(y, items, endpoints)
    np.testing.assert_allclose(lam, [0.7, 0.3], atol=0.1)
    # on a small subset, mp-IRT (two coefficients to fit) estimates the merged model's accuracy better than
    # the subset's mean, averaged over repetitions (how it compares with p-IRT is the chapter's question)
    errors = {irt.RANDOM: [], irt.MP_IRT: []}
    for rep in range(30):
        subset, w = irt.random_subset(len(items), 10, seed=rep)
        for est in errors:
            z = irt.estimate(est, y[subset], subset, items, w, endpoints=endpoints)
            errors[est].append(abs(z - y.mean()))
    means = {k: np.mean(v) for k, v in errors.items()}
    assert means[irt.MP_IRT] < 0.8 * means[irt.RANDOM]


def test_the_generalised_estimators_mix_the_observed_mean_with_weight_c():
    items, gamma, y, _ = _population(seed=3)
    subset, w = irt.random_subset(len(items), 20, seed=0)
    observed = irt.estimate(irt.RANDOM, y[0, subset], subset, items, w)
    p = irt.estimate(irt.P_IRT, y[0, subset], subset, items, w)
    gp = irt.estimate(irt.GP_IRT, y[0, subset], subset, items, w, c=0.25)
    assert gp == pytest.approx(0.25 * observed + 0.75 * p)
    assert irt.estimate(irt.GP_IRT, y[0, subset], subset, items, w, c=1.0) == pytest.approx(observed)
    with pytest.raises(ValueError, match="needs the endpoints"):
        irt.estimate(irt.MP_IRT, y[0, subset], subset, items, w)
    with pytest.raises(ValueError, match="unknown estimator"):
        irt.estimate("q-IRT", y[0, subset], subset, items, w)
    assert irt.choose_mixing({0.0: 0.03, 0.5: 0.02, 1.0: 0.02}) == 0.5


def test_every_estimate_from_one_subset_equals_each_estimators_own():
    items, gamma, y, _ = _population(seed=4)
    subset, w = irt.random_subset(len(items), 20, seed=1)
    ends = gamma[:2]
    found, gammas = irt.subset_estimates(y[0, subset], subset, items, ends, w, (0.0, 0.5))
    assert set(found) == {(irt.RANDOM, None), (irt.P_IRT, None), (irt.MP_IRT, None),
                          *((e, c) for e in (irt.GP_IRT, irt.GMP_IRT) for c in (0.0, 0.5))}
    for (e, c), v in found.items():   # the same float operations: equal, not approximately
        assert v == irt.estimate(e, y[0, subset], subset, items, w, ends, 0.5 if c is None else c)
    assert set(gammas) == {"p", "mp"} and gammas["mp"].shape == (items.dims,)

def test_extractors_give_distinct_items_and_weights_that_sum_to_one():
    items, _, _, rng = _population(seed=4)
    for subset, w in (irt.random_subset(len(items), 12, seed=0),
                      irt.cluster_subset(irt.irt_features(items), 12, seed=0),
                      irt.cluster_subset(rng.normal(size=(len(items), 8)), 12, seed=0)):
        assert len(set(subset.tolist())) == 12 == len(w) and (np.diff(subset) > 0).all()
        assert w.sum() == pytest.approx(1.0) and (w > 0).all()
    with pytest.raises(ValueError, match="a subset of 0"):
        irt.random_subset(10, 0, seed=0)


@pytest.mark.slow
def test_py_irt_fits_a_population_whose_accuracies_it_reproduces():
    items, gamma, y, _ = _population(m=15, n_items=120, seed=5)
    fitted, abilities = irt.fit_items(y, dims=2, epochs=400, seed=0)
    assert len(fitted) == 120 and abilities.shape == (15, 2)
    implied = fitted.prob(abilities).mean(axis=1)
    assert np.corrcoef(implied, y.mean(axis=1))[0, 1] > 0.95
    with pytest.raises(ValueError, match="0/1"):
        irt.fit_items(np.full((2, 3), 2), dims=1)


def test_py_irt_fits_are_seeded_and_leave_the_callers_random_state_alone():
    rng = np.random.default_rng(0)
    y = (rng.random((10, 40)) < 0.5).astype(int)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, _ = irt.fit_items(y, 2, epochs=20, seed=0)
    assert (np.random.get_state()[1] == before).all()
    b, _ = irt.fit_items(y, 2, epochs=20, seed=0)
    c, _ = irt.fit_items(y, 2, epochs=20, seed=1)
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.beta, b.beta)
    assert not np.array_equal(a.alpha, c.alpha)


def test_mp_irt_is_p_irt_where_the_endpoints_span_the_ability_space():
    # one prior for both: mp-IRT only restricts the ability to the endpoints' span, so where that span is the
    # whole space (n >= d, full rank) the two abilities coincide, and only where n < d can they differ
    items, gamma, y, _ = _population(n_items=300, d=2, seed=6)
    prior = irt.AbilityPrior.of_population(gamma)
    subset, _ = irt.random_subset(len(items), 12, seed=0)
    p = irt.ability_estimate(irt.P_IRT, y[0, subset], subset, items, prior=prior)
    for ends in (gamma[1:3], gamma[1:4]):   # two and three endpoints in two dimensions
        assert not irt.constrains(ends)
        mp = irt.ability_estimate(irt.MP_IRT, y[0, subset], subset, items, ends, prior)
        np.testing.assert_allclose(mp, p, atol=1e-4)
    items4, gamma4, y4, _ = _population(n_items=300, d=4, seed=6)
    ends = gamma4[1:3]
    assert irt.constrains(ends)
    p = irt.ability_estimate(irt.P_IRT, y4[0, subset], subset, items4)
    mp = irt.ability_estimate(irt.MP_IRT, y4[0, subset], subset, items4, ends)
    assert np.abs(mp - p).max() > 0.05
    lam = np.linalg.lstsq(ends.T, mp, rcond=None)[0]
    np.testing.assert_allclose(lam @ ends, mp, atol=1e-8)   # mp-IRT's ability lies in the endpoints' span


def _binding_errors(on_span: bool, seed: int = 7, reps: int = 40) -> dict:
    """Mean absolute error of p- and mp-IRT at 10 items over merges of two endpoints in four dimensions whose
    true abilities lie on the endpoints' span (Eq. 2 true) or far off it (Eq. 2 false)."""
    items, gamma, _, rng = _population(m=60, n_items=500, d=4, seed=seed)
    prior = irt.AbilityPrior.of_population(gamma)
    errors = {irt.P_IRT: [], irt.MP_IRT: []}
    for rep in range(reps):
        ends = gamma[2 * rep % 60: 2 * rep % 60 + 2]
        lam = rng.uniform(0.2, 0.8)
        true = lam * ends[0] + (1 - lam) * ends[1]
        if not on_span:
            off = rng.normal(size=4)
            off -= np.linalg.lstsq(ends.T, off, rcond=None)[0] @ ends   # orthogonal to the span
            true = true + 1.5 * off / np.linalg.norm(off)
        y = (rng.random(len(items)) < items.prob(true)).astype(int)
        subset, _ = irt.random_subset(len(items), 10, seed=rep)
        for e in errors:
            errors[e].append(abs(irt.estimate(e, y[subset], subset, items, endpoints=ends, prior=prior) - y.mean()))
    return {e: float(np.mean(v)) for e, v in errors.items()}


def test_where_eq_2_binds_the_constraint_helps_when_it_is_true_and_hurts_when_it_is_false():
    # the comparison the chapter makes can come out either way: it rests on whether merges' abilities are
    # combinations of their endpoints'
    true = _binding_errors(on_span=True)
    assert true[irt.MP_IRT] < 0.9 * true[irt.P_IRT]
    false = _binding_errors(on_span=False)
    assert false[irt.MP_IRT] > false[irt.P_IRT]


def test_the_ability_prior_is_checked_and_standard_by_default():
    prior = irt.AbilityPrior.of_population(np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]))
    np.testing.assert_allclose(prior.mean, [2.0, 1.0])
    np.testing.assert_allclose(prior.sd, [2.0, 0.1])            # a spread of 0 is floored
    assert prior.penalty(np.array([4.0, 1.0])) == pytest.approx(0.5)
    items, _, y, _ = _population(d=2, seed=8)
    subset, _ = irt.random_subset(len(items), 15, seed=0)
    np.testing.assert_allclose(irt.fit_ability(y[0, subset], items.subset(subset)),
                               irt.fit_ability(y[0, subset], items.subset(subset), irt.AbilityPrior.standard(2)))
    with pytest.raises(ValueError, match="a prior of 3 dimension"):
        irt.fit_ability(y[0, subset], items.subset(subset), irt.AbilityPrior.standard(3))
    with pytest.raises(ValueError, match="sd > 0"):
        irt.AbilityPrior(np.zeros(2), np.array([1.0, 0.0]))


def test_representation_features_concatenate_the_endpoints_and_keep_the_variance_asked():
    rng = np.random.default_rng(9)
    base = rng.normal(size=(100, 3))
    embeddings = [base @ rng.normal(size=(3, 16)) + 0.01 * rng.normal(size=(100, 16)) for _ in range(2)]
    x = irt.representation_features(embeddings, 0.9)
    assert x.shape[0] == 100 and 1 <= x.shape[1] <= 3   # three directions carry the variance
    assert irt.representation_features(embeddings, 5).shape == (100, 5)
    assert irt.representation_features(embeddings, 500).shape == (100, 32)   # at most n H


def test_the_dimension_is_chosen_among_those_where_eq_2_binds():
    from scoring_lab.irt.calibration import dimension_table

    by_dims = {}
    for d in (1, 2, 3):
        items, gamma, y, _ = _population(m=6, n_items=200, d=2, seed=10)
        by_dims[d] = irt.ItemParameters(np.column_stack([items.alpha, np.zeros((200, d))])[:, :d], items.beta)
    table = dimension_table(y, by_dims, seed=0, binding_from=3)
    assert table["binds"].tolist() == [False, False, True]
    assert table.loc[table["chosen"], "dims"].item() == 3        # the only one that binds, whatever fits best
    free = dimension_table(y, by_dims, seed=0, binding_from=9)   # none binds: the best fit overall
    assert free.loc[free["chosen"], "dims"].item() == free.loc[free["heldout_loglik"].idxmax(), "dims"]
