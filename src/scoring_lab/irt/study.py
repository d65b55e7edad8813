"""The IRT chapter's study: MERGE3's Extract, Estimate and Evolve steps on merged scoring models.

:class:`IRTStudy` takes a run's tasks and per-task scorers and the profile's ``irt`` settings:

* the merge group's endpoints (their scorers) and an :class:`~scoring_lab.irt.items.ItemPool`
  of the group's validation (fitness) and test (reported) responses;
* a population of models (random merges, the endpoints, the pre-trained encoder) whose correctness
  the IRT item parameters are fitted on, the dimension chosen on validation items;
* held-out merged models of the searches' kind, on which the estimators are judged (Figs. 3-4),
  the extractors compared and the population's size checked;
* evolutionary searches over merge coefficients (GA with an estimator's or the full data's fitness,
  NSGA-II with one objective per task) and the standard merges and endpoints beside them.

Shapes: I items, m models, d IRT dimensions, n endpoints. Every model's correctness is cached by
its recipe (:class:`~scoring_lab.irt.items.ItemScorer`), IRT fits and the estimator tables by
their inputs, so a warm chapter reruns the searches on cached answers and only reads tables back.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from functools import cached_property

import numpy as np
import pandas as pd

from .. import claims, published
from . import evolve, estimators as irt
from ..models.cache import ArtifactCache, code_version
from ..data.task import Task
from .items import ItemPool, ItemScorer, Recipe
from ..merging.evaluation import OWN, Merge, MergeEvaluator
from ..models.per_task import TrainedScorer
from ..profiles import Profile
from ..study_steps import TimedSteps

FIT_KIND = "irt-fit"
TABLE_KIND = "irt-table"
SEARCH_KIND = "irt-search"
POPULATION_METHODS = ("task_arithmetic", "ties", "dare_ties", "dare_linear", "linear", "slerp")
FULL = "full data"


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


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


def _one_thread_fit(y, dims, epochs, lr, seed):
    """:func:`irt.fit_items` in a worker process on one thread: py-irt's steps are small, and a fit runs as
    fast on one thread as on two (8.1 s against 8.6 s for 200 epochs of 28 x 1,019 here)."""
    import torch

    torch.set_num_threads(1)
    return irt.fit_items(y, dims, epochs, lr, seed)


def fitted_abilities(y: np.ndarray, items: irt.ItemParameters) -> np.ndarray:
    """(m, d) each row of answers ``y`` (m, k)'s MAP ability on ``items`` (k of them, parameters fixed); on
    all of a model's items, the paper's Gamma, its best proxy for the true ability."""
    return np.stack([irt.fit_ability(row, items) for row in np.asarray(y, dtype=float)])


def mixing_text(study: "IRTStudy") -> str:
    """What the chosen c values mean, in a sentence per estimator (c = 0: the g- estimator is the plain one)."""
    return " ".join(f"The chosen c for {e} is {c:g}" + (f", so {e} is {e.replace('g', '', 1)} here." if c == 0
                                                         else ".") for e, c in sorted(study.chosen_mixing().items()))


def _seed(*parts) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


class IRTStudy(TimedSteps):
    """MERGE3 on the merge group of ``tasks`` (their per-task ``scorers`` are the endpoints)."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        self.tasks, self.profile, self.settings = tasks, profile, profile.irt
        self.seed, self.progress = int(seed), progress
        self.cache = cache or ArtifactCache()
        self.group, self.group_note = resolve_group(tasks, self.settings.group)
        group_tasks = {t: tasks[t] for t in self.group}
        self.evaluator = MergeEvaluator({t: scorers[t] for t in self.group}, group_tasks, profile.train, self.seed,
                                        self.cache, progress)
        s = self.settings
        self.pool = ItemPool.build(tasks, self.group, (s.fitness_split, s.eval_split))
        self.scorer = ItemScorer(self.evaluator, self.pool)
        self.fit_pos = self.pool.positions(s.fitness_split)
        self.eval_pos = self.pool.positions(s.eval_split)
        self.timing: dict[str, float] = {}
        self._memo: dict = {}

    # ---- models -------------------------------------------------------------------------
    def endpoints(self) -> list[Recipe]:
        return [Recipe((t,)) for t in self.group]

    def search_recipe(self, x) -> Recipe:
        """The searches' model: ``evolve_method`` over every endpoint, x = (weight per endpoint, density)."""
        x = np.round(np.asarray(x, dtype=float), 4)
        return Recipe(self.group, Merge(self.settings.evolve_method, density=float(x[-1]),
                                        weights=tuple(float(v) for v in x[:-1]), seed=self.seed))

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.group)
        return np.r_[np.zeros(n), 0.1], np.ones(n + 1)

    def _random_search_recipes(self, count: int, stream: int) -> list[Recipe]:
        rng = np.random.default_rng([self.seed, stream])
        low, high = self.bounds
        return [self.search_recipe(rng.uniform(low, high)) for _ in range(count)]

    def population_recipes(self) -> list[Recipe]:
        """The endpoints, the pre-trained encoder and ``population`` random merges (method, members,
        weights, density drawn at random, seeded)."""
        rng = np.random.default_rng([self.seed, 1])
        out = [*self.endpoints(), Recipe(())]
        while len(out) < self.settings.population + len(self.group) + 1:
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

    def validation_recipes(self) -> list[Recipe]:
        return self._random_search_recipes(self.settings.validation_models, 2)

    def held_out_recipes(self) -> list[Recipe]:
        return self._random_search_recipes(self.settings.held_out_models, 3)

    def correctness(self, recipes, positions=None, desc: str = "models") -> np.ndarray:
        """(m, k) 0/1 of ``recipes`` on ``positions`` (every item by default), cached per recipe."""
        return self.scorer.matrix(recipes, positions, self.progress, desc).astype(float)

    def population_correctness(self) -> np.ndarray:
        """(m, I) the population's correctness on every item."""
        return self._once("population", lambda: self._timed("population: correctness on every item", lambda:
                          self.correctness(self.population_recipes(), desc="population")))

    def population_table(self) -> pd.DataFrame:
        """One row per population model: its recipe and accuracy on the fitness and reported items."""
        y = self.population_correctness()
        rows = [{"model": r.label(), "kind": "endpoint" if r.merge.method == OWN and r.members else
                 "pre-trained" if not r.members else r.merge.method, "members": len(r.members),
                 f"{self.settings.fitness_split}_accuracy": y[i, self.fit_pos].mean(),
                 f"{self.settings.eval_split}_accuracy": y[i, self.eval_pos].mean()}
                for i, r in enumerate(self.population_recipes())]
        return pd.DataFrame(rows)

    # ---- the IRT fit ------------------------------------------------------------------------
    def _fit_inputs(self, dims: int, models) -> tuple[np.ndarray, dict]:
        y = self.population_correctness()
        y = y if models is None else y[np.asarray(models, dtype=int)]
        s = self.settings
        return y.astype(int), {"correct": _digest(y.astype(np.uint8)), "shape": list(y.shape), "dims": int(dims),
                               "epochs": s.irt_epochs, "lr": s.irt_lr, "seed": self.seed,
                               "code": code_version(irt.fit_items)}

    def prefit(self, specs) -> None:
        """Run the py-irt fits of ``specs`` ((dims, models or None), ...) not yet cached, ``workers`` at a time
        (each fit is one process's work: py-irt's steps are small and leave the other core idle)."""
        todo = {}
        for dims, models in specs:
            y, inputs = self._fit_inputs(dims, models)
            key = self.cache.key(inputs)
            if not self.cache.exists(FIT_KIND, key) and key not in todo:
                todo[key] = (y, int(dims), inputs)
        if not todo:
            return
        s = self.settings
        from joblib import Parallel, delayed

        jobs = (delayed(_one_thread_fit)(y, d, s.irt_epochs, s.irt_lr, self.seed) for y, d, _ in todo.values())
        fits = Parallel(n_jobs=min(s.workers, len(todo)))(jobs) if s.workers > 1 and len(todo) > 1 else \
            [irt.fit_items(y, d, s.irt_epochs, s.irt_lr, self.seed) for y, d, _ in todo.values()]
        for (key, (_, _, inputs)), (items, ability) in zip(todo.items(), fits):
            self.cache.write(FIT_KIND, key, inputs, lambda folder, items=items, ability=ability: np.savez(
                folder / "fit.npz", alpha=items.alpha, beta=items.beta, ability=ability))

    def fit(self, dims: int, models: np.ndarray | None = None) -> tuple[irt.ItemParameters, np.ndarray]:
        """(item parameters over every item, the fitted models' abilities (m, d)) of py-irt's fit on the
        population (or its rows ``models``), cached."""
        y, inputs = self._fit_inputs(dims, models)
        s = self.settings

        def produce(folder):
            items, ability = irt.fit_items(y, dims, s.irt_epochs, s.irt_lr, self.seed)
            np.savez(folder / "fit.npz", alpha=items.alpha, beta=items.beta, ability=ability)

        def load(art):
            z = np.load(art.file("fit.npz"))
            return irt.ItemParameters(z["alpha"], z["beta"]), z["ability"]

        value, _ = self.cache.get_or_compute(FIT_KIND, inputs, produce, load)
        return value

    def size_models(self) -> dict[int, np.ndarray | None]:
        """{population size: the rows refitted (None: all)}: the endpoints and the pre-trained encoder
        always in, the rest a seeded draw of the random merges."""
        m_all, fixed = len(self.population_recipes()), len(self.group) + 1
        out = {}
        for size in sorted({*(min(k, m_all) for k in self.settings.population_sizes), m_all}):
            extra = np.random.default_rng([self.seed, 5, size]).choice(np.arange(fixed, m_all),
                                                                         size=max(size - fixed, 0), replace=False)
            out[size] = None if size == m_all else np.r_[np.arange(min(fixed, size)), np.sort(extra)]
        return out

    def dimension_choice(self) -> pd.DataFrame:
        """Per tried dimension: the mean log-likelihood of the validation models' answers on half of the
        fitness items, their abilities fitted (MAP) on the other half; and the chosen one."""
        def compute():
            y = self.correctness(self.validation_recipes(), self.fit_pos, "validation models")
            rng = np.random.default_rng([self.seed, 4])
            half = rng.permutation(len(self.fit_pos))
            a, b = np.sort(half[: len(half) // 2]), np.sort(half[len(half) // 2:])
            self.prefit([(d, None) for d in self.settings.dims])
            rows = []
            for d in self.settings.dims:
                items = self.fit(d)[0].subset(self.fit_pos)
                ll = []
                for row in y:
                    g = irt.fit_ability(row[a], items.subset(a))
                    p = np.clip(items.subset(b).prob(g), 1e-6, 1 - 1e-6)
                    ll.append(float(np.mean(row[b] * np.log(p) + (1 - row[b]) * np.log(1 - p))))
                rows.append({"dims": d, "heldout_loglik": float(np.mean(ll))})
            table = pd.DataFrame(rows)
            table["chosen"] = table["dims"] == table.loc[table["heldout_loglik"].idxmax(), "dims"]
            return table

        return self._once("dims", lambda: self._timed("IRT fits and the dimension (validation items)", compute))

    @property
    def dims(self) -> int:
        t = self.dimension_choice()
        return int(t.loc[t["chosen"], "dims"].iloc[0])

    @property
    def items(self) -> irt.ItemParameters:
        return self.fit(self.dims)[0]

    def abilities(self, recipes, positions) -> np.ndarray:
        """(m, d) MAP abilities of ``recipes`` from their answers on ``positions`` (item parameters fixed)."""
        return fitted_abilities(self.correctness(recipes, positions, "abilities"), self.items.subset(positions))

    def endpoint_abilities(self, fitness_only: bool = False) -> np.ndarray:
        """(n, d) the endpoints' abilities from their answers on every item (the paper's full dataset), or on
        the fitness items only (what the searches use: their fitness then depends on no test answer)."""
        positions = self.fit_pos if fitness_only else np.arange(len(self.pool))
        return self._once(("endpoint_abilities", fitness_only), lambda: self.abilities(self.endpoints(), positions))

    # ---- estimators -----------------------------------------------------------------------------
    def _estimates(self, y_sub, subset, items, endpoints, weights, mixing) -> tuple[dict, dict]:
        """({(estimator, c): accuracy}, {"p": gamma, "mp": gamma}) of every estimator from one subset; c is None
        for the estimators without one, and gp- / gmp-IRT come once per c in ``mixing``."""
        w = np.full(len(subset), 1 / len(subset)) if weights is None else np.asarray(weights)
        observed = float(w @ y_sub)
        gp = irt.ability_estimate(irt.P_IRT, y_sub, subset, items)
        gmp = irt.ability_estimate(irt.MP_IRT, y_sub, subset, items, endpoints)
        p, mp = irt.irt_accuracy(y_sub, subset, items, gp), irt.irt_accuracy(y_sub, subset, items, gmp)
        out = {(irt.RANDOM, None): observed, (irt.P_IRT, None): p, (irt.MP_IRT, None): mp}
        for c in mixing:
            out[(irt.GP_IRT, float(c))] = c * observed + (1 - c) * p
            out[(irt.GMP_IRT, float(c))] = c * observed + (1 - c) * mp
        return out, {"p": gp, "mp": gmp}

    def mixing_choice(self) -> pd.DataFrame:
        """gp- and gmp-IRT's mean absolute error on the validation models for every c, estimating their
        fitness-item accuracy from random subsets of the searches' size; the chosen c per estimator."""
        def compute():
            s = self.settings
            y = self.correctness(self.validation_recipes(), self.fit_pos, "validation models")
            items, ends = self.items.subset(self.fit_pos), self.endpoint_abilities(fitness_only=True)
            k = min(s.fitness_items * len(self.group), len(self.fit_pos))
            rows = []
            for m, row in enumerate(y):
                for r in range(s.repetitions):
                    subset, _ = irt.random_subset(len(self.fit_pos), k, _seed(self.seed, "mix", m, r))
                    est, _ = self._estimates(row[subset], subset, items, ends, None, s.mixing)
                    rows += [{"estimator": e, "c": c, "abs_error": abs(v - row.mean())}
                             for (e, c), v in est.items() if c is not None]
            t = pd.DataFrame(rows).groupby(["estimator", "c"], as_index=False)["abs_error"].mean()
            t["chosen"] = False
            for e, part in t.groupby("estimator"):
                c = irt.choose_mixing(dict(zip(part["c"], part["abs_error"])))
                t.loc[(t["estimator"] == e) & (t["c"] == c), "chosen"] = True
            return t

        return self._once("mixing", lambda: self._timed("mixing coefficient c (validation items)", lambda:
                          self._cached_table("mixing", {}, compute)))

    def chosen_mixing(self) -> dict[str, float]:
        t = self.mixing_choice()
        return dict(zip(t.loc[t["chosen"], "estimator"], t.loc[t["chosen"], "c"]))

    def _cached_table(self, name: str, inputs: dict, compute) -> pd.DataFrame:
        def produce(folder):
            compute().to_csv(folder / "table.csv", index=False)

        full = {"table": name, "fit": _digest(self.items.alpha, self.items.beta), "settings": asdict(self.settings),
                "population": _digest(self.population_correctness().astype(np.uint8)), "seed": self.seed,
                "code": code_version(irt, IRTStudy), **inputs}
        value, _ = self.cache.get_or_compute(TABLE_KIND, full, produce, lambda art: pd.read_csv(art.file("table.csv")))
        return value

    def held_out(self) -> np.ndarray:
        """(e, k) the held-out merged models' answers on the reported items."""
        return self._once("held_out", lambda: self._timed("held-out merged models", lambda: self.correctness(
            self.held_out_recipes(), self.eval_pos, "held-out models")))

    def _error_rows(self, y: np.ndarray, items, ends, sizes, stream: str, extractor=None) -> tuple[list, list]:
        s, mix = self.settings, self.chosen_mixing()
        truth = fitted_abilities(y, items)
        err, sim = [], []
        for n in sizes:
            for r in range(s.repetitions):
                if extractor is None:
                    subset, weights = irt.random_subset(len(items), min(n, len(items)), _seed(self.seed, stream, n, r))
                else:
                    subset, weights = extractor(min(n, len(items)), _seed(self.seed, stream, n, r))
                for m, row in enumerate(y):
                    est, gammas = self._estimates(row[subset], subset, items, ends, weights,
                                                  sorted({*mix.values(), s.paper_mixing}))
                    for (name, c), v in est.items():
                        if c is not None and c != mix.get(name) and c != s.paper_mixing:
                            continue
                        label = name if c is None or c == mix.get(name) else f"{name} (c={c:g}, paper's code)"
                        err.append({"estimator": label, "subset_size": n, "repetition": r, "model": m,
                                    "abs_error": abs(v - row.mean()), "estimate": v, "accuracy": row.mean()})
                    for fam, g in gammas.items():
                        t = truth[m]
                        cos = float(g @ t / (np.linalg.norm(g) * np.linalg.norm(t))) if np.linalg.norm(g) and \
                            np.linalg.norm(t) else np.nan
                        sim.append({"estimator": "p-IRT / gp-IRT" if fam == "p" else "mp-IRT / gmp-IRT",
                                    "subset_size": n, "repetition": r, "model": m, "cosine": cos,
                                    "distance": float(np.linalg.norm(g - t))})
        return err, sim

    def estimator_study(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(estimator_error: estimator, subset_size, repetition, model, abs_error, ...; ability_similarity:
        estimator, subset_size, repetition, model, cosine, distance) on the held-out merged models' reported
        items, random subsets."""
        def compute():
            err, sim = self._error_rows(self.held_out(), self.items.subset(self.eval_pos), self.endpoint_abilities(),
                                        self.settings.subset_sizes, "fig3")
            return pd.concat([pd.DataFrame(err).assign(table="error"), pd.DataFrame(sim).assign(table="ability")])

        both = self._once("estimators", lambda: self._timed("estimators on held-out merged models (Figs. 3-4)", lambda:
                          self._cached_table("estimators", {"held_out": _digest(self.held_out().astype(np.uint8))},
                                             compute)))
        err = both[both["table"] == "error"].dropna(axis=1, how="all").drop(columns="table")
        sim = both[both["table"] == "ability"].dropna(axis=1, how="all").drop(columns="table")
        return err.reset_index(drop=True), sim.reset_index(drop=True)

    def item_embeddings(self) -> np.ndarray:
        """(k, H) the reported items' pooled embeddings under the pre-trained encoder (representation
        clustering's features)."""
        return self._once("embeddings", lambda: self.scorer.embeddings(Recipe(()), self.eval_pos))

    def extractor_study(self) -> pd.DataFrame:
        """Mean absolute error of the random mean and the chosen g-estimator per extractor (random, IRT
        clustering, representation clustering) and subset size, over repetitions and held-out models."""
        items = self.items.subset(self.eval_pos)

        def compute():
            extractors = {"random": None,
                          "IRT clustering": lambda k, seed: irt.cluster_subset(irt.irt_features(items), k, seed),
                          "representation clustering": lambda k, seed: irt.cluster_subset(self.item_embeddings(), k,
                                                                                          seed)}
            rows = []
            for name, ex in extractors.items():
                err, _ = self._error_rows(self.held_out(), items, self.endpoint_abilities(),
                                          self.settings.extractor_sizes, "extract", ex)
                rows.append(pd.DataFrame(err).assign(extractor=name))
            t = pd.concat(rows)
            t = t[t["estimator"].isin([irt.RANDOM, irt.MP_IRT, irt.GMP_IRT])]
            return t.groupby(["extractor", "subset_size", "estimator"], as_index=False)["abs_error"].agg(
                mean_abs_error="mean", sd="std")

        return self._once("extractors", lambda: self._timed("extractors compared", lambda: self._cached_table(
            "extractors", {"held_out": _digest(self.held_out().astype(np.uint8))}, compute)))

    def population_size_study(self) -> pd.DataFrame:
        """Mean absolute error of mp- and gmp-IRT (smallest subset size) with the IRT fitted on smaller
        populations (the endpoints and the pre-trained encoder always in)."""
        def compute():
            s, mix = self.settings, self.chosen_mixing()
            sizes = self.size_models()
            self.prefit([(self.dims, models) for models in sizes.values()])
            rows = []
            for size, models in sizes.items():
                items_all = self.fit(self.dims, models)[0]
                items = items_all.subset(self.eval_pos)
                y_end = self.correctness(self.endpoints(), None, "endpoints")
                ends = fitted_abilities(y_end, items_all)
                n = min(s.subset_sizes)
                for r in range(s.repetitions):
                    subset, _ = irt.random_subset(len(items), min(n, len(items)), _seed(self.seed, "fig3", n, r))
                    for m, row in enumerate(self.held_out()):
                        est, _ = self._estimates(row[subset], subset, items, ends, None, sorted(set(mix.values())))
                        for (name, c), v in est.items():
                            if c is not None and c != mix.get(name):
                                continue
                            rows.append({"population": size, "estimator": name, "subset_size": n,
                                         "abs_error": abs(v - row.mean())})
            t = pd.DataFrame(rows)
            return t.groupby(["population", "estimator", "subset_size"], as_index=False)["abs_error"].mean()

        return self._once("population_size", lambda: self._timed("population size (IRT refits)", lambda:
                          self._cached_table("population-size", {"held_out": _digest(self.held_out().astype(np.uint8))},
                                             compute)))

    # ---- evolve ---------------------------------------------------------------------------------
    def fitness_subset(self) -> np.ndarray:
        """(k,) positions (into the fitness items) of the searches' subset: ``fitness_items`` per task, random."""
        rng = np.random.default_rng([self.seed, 6])
        fit_tasks = self.pool.task[self.fit_pos]
        parts = [np.sort(rng.choice(np.flatnonzero(fit_tasks == j), size=min(self.settings.fitness_items,
                                                                             int((fit_tasks == j).sum())),
                                    replace=False)) for j in range(len(self.group))]
        return np.concatenate(parts)

    def _estimated(self, estimator: str, y_sub: np.ndarray, subset: np.ndarray, task: int | None = None) -> float:
        """An estimator's fitness-item accuracy (one task's, or all) from answers on ``subset`` (fitness positions)."""
        items = self.items.subset(self.fit_pos)
        if task is not None:
            own = np.flatnonzero(self.pool.task[self.fit_pos] == task)
            keep = np.isin(subset, own)
            subset, y_sub = np.searchsorted(own, subset[keep]), y_sub[keep]
            items = items.subset(own)
        c = self.chosen_mixing().get(estimator, self.settings.paper_mixing)
        return irt.estimate(estimator, y_sub, subset, items, endpoints=self.endpoint_abilities(fitness_only=True), c=c)

    def searches(self) -> dict[str, dict]:
        """{run: {"evolution": evolve.Evolution, "log": per evaluation (estimated, true, items, flops, seconds),
        "chosen": the chosen recipe}} for the three searches."""
        return self._once("searches", lambda: self._timed("evolutionary searches", self._run_searches))

    def _run_searches(self) -> dict[str, dict]:
        s = self.settings
        low, high = self.bounds
        subset = self.fitness_subset()
        sub_pos = self.fit_pos[subset]
        n_tasks = len(self.group)
        fit_share = np.bincount(self.pool.task[self.fit_pos], minlength=n_tasks) / len(self.fit_pos)
        out = {}
        runs = {f"GA, {FULL} fitness": ("ga", None), f"GA, {s.ga_estimator} fitness": ("ga", s.ga_estimator),
                f"NSGA-II, {s.nsga_estimator} per task": ("nsga", s.nsga_estimator)}
        for run, (algo, estimator) in runs.items():
            log = []

            def fitness(x, estimator=estimator, algo=algo, log=log):
                recipe = self.search_recipe(x)
                true_scored = self.scorer.score(recipe, self.fit_pos)   # the truth, for the record
                truth = true_scored.correct.astype(float)
                if estimator is None:
                    scored, value = true_scored, float(truth.mean())
                    est, seconds = value, true_scored.seconds
                else:
                    scored = self.scorer.score(recipe, sub_pos)
                    t0 = time.perf_counter()
                    y = scored.correct.astype(float)
                    if algo == "ga":
                        value = est = self._estimated(estimator, y, subset)
                    else:
                        value = np.array([self._estimated(estimator, y, subset, j) for j in range(n_tasks)])
                        est = float(value @ fit_share)
                    seconds = scored.seconds + time.perf_counter() - t0
                log.append({"estimated_fitness": float(est), "true_fitness": float(truth.mean()),
                            "items_scored": len(scored.correct), "flops": scored.flops, "seconds": seconds,
                            **{f"true_{t}": float(truth[self.pool.task[self.fit_pos] == j].mean())
                               for j, t in enumerate(self.group)}})
                return value

            def search(algo=algo, fitness=fitness, log=log):
                if algo == "ga":
                    ev = evolve.evolve_single(fitness, len(low), (low, high), s.pop_size, s.generations, self.seed)
                else:
                    ev = evolve.evolve_multi(fitness, len(low), n_tasks, (low, high), s.pop_size, s.generations,
                                             self.seed)
                return ev, pd.DataFrame(log)

            inputs = {"run": run, "subset": subset.tolist(), "endpoints": _digest(self.endpoint_abilities(True)),
                      "mixing": self.chosen_mixing(),
                      "recipes": [self.scorer.evaluator.scorers[t].key for t in self.group]}
            ev, frame = self._cached_search(inputs, search)
            if algo == "ga":
                chosen = self.search_recipe(ev.best_x)
            else:
                chosen = self.search_recipe(ev.best_x[int(np.argmax(ev.best_fitness @ fit_share))])
            out[run] = {"evolution": ev, "log": frame, "chosen": chosen, "estimator": estimator}
        return out

    def _cached_search(self, inputs: dict, search) -> tuple[evolve.Evolution, pd.DataFrame]:
        """A search's Evolution and its per-evaluation log, cached (a warm chapter does not rerun it; a cold
        one finds every model it meets again in the correctness cache)."""
        def produce(folder):
            ev, frame = search()
            ev.history.to_csv(folder / "history.csv", index=False)
            frame.to_csv(folder / "log.csv", index=False)
            np.savez(folder / "best.npz", x=ev.best_x, fitness=ev.best_fitness, evaluations=ev.evaluations)

        def load(art):
            z = np.load(art.file("best.npz"))
            return (evolve.Evolution(z["x"], z["fitness"], pd.read_csv(art.file("history.csv")), int(z["evaluations"])),
                    pd.read_csv(art.file("log.csv")))

        full = {"fit": _digest(self.items.alpha, self.items.beta), "settings": asdict(self.settings),
                "seed": self.seed, "code": code_version(irt, evolve, IRTStudy, ItemScorer), **inputs}
        value, _ = self.cache.get_or_compute(SEARCH_KIND, full, produce, load)
        return value

    def evolution_table(self) -> pd.DataFrame:
        """run, generation, individual, estimated_fitness, true_fitness (and per-task true fitness) of every
        evaluation of every search."""
        parts = []
        for run, r in self.searches().items():
            h = r["evolution"].history[["generation", "individual"]].reset_index(drop=True)
            parts.append(pd.concat([h, r["log"]], axis=1).assign(run=run))
        t = pd.concat(parts, ignore_index=True)
        first = ["run", "generation", "individual", "estimated_fitness", "true_fitness"]
        return t[first + [c for c in t.columns if c not in first]]

    def fitness_agreement(self) -> pd.DataFrame:
        """Per search: how its fitness agreed with the truth over its evaluations (Spearman rho, mean absolute
        gap; rho is NaN when either side is constant) and for its chosen model (what the search saw against its
        true fitness-item accuracy)."""
        from scipy.stats import spearmanr

        rows = []
        for run, r in self.searches().items():
            log = r["log"]
            chosen = r["evolution"].best_fitness
            seen = float(np.max(chosen @ (np.bincount(self.pool.task[self.fit_pos]) / len(self.fit_pos)))
                         if np.ndim(chosen) == 2 else chosen)
            true = float(self.scorer.score(r["chosen"], self.fit_pos).correct.mean())
            same = log["estimated_fitness"].equals(log["true_fitness"])
            rows.append({"run": run, "evaluations": len(log),
                         "spearman": 1.0 if same else float(spearmanr(log["estimated_fitness"], log["true_fitness"])[0]),
                         "mean_abs_gap": float((log["estimated_fitness"] - log["true_fitness"]).abs().mean()),
                         "chosen_estimated": seen, "chosen_true": true})
        return pd.DataFrame(rows)

    def pareto_table(self) -> pd.DataFrame:
        """The NSGA-II run's final Pareto set: estimated and true per-task fitness."""
        run = [k for k in self.searches() if k.startswith("NSGA-II")][0]
        r = self.searches()[run]
        rows = []
        for x, f in zip(r["evolution"].best_x, r["evolution"].best_fitness):
            truth = self.scorer.score(self.search_recipe(x), self.fit_pos).correct
            rows.append({**{f"estimated_{t}": float(v) for t, v in zip(self.group, f)},
                         **{f"true_{t}": float(truth[self.pool.task[self.fit_pos] == j].mean())
                            for j, t in enumerate(self.group)}})
        return pd.DataFrame(rows)

    def baselines(self) -> dict[str, Recipe]:
        """The standard merges at their default coefficients (weights 1) and the endpoints."""
        d = self.settings.baseline_density
        out = {"task arithmetic": Recipe(self.group, Merge("task_arithmetic", scaling=1.0)),
               "TIES": Recipe(self.group, Merge("ties", density=d)),
               "DARE + TIES": Recipe(self.group, Merge("dare_ties", density=d, seed=self.seed))}
        out.update({f"endpoint: {t}": r for t, r in zip(self.group, self.endpoints())})
        return out

    def _accuracy_row(self, name: str, recipe: Recipe) -> dict:
        y = self.scorer.score(recipe, self.eval_pos).correct.astype(float)
        tasks = self.pool.task[self.eval_pos]
        return {"model": name, "test_accuracy": y.mean(),
                **{t: y[tasks == j].mean() for j, t in enumerate(self.group)}}

    def results(self) -> pd.DataFrame:
        """Reported-split accuracy (all items and per task) of every search's chosen model, the standard
        merges, the endpoints, and each task's own scorer on its own items (the paper's 'Finetuned')."""
        def compute():
            rows = [self._accuracy_row(run, r["chosen"]) for run, r in self.searches().items()]
            rows += [self._accuracy_row(n, r) for n, r in self.baselines().items()]
            own = {t: self._accuracy_row("", r)[t] for t, r in zip(self.group, self.endpoints())}
            sizes = np.bincount(self.pool.task[self.eval_pos], minlength=len(self.group))
            rows.append({"model": "per-task scorers (each on its own task)",
                         "test_accuracy": float(np.dot(list(own.values()), sizes) / sizes.sum()), **own})
            return pd.DataFrame(rows)

        return self._once("results", lambda: self._timed("test accuracy of the chosen models", compute))

    def compute_table(self) -> pd.DataFrame:
        """Tables 6-7 analog: per search its evaluations, items scored, seconds and FLOPs of its fitness
        computation, models per hour, its chosen model's test accuracy, and the FLOPs ratio to full data."""
        res = self.results().set_index("model")
        rows = []
        for run, r in self.searches().items():
            log = r["log"]
            rows.append({"run": run, "evaluations": len(log), "items_scored": int(log["items_scored"].sum()),
                         "seconds": float(log["seconds"].sum()), "flops": float(log["flops"].sum()),
                         "test_accuracy": float(res.loc[run, "test_accuracy"])})
        t = pd.DataFrame(rows)
        full = t.loc[t["run"].str.contains(FULL), "flops"].iloc[0]
        t["flops_ratio"] = full / t["flops"]
        t["models_per_hour"] = t["evaluations"] / t["seconds"] * 3600
        return t

    def timing_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"step": k, "seconds": round(v, 1)} for k, v in self.timing.items()])


