"""The IRT chapter's study: MERGE3's Extract, Estimate and Evolve steps on merged scoring models.

:class:`IRTStudy` wires the chapter's steps on a run's tasks, per-task scorers and the profile's
``irt`` settings, runs each once and times it:

* the merge group's endpoints and the models sampled around them
  (:mod:`~scoring_lab.irt.search_space`), answering an
  :class:`~scoring_lab.irt.items.ItemPool` of the group's fitness (validation) and reported (test)
  items;
* the calibration (:mod:`~scoring_lab.irt.calibration`): IRT fits on a population of models, the
  dimension chosen on validation models, the endpoints' abilities;
* the estimators judged on held-out merged models (:mod:`~scoring_lab.irt.evaluation_tables`, Figs.
  3-4), the extractors compared and the population's size checked;
* the evolutionary searches (:mod:`~scoring_lab.irt.searches`: every arm over replicates, and the
  subset-size sweep), the tables of their results (:mod:`~scoring_lab.irt.report`) and what each
  arm's fitness costs end to end (:mod:`~scoring_lab.irt.cost`); :mod:`~scoring_lab.irt.findings`
  puts them in words and claims.

Every model's correctness is cached by its recipe, IRT fits, the estimator tables and the searches
by their inputs, so a warm chapter reruns nothing and only reads tables back.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..data.task import Task
from ..merging.evaluation import MergeEvaluator
from ..models.cache import ArtifactCache, code_version
from ..models.per_task import TrainedScorer
from ..profiles import Profile
from ..study_steps import TimedSteps
from . import cost, report, units
from .calibration import Calibration, IRTFits, calibrate
from .evaluation import split_error_tables
from .evaluation_tables import EvaluationTables
from .items import ItemPool, ItemScorer, Recipe
from .search_space import SearchSpace, resolve_group
from .report import POPULATION_BEST
from .searches import Searches, SearchResult, SearchRun, SearchRuns


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
        self.space = SearchSpace(self.group, s.evolve_method, self.seed)
        self.fit_counts = np.bincount(self.pool.task[self.fit_pos], minlength=len(self.group))
        self.runs = SearchRuns.of(s, self.fit_counts)
        self.timing: dict[str, float] = {}
        self._memo: dict = {}

    # ---- models and their answers ------------------------------------------------------------
    def correctness(self, recipes, positions=None, desc: str = "models") -> np.ndarray:
        """(m, k) 0/1 of ``recipes`` on ``positions`` (every item by default), cached per recipe."""
        return self.scorer.matrix(recipes, positions, self.progress, desc).astype(float)

    def population_recipes(self) -> list[Recipe]:
        """The models the IRT is fitted on: the endpoints, the pre-trained encoder, ``population`` random merges."""
        return self.space.population(self.settings.population)

    def population_correctness(self) -> np.ndarray:
        """(m, I) the population's correctness on every item."""
        return self._once("population", lambda: self._timed("population: correctness on every item", lambda:
                          self.correctness(self.population_recipes(), desc="population")))

    def population_table(self) -> pd.DataFrame:
        return report.population_table(self.population_recipes(), self.population_correctness(), self.fit_pos,
                                       self.eval_pos, self.settings)

    def held_out(self) -> np.ndarray:
        """(e, k) the held-out merged models' answers on the reported items."""
        return self._once("held_out", lambda: self._timed("held-out merged models", lambda: self.correctness(
            self.space.held_out(self.settings.held_out_models), self.eval_pos, "held-out models")))

    def fitness_subset(self, replicate: int = 0, per_task: int | None = None) -> np.ndarray:
        """(k,) positions (into the fitness items) of a search's subset: ``per_task`` (default the profile's
        ``fitness_items``) random items of each task, drawn afresh for each replicate and size."""
        per_task = per_task or self.settings.fitness_items
        return self.space.fitness_subset(self.pool.task[self.fit_pos], per_task, replicate)

    def population_best(self) -> Recipe:
        """The population's best: of its random merges (each already scored on every item for the IRT fit, so
        this costs no evaluation), the one with the highest accuracy on all fitness items (ties: the first). A
        reference from a broader space (every merge method, one to three endpoints), not a control: the random
        search arm is the searches' control."""
        fixed = len(self.group) + 1
        acc = self.population_correctness()[fixed:, self.fit_pos].mean(axis=1)
        return self.population_recipes()[fixed + int(np.argmax(acc))]

    def baselines(self) -> dict[str, Recipe]:
        """The standard merges at their default coefficients (weights 1) and the endpoints."""
        return self.space.baselines(self.settings.baseline_density)

    # ---- calibration ---------------------------------------------------------------------------
    @cached_property
    def fits(self) -> IRTFits:
        """py-irt's fits of the population's answers, cached."""
        return IRTFits(self.population_correctness(), self.settings, self.seed, self.cache)

    @property
    def calibration(self) -> Calibration:
        return self._once("calibration", lambda: self._timed("IRT fits and the dimension (validation items)", lambda:
                          calibrate(self.fits, self.correctness, self.space, self.fit_pos)))

    def dimension_choice(self) -> pd.DataFrame:
        return self.calibration.dimension_table

    @property
    def dims(self) -> int:
        return self.calibration.dims

    # ---- the estimators judged ------------------------------------------------------------------
    @cached_property
    def tables(self) -> EvaluationTables:
        return EvaluationTables(self.calibration, self.fits, self.space, self.correctness, self.scorer, self.fit_pos,
                                self.eval_pos, self.settings, self.seed, self.cache)

    def mixing_choice(self) -> pd.DataFrame:
        """gp- and gmp-IRT's error on the validation models for every c; the chosen c per estimator."""
        return self._once("mixing", lambda: self._timed("mixing coefficient c (validation items)",
                                                        self.tables.mixing))

    def chosen_mixing(self) -> dict[str, float]:
        t = self.mixing_choice()
        return dict(zip(t.loc[t["chosen"], "estimator"], t.loc[t["chosen"], "c"]))

    def estimator_study(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(estimator_error, ability_similarity) on the held-out merged models' reported items, random subsets."""
        return split_error_tables(self._once("estimators", lambda: self._timed(
            "estimators on held-out merged models (Figs. 3-4)", lambda: self.tables.errors(
                self.held_out(), self.chosen_mixing()))))

    def extractor_study(self) -> pd.DataFrame:
        return self._once("extractors", lambda: self._timed("extractors compared", lambda: self.tables.extractors(
            self.held_out(), self.chosen_mixing())))

    def population_size_study(self) -> pd.DataFrame:
        return self._once("population_size", lambda: self._timed("population size (IRT refits)", lambda:
                          self.tables.population_sizes(self.held_out(), self.chosen_mixing())))

    def extractor_margins(self) -> pd.DataFrame:
        """The extractor claim's tolerance per (subset size, estimator), from the validation models' spread."""
        return self._once("extractor_margins", lambda: self._timed("extractor margins (validation items)", lambda:
                          self.tables.extractor_margins(self.chosen_mixing())))

    def extractor_units(self) -> pd.DataFrame:
        """The extractor study's errors per (held-out model, subset), for its claim (:mod:`~scoring_lab.irt.units`)."""
        return self._once("extractor_units", lambda: self._timed("extractors per unit (claims)", lambda:
                          units.extractor_units(self.tables, self.held_out(), self.chosen_mixing())))

    def test_correct(self, recipe: Recipe) -> np.ndarray:
        """(k,) ``recipe``'s 0/1 correctness on the reported items (cached per recipe)."""
        return self.scorer.score(recipe, self.eval_pos).correct.astype(float)

    # ---- the searches and their results ---------------------------------------------------------
    def _searches(self) -> Searches:
        return Searches(self.space, self.scorer, self.fit_pos, self.fitness_subset, self.calibration,
                        self.chosen_mixing(), self.settings, self.seed, self.cache)

    def searches(self) -> dict[SearchRun, SearchResult]:
        """Every arm's replicates (:attr:`runs`), run or read back from the cache."""
        def run_all():
            from tqdm.auto import tqdm

            searches, runs = self._searches(), list(self.runs)
            return {run: searches.run(run) for run in tqdm(runs, desc="searches", disable=not self.progress,
                                                               leave=False)}

        return self._once("searches", lambda: self._timed("evolutionary searches (every arm, every replicate)",
                                                          run_all))

    def sweep_searches(self) -> dict[SearchRun, SearchResult]:
        """The estimator's GA at each subset size of the sweep (replicate 0; the profile's size is the arm's)."""
        def run_all():
            searches, found = self._searches(), self.searches()
            return {run: found[run] if run in found else searches.run(run)
                    for run in self.runs.sweep_runs(self.settings.fitness_items)}

        return self._once("sweep", lambda: self._timed("subset-size sweep (Table 7)", run_all))

    def evolution_table(self) -> pd.DataFrame:
        return report.evolution_table(self.searches())

    def fitness_agreement(self) -> pd.DataFrame:
        return report.fitness_agreement(self.searches(), self.scorer, self.fit_pos)

    def pareto_table(self) -> pd.DataFrame:
        return report.pareto_table(self.searches()[self.runs.per_task], self.space, self.scorer, self.fit_pos)

    def results(self) -> pd.DataFrame:
        """Every search's chosen model (a row per replicate), the baselines and the per-task scorers, on the
        reported items."""
        return self._once("results", lambda: self._timed("test accuracy of the chosen models", lambda:
                          report.results_table(self.searches(), {POPULATION_BEST: self.population_best(),
                                                                 **self.baselines()}, self.space, self.scorer,
                                               self.eval_pos)))

    def arm_table(self) -> pd.DataFrame:
        """Each arm's test accuracy over its replicates (mean, sd, range)."""
        return report.arm_summary(self.results(), [a.label for a in self.runs.arms])

    # ---- what the fitness costs ------------------------------------------------------------------
    def cost_timing(self) -> pd.DataFrame:
        """:func:`~scoring_lab.irt.cost.timed_evaluations` on ``cost_models`` merges of the searches' kind, over
        the fitness pool and every subset size the searches use, cached (a warm chapter times nothing)."""
        def compute():
            subsets = {k: self.fitness_subset(0, k) for k in sorted({self.settings.fitness_items, *self.runs.sweep})}
            recipes = self.space.random_recipes(self.settings.cost_models, 7)
            return cost.timed_evaluations(self.scorer, recipes, self.fit_pos, subsets)

        return self._once("cost_timing", lambda: self._timed("per-evaluation cost timed (merge, load, scoring)",
                                                             lambda: self.tables._cached(
                                                                 "cost-timing", {"code": code_version(cost)},
                                                                 compute)))

    def costs(self) -> cost.RouteCosts:
        """What every arm's fitness costs (:class:`~scoring_lab.irt.cost.RouteCosts`): the IRT route's set-up is
        the population and the validation models scored on the fitness items and every py-irt fit of the
        calibration."""
        return self._once("costs", self._costs)

    def _costs(self) -> cost.RouteCosts:
        s, m = self.settings, len(self.population_recipes())
        return cost.RouteCosts(self.cost_timing(), {**self.searches(), **self.sweep_searches()},
                               m + s.validation_models, sum(self.fits.seconds(d) for d in s.dims),
                               sum(cost.fit_flops(m, len(self.pool), d, s.irt_epochs) for d in s.dims),
                               s.fitness_items, self.runs.full.label)

    def compute_table(self) -> pd.DataFrame:
        """The ledger of every arm (:func:`~scoring_lab.irt.cost.ledger`) with its test accuracy (mean over its
        replicates; a sweep's search, its one)."""
        return self._once("compute", self._compute_table)

    def _compute_table(self) -> pd.DataFrame:
        t = self.costs().table()
        res = self.results()
        acc = res[res["model"].isin(t["arm"])].groupby("model")["test_accuracy"].mean().to_dict()
        acc.update({run.label: float(self.test_correct(r.chosen).mean()) for run, r in self.sweep_searches().items()
                    if run.label not in acc})
        return t.assign(test_accuracy=t["arm"].map(acc))

    def sweep_table(self) -> pd.DataFrame:
        """The analog of the paper's Table 7: per subset size of the sweep, items per task and in all, the
        share of the fitness pool, the evolved merge's test accuracy, its per-evaluation and end-to-end cost
        ratios to full-data fitness; the full-data GA's own row first (replicate 0 for every row)."""
        ledger = self.compute_table().set_index("arm")
        sweep = self.sweep_searches()
        full = self.searches()[self.runs.full]
        rows = [(self.runs.full.label, len(self.fit_pos), full)] + [
            (run.label, len(r.subset), r) for run, r in sweep.items()]
        out = []
        for label, k, r in rows:
            led = ledger.loc[label]
            out.append({"run": label, "items": k, "share_of_pool": k / len(self.fit_pos),
                        "evaluations": len(r.log), "test_accuracy": float(self.test_correct(r.chosen).mean()),
                        "seconds_per_evaluation": led["seconds_per_evaluation"],
                        "end_to_end_seconds_ratio": led["end_to_end_seconds_ratio"],
                        "end_to_end_flops_ratio": led["end_to_end_flops_ratio"]})
        return pd.DataFrame(out)

    def timing_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"step": k, "seconds": round(v, 1)} for k, v in self.timing.items()])
