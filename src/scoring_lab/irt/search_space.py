"""The models the IRT chapter samples, as recipes: the merge group, the searches' space of merge
coefficients, the seeded random merges (the population, the validation and the held-out models),
the standard merges beside the searches, and the seeded draws of items and population members.

Every draw is seeded by the study's seed and a stream number of its own (1: the population, 2: the
validation models, 3: the held-out models, 5: the population-size study's members, 6: the
searches' fitness subsets, 7: the models the evaluation cost is timed on; 4 is the calibration's
split of the fitness items), so adding a draw moves no other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.task import Task
from ..merging.evaluation import Merge
from ..merging.task_vectors import DENSITY_METHODS
from .items import Recipe

POPULATION_METHODS = ("task_arithmetic", "ties", "dare_ties", "dare_linear", "linear", "slerp")


def resolve_group(tasks: dict[str, Task], group) -> tuple[tuple[str, ...], str]:
    """(the merge group, a note): the profile's tasks, or the source's first ``len(group)`` tasks when it
    lacks some of them."""
    missing = [t for t in group if t not in tasks]
    if not missing:
        return tuple(group), ""
    n = min(len(group), len(tasks))
    if n < 2:
        raise ValueError(f"the IRT chapter merges at least two tasks; this source has {len(tasks)}")
    chosen = tuple(list(tasks)[:n])
    return chosen, f"this source has no task {', '.join(missing)}, so its first {n} tasks are merged"


@dataclass(frozen=True)
class SearchSpace:
    """The merge ``group``'s endpoints and the searches' merge ``method`` (``irt.evolve_method``) over all of
    them: a candidate is x = (a weight per endpoint, then a density per endpoint) (2n,) within
    :attr:`bounds`, the genome of the MERGE3 reference code's DARE-TIES (a weight and a density per model);
    a method without densities ignores the second half. ``seed``: the study's, for the merges' own
    randomness and every draw here."""

    group: tuple[str, ...]
    method: str
    seed: int

    def endpoints(self) -> list[Recipe]:
        """Each task's own scorer, in group order."""
        return [Recipe((t,)) for t in self.group]

    def members_of(self, recipe: Recipe) -> np.ndarray:
        """(n_r,) the group positions of ``recipe``'s members (the rows of the endpoints' abilities mp-IRT
        combines for it)."""
        return np.array([self.group.index(t) for t in recipe.members], dtype=int)

    def recipe(self, x, members=None) -> Recipe:
        """The searches' kind of model of x (2 n_r,): ``method`` over ``members`` (default: every endpoint),
        their weights then their densities, x rounded to 4 decimals."""
        members = self.group if members is None else tuple(members)
        x = np.round(np.asarray(x, dtype=float), 4)
        n = len(members)
        if x.shape != (2 * n,):
            raise ValueError(f"a candidate of {n} members is (weights, densities) of length {2 * n}, got {x.shape}")
        density = tuple(float(v) for v in x[n:]) if self.method in DENSITY_METHODS else 1.0
        return Recipe(members, Merge(self.method, density=density, weights=tuple(float(v) for v in x[:n]),
                                     seed=self.seed))

    @property
    def method_label(self) -> str:
        """The searches' merge method by name ("DARE + TIES")."""
        return self.recipe(np.ones(2 * len(self.group))).merge.label().split(" (")[0]

    def bounds_of(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (2n,): weights in [0, 1], densities in [0.1, 1]."""
        return np.r_[np.zeros(n), np.full(n, 0.1)], np.ones(2 * n)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The searches' bounds, over every endpoint (:meth:`bounds_of`)."""
        return self.bounds_of(len(self.group))

    def random_recipes(self, count: int, stream: int, sizes=None) -> list[Recipe]:
        """``count`` recipes of the searches' kind, x drawn uniformly within the bounds (seeded by ``stream``);
        the j-th merges ``sizes[j % len(sizes)]`` endpoints drawn at random (default: every endpoint)."""
        rng = np.random.default_rng([self.seed, stream])
        sizes = tuple(sizes or (len(self.group),))
        out = []
        for j in range(count):
            k = sizes[j % len(sizes)]
            members = tuple(self.group[i] for i in np.sort(rng.choice(len(self.group), size=k, replace=False)))
            low, high = self.bounds_of(k)
            out.append(self.recipe(rng.uniform(low, high), members))
        return out

    @property
    def merge_sizes(self) -> tuple[int, ...]:
        """How many endpoints the validation and held-out merges take, in turn: every size from 2 to n, so that
        pairs, whose two abilities span less of the ability space, are among them (the paper's Fig. 3 merges
        two endpoints)."""
        return tuple(range(2, len(self.group) + 1))

    def validation(self, count: int) -> list[Recipe]:
        """The models the dimension and c are chosen on."""
        return self.random_recipes(count, 2, self.merge_sizes)

    def held_out(self, count: int) -> list[Recipe]:
        """The merged models the estimators are judged on."""
        return self.random_recipes(count, 3, self.merge_sizes)

    def population(self, merges: int) -> list[Recipe]:
        """The endpoints, the pre-trained encoder and ``merges`` random merges (method, members, weights,
        density drawn at random, seeded)."""
        rng = np.random.default_rng([self.seed, 1])
        out = [*self.endpoints(), Recipe(())]
        while len(out) < merges + len(self.group) + 1:
            method = str(rng.choice(POPULATION_METHODS))
            k = 2 if method == "slerp" else int(rng.integers(1, len(self.group) + 1))
            if k == 1:
                method = "task_arithmetic"   # one endpoint at weight w: theta_0 + w tau, a checkpoint stand-in
            members = tuple(sorted(rng.choice(len(self.group), size=k, replace=False)))
            weights = tuple(float(w) for w in np.round(rng.uniform(0.1, 1.0, size=k), 3))
            density = float(np.round(rng.uniform(0.1, 1.0), 3))
            out.append(Recipe(tuple(self.group[i] for i in members),
                              Merge(method, density=density, weights=weights, seed=int(rng.integers(10 ** 6)))))
        return out

    def baselines(self, density: float) -> dict[str, Recipe]:
        """{name: recipe}: the standard merges at their default coefficients (weights 1, ``density``) and the
        endpoints."""
        out = {"task arithmetic": Recipe(self.group, Merge("task_arithmetic", scaling=1.0)),
               "TIES": Recipe(self.group, Merge("ties", density=density)),
               "DARE + TIES": Recipe(self.group, Merge("dare_ties", density=density, seed=self.seed))}
        out.update({f"endpoint: {t}": r for t, r in zip(self.group, self.endpoints())})
        return out

    def fitness_subset(self, fit_task: np.ndarray, per_task: int, replicate: int = 0) -> np.ndarray:
        """(k,) a search's subset, positions into the fitness items: ``per_task`` random ones of each task
        (``fit_task`` (k_fit,) the fitness items' task index), sorted within each task; each ``replicate`` and
        size draws its own."""
        rng = np.random.default_rng([self.seed, 6, replicate, per_task])
        parts = [np.sort(rng.choice(np.flatnonzero(fit_task == j), size=min(per_task, int((fit_task == j).sum())),
                                    replace=False)) for j in range(len(self.group))]
        return np.concatenate(parts)

    def population_members(self, models: int, sizes) -> dict[int, np.ndarray | None]:
        """{population size: the rows refitted (None: all)} of a population of ``models`` (:meth:`population`'s
        order) for each of ``sizes`` and the whole: the endpoints and the pre-trained encoder always in, the
        rest a seeded draw of the random merges."""
        fixed = len(self.group) + 1
        out = {}
        for size in sorted({*(min(k, models) for k in sizes), models}):
            extra = np.random.default_rng([self.seed, 5, size]).choice(np.arange(fixed, models),
                                                                         size=max(size - fixed, 0), replace=False)
            out[size] = None if size == models else np.r_[np.arange(min(fixed, size)), np.sort(extra)]
        return out
