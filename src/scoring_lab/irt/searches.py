"""The Evolve step's searches over merge coefficients: which searches run (:class:`SearchRun`, a typed
value that also names each in the tables), what each sees as fitness (the accuracy on every fitness
item, an estimator's from the subset, or one estimate per task), and the runs cached (kind
``irt-search``) with a log of every evaluation, its true fitness beside the one the search saw.

Shapes: k_fit fitness items, k the searches' subset of them, n endpoints (tasks), d IRT dimensions;
a candidate x is (n + 1,), :class:`~scoring_lab.irt.search_space.SearchSpace`'s.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..models.cache import ArtifactCache, array_digest, code_version
from ..profiles.settings import IRTChapterSettings
from . import estimators, evolve
from .calibration import Calibration
from .estimators import ItemParameters
from .evolve import Evolution
from .items import ItemScorer, Recipe, Scored
from .search_space import SearchSpace

SEARCH_KIND = "irt-search"
FULL = "full data"
GA, NSGA_II = "GA", "NSGA-II"


@dataclass(frozen=True)
class SearchRun:
    """One search: pymoo's ``algorithm`` (GA, or NSGA-II with one objective per task) and the ``estimator``
    its fitness uses (None: the accuracy on every fitness item, the full data)."""

    algorithm: str
    estimator: str | None = None

    @property
    def label(self) -> str:
        """The search's name in the tables."""
        if self.estimator is None:
            return f"{self.algorithm}, {FULL} fitness"
        return f"{self.algorithm}, {self.estimator} " + ("per task" if self.algorithm == NSGA_II else "fitness")


@dataclass(frozen=True)
class SearchRuns:
    """The chapter's three searches, in the order they run: the GA on full-data fitness (the expensive upper
    bound), the GA on an estimator's fitness, NSGA-II on an estimator's per task."""

    full: SearchRun
    estimated: SearchRun
    per_task: SearchRun

    @classmethod
    def of(cls, settings: IRTChapterSettings) -> "SearchRuns":
        return cls(SearchRun(GA), SearchRun(GA, settings.ga_estimator), SearchRun(NSGA_II, settings.nsga_estimator))

    def __iter__(self):
        return iter((self.full, self.estimated, self.per_task))


@dataclass(frozen=True)
class SubsetEstimator:
    """``estimator``'s accuracy on the fitness items from answers on the searches' ``subset`` (k,) of them:
    ``items`` the k_fit fitness items' parameters, ``task`` (k_fit,) their task index, ``endpoints`` (n, d)
    the endpoints' fitness-item abilities, ``c`` the g- estimators' mixing."""

    estimator: str
    items: ItemParameters
    task: np.ndarray
    subset: np.ndarray
    endpoints: np.ndarray
    c: float

    def __call__(self, y_sub: np.ndarray, task: int | None = None) -> float:
        """From the answers ``y_sub`` (k,) on the subset: the accuracy on every fitness item, or on task
        ``task``'s alone (estimated from its own subset items)."""
        items, subset = self.items, self.subset
        if task is not None:
            own = np.flatnonzero(self.task == task)
            keep = np.isin(subset, own)
            subset, y_sub = np.searchsorted(own, subset[keep]), y_sub[keep]
            items = items.subset(own)
        return estimators.estimate(self.estimator, y_sub, subset, items, endpoints=self.endpoints, c=self.c)


class Fitness:
    """What a search sees of a candidate x (:meth:`seen`). Every candidate is also scored on all fitness items
    for the record (the search never sees it), and each call adds a row to ``log``: estimated_fitness,
    true_fitness, items_scored, flops, seconds (of what the search's fitness cost), true_<task>."""

    def __init__(self, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray):
        self.space, self.scorer, self.fit_pos = space, scorer, fit_pos
        self.fit_task = scorer.pool.task[fit_pos]
        self.share = np.bincount(self.fit_task, minlength=len(space.group)) / len(fit_pos)   # (n,) per task
        self.log: list[dict] = []

    def seen(self, recipe: Recipe, true_scored: Scored, truth: np.ndarray) -> tuple:
        """(fitness, its summary as one accuracy, what was scored, seconds) of ``recipe``, whose answers on
        every fitness item are ``true_scored`` (``truth`` (k_fit,) as floats)."""
        raise NotImplementedError

    def __call__(self, x) -> float | np.ndarray:
        recipe = self.space.recipe(x)
        true_scored = self.scorer.score(recipe, self.fit_pos)   # the truth, for the record
        truth = true_scored.correct.astype(float)
        value, est, scored, seconds = self.seen(recipe, true_scored, truth)
        self.log.append({"estimated_fitness": float(est), "true_fitness": float(truth.mean()),
                         "items_scored": len(scored.correct), "flops": scored.flops, "seconds": seconds,
                         **{f"true_{t}": float(truth[self.fit_task == j].mean())
                            for j, t in enumerate(self.space.group)}})
        return value


class FullFitness(Fitness):
    """The accuracy on every fitness item: the truth itself."""

    def seen(self, recipe, true_scored, truth):
        value = float(truth.mean())
        return value, value, true_scored, true_scored.seconds