def summary_text(study: IRTStudy, errors: pd.DataFrame, results: pd.DataFrame, compute: pd.DataFrame,
                 agreement: pd.DataFrame) -> str:
    """The chapter's findings in a few sentences, every number from the results."""
    small = int(errors["subset_size"].min())
    mean = errors[errors["subset_size"] == small].groupby("estimator")["abs_error"].mean().sort_values()
    res = results.set_index("model")
    c = compute.set_index("run")
    full = [r for r in c.index if FULL in r][0]
    ga = [r for r in c.index if r.startswith("GA") and FULL not in r][0]
    nsga = [r for r in c.index if r.startswith("NSGA")][0]
    best_base = res.drop(index=[full, ga, nsga, "per-task scorers (each on its own task)"])["test_accuracy"]
    lines = [
        f"At {small} items, the estimators' mean absolute errors on the held-out merged models run from "
        f"{mean.iloc[0]:.3f} ({mean.index[0]}) to {mean.iloc[-1]:.3f} ({mean.index[-1]}): " +
        ", ".join(f"{e} {v:.3f}" for e, v in mean.items()) + ".",
        f"The GA with {study.settings.ga_estimator} fitness scored {int(c.loc[ga, 'items_scored']):,} items against "
        f"{int(c.loc[full, 'items_scored']):,} for the full-data GA ({c.loc[ga, 'flops_ratio']:.1f}x fewer FLOPs) "
        f"and its chosen merge reaches test accuracy {res.loc[ga, 'test_accuracy']:.3f}, against "
        f"{res.loc[full, 'test_accuracy']:.3f} for the full-data search and {res.loc[nsga, 'test_accuracy']:.3f} for "
        f"NSGA-II's chosen member.",
        f"The best standard merge or endpoint is {best_base.idxmax()} at {best_base.max():.3f}; the per-task scorers, "
        f"each on its own task, reach {res.loc['per-task scorers (each on its own task)', 'test_accuracy']:.3f}.",
    ]
    a = agreement.set_index("run")
    lines.append(f"The GA's estimated fitness ranked its candidates with Spearman rho {a.loc[ga, 'spearman']:.2f} "
                 f"against their true validation accuracy; the model it chose looked like {a.loc[ga, 'chosen_estimated']:.3f} "
                 f"and is {a.loc[ga, 'chosen_true']:.3f} on all validation items (a search's best estimate is "
                 f"optimistic: it is the maximum of noisy estimates).")
    return " ".join(lines)


