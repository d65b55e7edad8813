"""The Evolve step of MERGE³: evolutionary search over merge coefficients with pymoo.

* :func:`evolve_single`: a genetic algorithm (pymoo's GA: simulated binary crossover, polynomial
  mutation) maximising one fitness of a coefficient vector x (n_var,) within ``bounds``.
* :func:`evolve_multi`: NSGA-II maximising several fitnesses at once (one per task of a multi-task
  merge); the result holds the Pareto front.

Fitness functions return values to maximise (pymoo minimises, so they are negated inside). Every
evaluation is recorded (generation, individual, x, fitness), so a chapter can compare the estimated
fitness the search saw with the true one of the same models afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd


@dataclass
class Evolution:
    """What a run found: the best x (single objective) or the Pareto set (multi), and every evaluation
    (``history``: generation, individual, x_0..x_{n-1}, fitness or fitness_0.., in evaluation order)."""

    best_x: np.ndarray                # (n_var,), or (p, n_var) Pareto set
    best_fitness: np.ndarray          # (), or (p, n_obj) Pareto front
    history: pd.DataFrame
    evaluations: int


def _problem(fitness: Callable[[np.ndarray], np.ndarray], n_var: int, n_obj: int, bounds, log: list):
    from pymoo.core.problem import ElementwiseProblem

    low, high = (np.full(n_var, float(b)) for b in bounds) if np.isscalar(bounds[0]) else map(np.asarray, bounds)

    class Merge(ElementwiseProblem):
        def __init__(self):
            super().__init__(n_var=n_var, n_obj=n_obj, xl=low, xu=high)
            self.generation = 0

        def _evaluate(self, x, out, *args, **kwargs):
            f = np.atleast_1d(np.asarray(fitness(np.asarray(x, dtype=float)), dtype=float))
            if f.shape != (n_obj,):
                raise ValueError(f"the fitness returned {f.shape[0]} value(s), {n_obj} expected")
            log.append((self.generation, np.array(x, dtype=float), f))
            out["F"] = -f

    return Merge()


def _run(algorithm, problem, generations: int, seed: int, log: list) -> object:
    from pymoo.core.callback import Callback
    from pymoo.optimize import minimize

    class NextGeneration(Callback):
        def notify(self, algo):
            problem.generation = int(algo.n_gen)

    return minimize(problem, algorithm, ("n_gen", generations), seed=seed, callback=NextGeneration(),
                    verbose=False)


def _history(log: list) -> pd.DataFrame:
    rows = []
    counts: dict[int, int] = {}
    for gen, x, f in log:
        k = counts.get(gen, 0)
        counts[gen] = k + 1
        row = {"generation": gen, "individual": k, **{f"x_{j}": float(v) for j, v in enumerate(x)}}
        row.update({"fitness": float(f[0])} if len(f) == 1 else {f"fitness_{j}": float(v) for j, v in enumerate(f)})
        rows.append(row)
    return pd.DataFrame(rows)


def evolve_single(fitness: Callable[[np.ndarray], float], n_var: int, bounds=(0.0, 1.0), pop_size: int = 10,
                  generations: int = 10, seed: int = 0, eta_crossover: float = 15.0,
                  eta_mutation: float = 20.0) -> Evolution:
    """pymoo's GA (SBX crossover, polynomial mutation) maximising ``fitness(x)``, x (n_var,) in ``bounds``
    ((low, high) scalars or per-variable arrays), for ``generations`` generations of ``pop_size``."""
    from pymoo.algorithms.soo.nonconvex.ga import GA
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM

    log: list = []
    problem = _problem(fitness, n_var, 1, bounds, log)
    algorithm = GA(pop_size=pop_size, crossover=SBX(eta=eta_crossover, prob=0.9), mutation=PM(eta=eta_mutation),
                   eliminate_duplicates=True)
    res = _run(algorithm, problem, generations, seed, log)
    return Evolution(np.asarray(res.X, dtype=float), -np.asarray(res.F, dtype=float).reshape(()),
                     _history(log), len(log))


def evolve_multi(fitness: Callable[[np.ndarray], np.ndarray], n_var: int, n_obj: int, bounds=(0.0, 1.0),
                 pop_size: int = 10, generations: int = 10, seed: int = 0) -> Evolution:
    """NSGA-II maximising the ``n_obj`` values of ``fitness(x)`` together; ``best_x`` / ``best_fitness``
    are the final Pareto set (p, n_var) and front (p, n_obj)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM

    log: list = []
    problem = _problem(fitness, n_var, n_obj, bounds, log)
    algorithm = NSGA2(pop_size=pop_size, crossover=SBX(eta=15.0, prob=0.9), mutation=PM(eta=20.0),
                      eliminate_duplicates=True)
    res = _run(algorithm, problem, generations, seed, log)
    return Evolution(np.atleast_2d(np.asarray(res.X, dtype=float)), -np.atleast_2d(np.asarray(res.F, dtype=float)),
                     _history(log), len(log))


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """(p,) True for the rows of ``points`` (p, k) that no other row beats on every objective (maximising)."""
    p = np.asarray(points, dtype=float)
    out = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        dominated = np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1)
        out[i] = not dominated.any()
    return out


def random_search(fitness: Callable[[np.ndarray], float], n_var: int, bounds=(0.0, 1.0), evaluations: int = 10,
                  seed: int = 0) -> Evolution:
    """The control for the GA: ``evaluations`` candidates x (n_var,) drawn uniformly within ``bounds`` (seeded),
    each scored by ``fitness`` once, the best kept; no selection, crossover or mutation. Its history has
    generation 0 throughout."""
    low, high = (np.full(n_var, float(b)) for b in bounds) if np.isscalar(bounds[0]) else map(np.asarray, bounds)
    xs = np.random.default_rng(seed).uniform(low, high, size=(evaluations, n_var))
    log = [(0, x, np.atleast_1d(float(fitness(x)))) for x in xs]
    best = int(np.argmax([f[0] for _, _, f in log]))
    return Evolution(xs[best], np.asarray(log[best][2][0]), _history(log), len(log))