class EstimatedFitness(Fitness):
    """An estimator's accuracy on every fitness item from the candidate's answers on the subset alone."""

    def __init__(self, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray, estimator: SubsetEstimator):
        super().__init__(space, scorer, fit_pos)
        self.estimator, self.sub_pos = estimator, fit_pos[estimator.subset]

    def estimated(self, y: np.ndarray) -> tuple:
        """(fitness, its summary) from the subset's answers ``y`` (k,)."""
        value = self.estimator(y)
        return value, value

    def seen(self, recipe, true_scored, truth):
        scored = self.scorer.score(recipe, self.sub_pos)
        t0 = time.perf_counter()
        y = scored.correct.astype(float)
        value, est = self.estimated(y)
        return value, est, scored, scored.seconds + time.perf_counter() - t0


class PerTaskFitness(EstimatedFitness):
    """One estimate per task (NSGA-II's objectives, (n,)), summarised by their mean weighted by the tasks'
    shares of the fitness items."""

    def estimated(self, y):
        value = np.array([self.estimator(y, j) for j in range(len(self.space.group))])
        return value, float(value @ self.share)


@dataclass(frozen=True)
class SearchResult:
    """A finished search: pymoo's ``evolution``, the ``log`` of its evaluations (:class:`Fitness`'s rows) and
    the ``chosen`` recipe (NSGA-II's: the Pareto member with the best summary)."""

    run: SearchRun
    evolution: Evolution
    log: pd.DataFrame
    chosen: Recipe


class Searches:
    """The searches of a calibrated study over ``space``, their fitness on the fitness items ``fit_pos``
    (k_fit,) or their ``subset`` (k positions into them), the g- estimators at the ``mixing`` chosen."""

    def __init__(self, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray, subset: np.ndarray,
                 calibration: Calibration, mixing: dict[str, float], settings: IRTChapterSettings, seed: int,
                 cache: ArtifactCache):
        self.space, self.scorer, self.fit_pos, self.subset = space, scorer, fit_pos, subset
        self.calibration, self.mixing, self.settings, self.seed, self.cache = calibration, mixing, settings, seed, cache

    def fitness(self, run: SearchRun) -> Fitness:
        """A fresh fitness (empty log) for ``run``."""
        if run.estimator is None:
            return FullFitness(self.space, self.scorer, self.fit_pos)
        estimator = SubsetEstimator(run.estimator, self.calibration.items.subset(self.fit_pos),
                                    self.scorer.pool.task[self.fit_pos], self.subset,
                                    self.calibration.endpoint_fitness_abilities,
                                    self.mixing.get(run.estimator, self.settings.paper_mixing))
        kind = PerTaskFitness if run.algorithm == NSGA_II else EstimatedFitness
        return kind(self.space, self.scorer, self.fit_pos, estimator)

    def _evolve(self, run: SearchRun, fitness: Fitness) -> tuple[Evolution, pd.DataFrame]:
        s, (low, high) = self.settings, self.space.bounds
        if run.algorithm == GA:
            ev = evolve.evolve_single(fitness, len(low), (low, high), s.pop_size, s.generations, self.seed)
        else:
            ev = evolve.evolve_multi(fitness, len(low), len(self.space.group), (low, high), s.pop_size,
                                     s.generations, self.seed)
        return ev, pd.DataFrame(fitness.log)

    def run(self, run: SearchRun) -> SearchResult:
        """``run``'s search, cached (a warm chapter does not rerun it; a cold one finds every model it meets
        again in the correctness cache)."""
        fitness = self.fitness(run)

        def produce(folder):
            ev, frame = self._evolve(run, fitness)
            ev.history.to_csv(folder / "history.csv", index=False)
            frame.to_csv(folder / "log.csv", index=False)
            np.savez(folder / "best.npz", x=ev.best_x, fitness=ev.best_fitness, evaluations=ev.evaluations)

        def load(art):
            z = np.load(art.file("best.npz"))
            return (Evolution(z["x"], z["fitness"], pd.read_csv(art.file("history.csv")), int(z["evaluations"])),
                    pd.read_csv(art.file("log.csv")))

        items = self.calibration.items
        inputs = {"fit": array_digest(items.alpha, items.beta), "settings": asdict(self.settings), "seed": self.seed,
                  "code": code_version(estimators, evolve, Searches, FullFitness, EstimatedFitness, PerTaskFitness,
                                       SubsetEstimator, SearchSpace, ItemScorer),
                  "run": run.label, "subset": self.subset.tolist(),
                  "endpoints": array_digest(self.calibration.endpoint_fitness_abilities), "mixing": self.mixing,
                  "recipes": [self.scorer.evaluator.scorers[t].key for t in self.space.group]}
        (ev, frame), _ = self.cache.get_or_compute(SEARCH_KIND, inputs, produce, load)
        best = ev.best_x if run.algorithm == GA else ev.best_x[int(np.argmax(ev.best_fitness @ fitness.share))]
        return SearchResult(run, ev, frame, self.space.recipe(best))
