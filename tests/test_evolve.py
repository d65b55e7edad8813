"""The Evolve step: pymoo's GA and NSGA-II on toy fitnesses whose optimum is known."""
import numpy as np
import pytest

from scoring_lab.irt import evolve

TARGET = np.array([0.2, 0.7, 0.5])


def _fitness(x):
    return -float(((x - TARGET) ** 2).sum())


def test_the_ga_improves_a_known_fitness_and_records_every_evaluation():
    run = evolve.evolve_single(_fitness, 3, bounds=(0.0, 1.0), pop_size=12, generations=15, seed=0)
    h = run.history
    assert run.evaluations == len(h) and {"generation", "individual", "x_0", "x_2", "fitness"} <= set(h.columns)
    first = h[h["generation"] == h["generation"].min()]["fitness"].max()
    assert run.best_fitness > first and run.best_fitness > -0.01
    np.testing.assert_allclose(run.best_x, TARGET, atol=0.1)
    again = evolve.evolve_single(_fitness, 3, pop_size=12, generations=15, seed=0)
    assert np.array_equal(again.best_x, run.best_x)                      # seeded


def test_nsga2_returns_a_front_no_member_of_which_beats_another():
    def two(x):   # each objective wants x at a different corner: a trade-off
        return np.array([-float(((x - 0.0) ** 2).sum()), -float(((x - 1.0) ** 2).sum())])

    run = evolve.evolve_multi(two, 2, 2, pop_size=16, generations=12, seed=0)
    assert run.best_fitness.shape[1] == 2 and len(run.best_x) == len(run.best_fitness) >= 3
    assert evolve.pareto_mask(run.best_fitness).all()
    assert {"fitness_0", "fitness_1"} <= set(run.history.columns)
    assert evolve.pareto_mask(np.array([[1.0, 1.0], [0.5, 2.0], [0.4, 0.9]])).tolist() == [True, True, False]


def test_a_fitness_of_the_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="returned 1 value"):
        evolve.evolve_multi(lambda x: np.array([1.0]), 2, 2, pop_size=4, generations=1)


def test_random_search_draws_the_budget_uniformly_and_keeps_the_best():
    seen = []

    def objective(x):
        return -float(((x - 0.3) ** 2).sum())

    def fitness(x):
        seen.append(x.copy())
        return objective(x)

    ev = evolve.random_search(fitness, 2, (0.0, 1.0), evaluations=30, seed=1)
    assert ev.evaluations == 30 == len(ev.history) and set(ev.history["generation"]) == {0}
    best = max(seen, key=objective)
    np.testing.assert_allclose(ev.best_x, best)
    assert float(ev.best_fitness) == pytest.approx(objective(best))
    assert (np.array(seen) >= 0).all() and (np.array(seen) <= 1).all()
    again = evolve.random_search(objective, 2, (0.0, 1.0), evaluations=30, seed=1)
    np.testing.assert_array_equal(again.best_x, ev.best_x)