# ---- claims ---------------------------------------------------------------------------------------
def irt_claims(study: IRTStudy, errors: pd.DataFrame, similarity: pd.DataFrame, extractors: pd.DataFrame,
               population: pd.DataFrame, results: pd.DataFrame, compute: pd.DataFrame) -> list[claims.Claim]:
    """Which of the MERGE3 paper's claims held here, each computed from the chapter's results."""
    out = []
    small = min(errors["subset_size"])
    mean = errors.groupby(["estimator", "subset_size"])["abs_error"].mean().unstack()
    sizes = list(mean.columns)
    core = [irt.RANDOM, irt.P_IRT, irt.GP_IRT, irt.MP_IRT, irt.GMP_IRT]

    def at(e, n=small):
        return float(mean.loc[e, n])

    n_ahead = sum(min(mean.loc[irt.MP_IRT, n], mean.loc[irt.GMP_IRT, n]) < min(mean.loc[irt.P_IRT, n],
                                                                           mean.loc[irt.GP_IRT, n]) for n in sizes)
    out.append(claims.Claim("irt", "mp-IRT and gmp-IRT estimate a merged model's accuracy with lower error than "
                            "p-IRT and gp-IRT (Fig. 3)", "lower at every subset size (figure, no numbers)",
                            f"at {small} items: mp {at(irt.MP_IRT):.3f}, gmp {at(irt.GMP_IRT):.3f}, p {at(irt.P_IRT):.3f}"
                            f", gp {at(irt.GP_IRT):.3f}", claims.verdict_share(n_ahead, len(sizes)),
                            f"the better of mp/gmp below the better of p/gp at {n_ahead} of {len(sizes)} subset sizes "
                            f"({', '.join(map(str, sizes))}); mean absolute error over {errors['model'].nunique()} "
                            f"held-out merged models and {errors['repetition'].nunique()} random subsets each"))
    n_irt = sum(mean.loc[e, n] < mean.loc[irt.RANDOM, n] for e in core[1:] for n in sizes)
    out.append(claims.Claim("irt", "Every IRT estimator beats the random-subset mean", "all of them (Fig. 3)",
                            f"at {small} items: random {at(irt.RANDOM):.3f}", claims.verdict_share(n_irt, 4 * len(sizes)),
                            f"{n_irt} of {4 * len(sizes)} (estimator, size) cells below the random mean"))
    cos = similarity.groupby(["estimator", "subset_size"])["cosine"].mean().unstack()
    dist = similarity.groupby(["estimator", "subset_size"])["distance"].mean().unstack()
    mp, p = "mp-IRT / gmp-IRT", "p-IRT / gp-IRT"
    d = study.dims
    if d == 1:
        n_s = int(sum(dist.loc[mp, n] < dist.loc[p, n] for n in dist.columns))
        note = (f"with {d} IRT dimension the cosine is only the sign, so the Euclidean distance to the full-data "
                f"ability is compared: mp/gmp closer at {n_s} of {len(dist.columns)} sizes")
    else:
        n_s = int(sum(cos.loc[mp, n] > cos.loc[p, n] for n in cos.columns))
        note = f"mp/gmp's mean cosine higher at {n_s} of {len(cos.columns)} subset sizes"
    out.append(claims.Claim("irt", "mp/gmp-IRT's abilities are closer to the full-data abilities than p/gp-IRT's "
                            "(Fig. 4)", "higher cosine at 10 and 20 items",
                            f"at {small} items: cosine {cos.loc[mp, small]:.3f} vs {cos.loc[p, small]:.3f}, distance "
                            f"{dist.loc[mp, small]:.3f} vs {dist.loc[p, small]:.3f}",
                            claims.verdict_share(n_s, len(dist.columns)), note))
    ex = extractors.set_index(["extractor", "subset_size", "estimator"])["mean_abs_error"]
    cells = [(n, e) for n in extractors["subset_size"].unique() for e in extractors["estimator"].unique()]
    n_ok = sum(ex[("random", n, e)] <= min(ex[(c, n, e)] for c in ("IRT clustering", "representation clustering"))
               + 0.01 for n, e in cells)
    out.append(claims.Claim("irt", "Uniform random extraction is as good as clustering (appendix C.1)",
                            "as effective", f"random within 0.01 of the best clustering in {n_ok} of {len(cells)} cells",
                            claims.verdict_share(n_ok, len(cells)), "cells: subset size x estimator (random mean, "
                            "mp-IRT, gmp-IRT); mean absolute error on the held-out merged models"))
    pop = population[population["estimator"] == irt.GMP_IRT].set_index("population")["abs_error"]
    ok = [k for k in pop.index if pop[k] <= pop.iloc[-1] + 0.01]
    out.append(claims.Claim("irt", "About 15 models suffice for a stable IRT fit (tinyBenchmarks, cited)", "about 15",
                            ", ".join(f"{k} models: {v:.3f}" for k, v in pop.items()),
                            "held" if min(ok) <= 16 else "not held", f"gmp-IRT's error at {small} items; the smallest "
                            f"population within 0.01 of the full one's is {min(ok)} models"))
    c = compute.set_index("run")
    full = c.loc[[r for r in c.index if FULL in r][0]]
    ga = c.loc[[r for r in c.index if r.startswith("GA") and FULL not in r][0]]
    ratio = float(full["flops"] / ga["flops"])
    bound = len(study.fit_pos) / len(study.fitness_subset())
    pf = published.merge3_figures()["fitness_tflops"]
    out.append(claims.Claim("irt", "Estimated fitness cuts the fitness computation about 50-fold",
                            f"{pf['full'] / pf['merge3']:.0f}x (4e6 vs 0.077e6 TFLOPs)", f"{ratio:.1f}x FLOPs",
                            "held" if ratio >= 40 else "partly" if ratio >= 0.8 * bound else "not held",
                            f"the ratio is bounded by the fitness pool over the subset, {len(study.fit_pos)}/"
                            f"{len(study.fitness_subset())} = {bound:.1f}x here (the paper's 1,000/20); partly when at "
                            "least 80% of that bound"))
    res = results.set_index("model")
    acc_full, acc_ga = float(full["test_accuracy"]), float(ga["test_accuracy"])
    out.append(claims.Claim("irt", "Evolution on estimated fitness comes close to evolution on full-data fitness",
                            "0.34-0.42 vs 0.49 (Japanese GSM8K, Table 7)", f"{acc_ga:.3f} vs {acc_full:.3f}",
                            claims.verdict_close(acc_ga, acc_full) if acc_ga < acc_full else "held",
                            "test accuracy of the chosen models; held within 0.05 below, or above"))
    base = [n for n in res.index if n in ("task arithmetic", "TIES", "DARE + TIES") or n.startswith("endpoint")]
    beaten = [n for n in base if acc_ga > res.loc[n, "test_accuracy"]]
    out.append(claims.Claim("irt", "The evolved merge beats the endpoints and the standard merges (Figs. 5-6)",
                            "above all of them", f"above {len(beaten)} of {len(base)}",
                            claims.verdict_share(len(beaten), len(base)), f"test accuracy over all {len(study.group)} "
                            f"tasks' items; {study.settings.ga_estimator} GA against " + ", ".join(
                                f"{n} {res.loc[n, 'test_accuracy']:.3f}" for n in base)))
    nsga = [r for r in res.index if r.startswith("NSGA-II")][0]
    own = res.loc["per-task scorers (each on its own task)"]
    wins = [t for t in study.group if res.loc[nsga, t] > own[t]]
    t1 = published.merge3_table("table1")[0].set_index("model")
    out.append(claims.Claim("irt", "The multi-objective merge beats each task's own model on its task (Table 1)",
                            f"{int((t1.loc['MERGE3'] > t1.loc['Finetuned']).sum())} of 4 languages",
                            f"{len(wins)} of {len(study.group)} tasks", claims.verdict_share(len(wins), len(study.group)),
                            "NSGA-II's chosen model against each endpoint on its own task, test items: " + ", ".join(
                                f"{t} {res.loc[nsga, t]:.3f} vs {own[t]:.3f}" for t in study.group)))
    return out
