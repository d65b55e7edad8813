"""The Evolve step's searches over merge coefficients: which searches run (:class:`SearchRun`, a typed
value that also names each in the tables), what each sees as fitness (the accuracy on every fitness
item, an estimator's from a subset, the subset's plain mean, or one estimate per task), each arm over
replicates (a GA seed and a fitness subset each), and the runs cached (kind ``irt-search``) with a log
of every evaluation, its true fitness beside the one the search saw where recorded.

Shapes: k_fit fitness items, k a search's subset of them, n endpoints (tasks), d IRT dimensions;
a candidate x is (2n,), :class:`~scoring_lab.irt.search_space.SearchSpace`'s.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from ..models.cache import ArtifactCache, array_digest, code_version
from ..profiles.settings import IRTChapterSettings
from . import estimators, evolve
from .calibration import Calibration
from .estimators import AbilityPrior, ItemParameters
from .evolve import Evolution
from .items import ItemScorer, Recipe
from .search_space import SearchSpace

SEARCH_KIND = "irt-search"
FULL = "full data"
GA, NSGA_II, RANDOM_SEARCH = "GA", "NSGA-II", "random search"
SUBSET_MEAN = "subset mean"


@dataclass(frozen=True)
class SearchRun:
    """One search: its ``algorithm`` (pymoo's GA, NSGA-II with one objective per task, or random search: as many
    uniform draws as the GA evaluates, the best kept), the ``estimator`` its
    fitness uses (None: the accuracy on every fitness item, the full data; ``"random"``: the subset's plain
    mean), its ``replicate`` (its own GA seed and fitness subset) and ``per_task`` items per task in its
    subset (None: the profile's ``fitness_items``)."""

    algorithm: str
    estimator: str | None = None
    replicate: int = 0
    per_task: int | None = None

    @property
    def arm(self) -> str:
        """The search's kind, its name in the tables (replicates share it)."""
        if self.estimator is None:
            return f"{self.algorithm}, {FULL} fitness"
        name = SUBSET_MEAN if self.estimator == "random" else self.estimator
        return f"{self.algorithm}, {name} " + ("per task" if self.algorithm == NSGA_II else "fitness")

    @property
    def label(self) -> str:
        """The arm, with the subset's size when it is not the profile's."""
        return self.arm if self.per_task is None else f"{self.arm}, {self.per_task} items per task"

    def at(self, replicate: int) -> "SearchRun":
        return replace(self, replicate=int(replicate))


@dataclass(frozen=True)
class SearchRuns:
    """The chapter's searches: the GA on full-data fitness (the expensive upper bound), the GA on an estimator's
    fitness, the GA on the same subset's plain mean (the control that separates IRT from subsetting), random
    search with the estimator's fitness on the same subset and budget (the control that separates evolution
    from sampling), NSGA-II on an estimator's per task, each over ``replicates``; and the subset-size sweep: the estimator's GA at each of
    ``sweep`` items per task (the profile's ``fitness_items`` among them: the arm itself)."""

    full: SearchRun
    estimated: SearchRun
    subset_mean: SearchRun
    sampled: SearchRun
    per_task: SearchRun
    replicates: int = 1
    sweep: tuple[int, ...] = ()

    @classmethod
    def of(cls, settings: IRTChapterSettings, fit_counts=()) -> "SearchRuns":
        """The runs of ``settings``; ``fit_counts``: the fitness items per task; a share of the sweep takes that
        share of their mean per task (at least 1, at most the smallest task's)."""
        per_task = [min(max(1, int(round(share * float(np.mean(fit_counts))))), int(min(fit_counts)))
                    for share in settings.sweep_shares] if len(fit_counts) else []
        sweep = tuple(sorted({settings.fitness_items, *per_task})) if per_task else ()
        return cls(SearchRun(GA), SearchRun(GA, settings.ga_estimator), SearchRun(GA, "random"),
                   SearchRun(RANDOM_SEARCH, settings.ga_estimator), SearchRun(NSGA_II, settings.nsga_estimator),
                   settings.search_seeds, sweep)

    @property
    def arms(self) -> tuple[SearchRun, ...]:
        return self.full, self.estimated, self.subset_mean, self.sampled, self.per_task

    def sweep_runs(self, fitness_items: int) -> list[SearchRun]:
        """The estimator's GA at each sweep size, replicate 0 (the profile's own size is the arm itself)."""
        return [self.estimated if k == fitness_items else replace(self.estimated, per_task=k) for k in self.sweep]

    def __iter__(self):
        """Every arm's every replicate, arm by arm."""
        return iter([arm.at(r) for arm in self.arms for r in range(self.replicates)])


@dataclass(frozen=True)
class SubsetEstimator:
    """``estimator``'s accuracy on the fitness items from answers on a search's ``subset`` (k,) of them:
    ``items`` the k_fit fitness items' parameters, ``task`` (k_fit,) their task index, ``endpoints`` (n, d)
    the endpoints' fitness-item abilities, ``c`` the g- estimators' mixing, ``prior`` the abilities'."""

    estimator: str
    items: ItemParameters
    task: np.ndarray
    subset: np.ndarray
    endpoints: np.ndarray
    c: float
    prior: AbilityPrior | None = None

    def __call__(self, y_sub: np.ndarray, task: int | None = None) -> float:
        """From the answers ``y_sub`` (k,) on the subset: the accuracy on every fitness item, or on task
        ``task``'s alone (estimated from its own subset items)."""
        items, subset = self.items, self.subset
        if task is not None:
            own = np.flatnonzero(self.task == task)
            keep = np.isin(subset, own)
            subset, y_sub = np.searchsorted(own, subset[keep]), y_sub[keep]
            items = items.subset(own)
        return estimators.estimate(self.estimator, y_sub, subset, items, endpoints=self.endpoints, c=self.c,
                                   prior=self.prior)


class Fitness:
    """What a search sees of a candidate x (:meth:`seen`). Each call adds a row to ``log``: estimated_fitness,
    items_scored and flops (what the fitness scored), estimator_seconds (its fit, measured), and, when
    ``record_truth``, true_fitness and true_<task>: the candidate's accuracy on all fitness items, for the
    record (the search never sees it; NaN when not recorded)."""

    def __init__(self, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray, record_truth: bool = True):
        self.space, self.scorer, self.fit_pos, self.record_truth = space, scorer, fit_pos, record_truth
        self.fit_task = scorer.pool.task[fit_pos]
        self.share = np.bincount(self.fit_task, minlength=len(space.group)) / len(fit_pos)   # (n,) per task
        self.log: list[dict] = []

    def seen(self, recipe: Recipe) -> tuple:
        """(fitness, its summary as one accuracy, what was scored, the estimator's seconds) of ``recipe``."""
        raise NotImplementedError

    def __call__(self, x) -> float | np.ndarray:
        recipe = self.space.recipe(x)
        value, est, scored, seconds = self.seen(recipe)
        truth = scored.correct.astype(float) if len(scored.correct) == len(self.fit_pos) else \
            self.scorer.score(recipe, self.fit_pos).correct.astype(float) if self.record_truth else None
        self.log.append({"estimated_fitness": float(est),
                         "true_fitness": float(truth.mean()) if truth is not None else np.nan,
                         "items_scored": len(scored.correct), "flops": scored.flops, "estimator_seconds": seconds,
                         **{f"true_{t}": float(truth[self.fit_task == j].mean()) if truth is not None else np.nan
                            for j, t in enumerate(self.space.group)}})
        return value


class FullFitness(Fitness):
    """The accuracy on every fitness item: the truth itself."""

    def seen(self, recipe):
        scored = self.scorer.score(recipe, self.fit_pos)
        value = float(scored.correct.mean())
        return value, value, scored, 0.0


class EstimatedFitness(Fitness):
    """An estimator's accuracy on every fitness item from the candidate's answers on the subset alone."""

    def __init__(self, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray, estimator: SubsetEstimator,
                 record_truth: bool = True):
        super().__init__(space, scorer, fit_pos, record_truth)
        self.estimator, self.sub_pos = estimator, fit_pos[estimator.subset]

    def estimated(self, y: np.ndarray) -> tuple:
        """(fitness, its summary) from the subset's answers ``y`` (k,)."""
        value = self.estimator(y)
        return value, value

    def seen(self, recipe):
        scored = self.scorer.score(recipe, self.sub_pos)
        t0 = time.perf_counter()
        value, est = self.estimated(scored.correct.astype(float))
        return value, est, scored, time.perf_counter() - t0


class PerTaskFitness(EstimatedFitness):
    """One estimate per task (NSGA-II's objectives, (n,)), summarised by their mean weighted by the tasks'
    shares of the fitness items."""

    def estimated(self, y):
        value = np.array([self.estimator(y, j) for j in range(len(self.space.group))])
        return value, float(value @ self.share)


@dataclass(frozen=True)
class SearchResult:
    """A finished search: pymoo's ``evolution``, the ``log`` of its evaluations (:class:`Fitness`'s rows), its
    fitness ``subset`` (positions into the fitness items; empty for full data) and the ``chosen`` recipe
    (NSGA-II's: the Pareto member with the best summary)."""

    run: SearchRun
    evolution: Evolution
    log: pd.DataFrame
    subset: np.ndarray
    chosen: Recipe


class Searches:
    """The searches of a calibrated study over ``space``, their fitness on the fitness items ``fit_pos``
    (k_fit,) or a subset of them (``subset_of(replicate, per_task)``: positions into them), the g-
    estimators at the ``mixing`` chosen; every evaluation's truth recorded for replicate 0 only."""

    def __init__(self, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray, subset_of,
                 calibration: Calibration, mixing: dict[str, float], settings: IRTChapterSettings, seed: int,
                 cache: ArtifactCache):
        self.space, self.scorer, self.fit_pos, self.subset_of = space, scorer, fit_pos, subset_of
        self.calibration, self.mixing, self.settings, self.seed, self.cache = calibration, mixing, settings, seed, cache

    def subset(self, run: SearchRun) -> np.ndarray:
        if run.estimator is None:
            return np.zeros(0, dtype=int)
        return self.subset_of(run.replicate, run.per_task or self.settings.fitness_items)

    def fitness(self, run: SearchRun) -> Fitness:
        """A fresh fitness (empty log) for ``run``."""
        record = run.replicate == 0 and run.per_task is None
        if run.estimator is None:
            return FullFitness(self.space, self.scorer, self.fit_pos, record)
        estimator = SubsetEstimator(run.estimator, self.calibration.items.subset(self.fit_pos),
                                    self.scorer.pool.task[self.fit_pos], self.subset(run),
                                    self.calibration.endpoint_fitness_abilities,
                                    self.mixing.get(run.estimator, self.settings.paper_mixing), self.calibration.prior)
        kind = PerTaskFitness if run.algorithm == NSGA_II else EstimatedFitness
        return kind(self.space, self.scorer, self.fit_pos, estimator, record)

    def _evolve(self, run: SearchRun, fitness: Fitness) -> tuple[Evolution, pd.DataFrame]:
        s, (low, high) = self.settings, self.space.bounds
        seed = self.seed + 7919 * run.replicate
        if run.algorithm == GA:
            ev = evolve.evolve_single(fitness, len(low), (low, high), s.pop_size, s.generations, seed)
        elif run.algorithm == RANDOM_SEARCH:
            ev = evolve.random_search(fitness, len(low), (low, high), s.pop_size * s.generations, seed)
        else:
            ev = evolve.evolve_multi(fitness, len(low), len(self.space.group), (low, high), s.pop_size,
                                     s.generations, seed)
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

        items, subset = self.calibration.items, self.subset(run)
        inputs = {"fit": array_digest(items.alpha, items.beta), "settings": asdict(self.settings), "seed": self.seed,
                  "code": code_version(estimators, evolve, Searches, Fitness, FullFitness, EstimatedFitness,
                                       PerTaskFitness, SubsetEstimator, SearchSpace, ItemScorer),
                  "run": asdict(run), "subset": subset.tolist(), "prior": [self.calibration.prior.mean.tolist(),
                                                                           self.calibration.prior.sd.tolist()],
                  "endpoints": array_digest(self.calibration.endpoint_fitness_abilities), "mixing": self.mixing,
                  "recipes": [self.scorer.evaluator.scorers[t].key for t in self.space.group]}
        (ev, frame), _ = self.cache.get_or_compute(SEARCH_KIND, inputs, produce, load)
        best = ev.best_x if run.algorithm != NSGA_II else ev.best_x[int(np.argmax(ev.best_fitness @ fitness.share))]
        return SearchResult(run, ev, frame, subset, self.space.recipe(best))
