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
