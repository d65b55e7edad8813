"""The GW chapter's study: features, GW distances, merge plans, merged models and their tables.

:class:`GWStudy` runs the GW-SMM protocol on a run's tasks and per-task scorers with the
profile's ``gw`` settings: [CLS] features of each task's responses under its own scorer
(train and validation responses only: a plan is a choice, and test responses play no
part in choices), GW distances (the profile's solver, the conditional-gradient one beside it), the plan
that maximises the within-group similarity, the comparison plans, TIES-merged encoders
at one setting chosen on validation, and the Table 3 / Table 4 analogs. Every
expensive step goes through the artifact cache (features, distances, merged predictions),
so a warm chapter only reads tables back.

The study is a facade over its steps, one module each: :mod:`.protocol` (plan names, metrics and
what the steps share), :mod:`.features` (the feature clouds), :mod:`.distance_matrices` (GW matrices),
:mod:`.pairwise` (every pair merged, the TIES setting), :mod:`.premise` (merge loss against GW and its
controls), :mod:`.plan_ranks` (random, bootstrap and oracle plans on the same footing),
:mod:`.compared_plans` (the plans compared), :mod:`.merges` (merges of a plan's groups),
:mod:`.layerwise` (layer-wise coefficients), :mod:`.evaluation` (test tables and storage),
:mod:`.significance` (paired tests) and :mod:`.stability` (solver, subsample and bootstrap
checks); :mod:`.report` sets the results beside the paper's and writes the prose.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.task import Task
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer
from ..profiles import Profile
from . import gromov, merge_plans, significance
from .distance_matrices import GWDistances
from .evaluation import Evaluation
from .features import FeatureClouds
from .layerwise import LayerwiseFit
from .merges import Merges
from .pairwise import PairwiseMerges
from .plan_ranks import PlanRanks
from .premise import Premise
from .compared_plans import Planner, PlanEntry
from .protocol import DESCRIPTIONS, StudySetup
from .stability import Stability


class GWStudy:
    """The GW-SMM protocol on ``tasks`` and their per-task ``scorers`` (``run.scorers()``): the chapter's
    tables, each made once per run by its step (``clouds``, ``gw``, ``planner``, ``merges``,
    ``layerwise``, ``evaluation``, ``stability``) over the shared ``setup``."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        self.setup = setup = StudySetup(tasks, scorers, profile, cache, seed, progress)
        self.tasks, self.profile, self.settings, self.names = setup.tasks, setup.profile, setup.settings, setup.names
        self.kind, self.metrics, self.main, self.timing = setup.kind, setup.metrics, setup.main, setup.timing
        self.clouds = FeatureClouds(setup)
        self.gw = GWDistances(setup, self.clouds)
        self.planner = Planner(setup, self.gw)
        self.pairwise = PairwiseMerges(setup)
        self.premise = Premise(setup, self.clouds, self.gw, self.planner, self.pairwise)
        self.merges = Merges(setup, self.pairwise)
        self.layerwise = LayerwiseFit(setup, self.merges)
        self.stability = Stability(setup, self.clouds, self.gw, self.planner)
        self.ranks = PlanRanks(setup, self.planner, self.merges, self.premise, self.stability)
        self.evaluation = Evaluation(setup, self.planner, self.merges, self.layerwise, self.ranks.extra_plans)

    @property
    def n_models(self) -> int:
        """T': the profile's, or one fewer than the tasks when there are not more tasks than that."""
        return self.setup.n_models

    def families(self) -> dict[str, list[str]] | None:
        """{family: tasks} when every task's meta names its family (the synthetic benchmark), else None."""
        return self.setup.families()

    # ---- features and distances ------------------------------------------------------
    def features(self) -> dict[str, np.ndarray]:
        """{task: (n_t, H) final-layer [CLS] embeddings under the task's own scorer}."""
        return self.clouds.features()

    def distances(self, method: str | None = None) -> pd.DataFrame:
        """(T, T) GW distances with the profile's solver (or ``method``), on the features."""
        return self.gw.distances(method)

    def similarity(self, method: str | None = None) -> pd.DataFrame:
        """(T, T) the paper's similarity S of :meth:`distances`."""
        return self.gw.similarity(method)

    def solver_agreement(self) -> dict:
        """The profile's solver against the conditional-gradient one: spearman of the distances, same_plan,
        cg_plan."""
        return self.stability.solver_agreement()

    def subsample_effect(self) -> pd.DataFrame:
        """responses, spearman, max_similarity_change, same_plan: conditional-gradient GW on nested subsamples."""
        return self.stability.subsample_effect()

    def similarity_panels(self) -> dict[str, pd.DataFrame]:
        """The similarity matrices the chapter's heatmaps show: GW with the profile's solver, conditional-gradient
        GW and, when the tasks have descriptions, the description similarity."""
        s = self.settings
        panels = {f"GW ({s.method}, ε = {s.epsilon:g})": self.similarity(),
                  "GW (conditional gradient)": self.similarity(gromov.CONDITIONAL_GRADIENT)}
        if any(e.name == DESCRIPTIONS for e in self.plans()):
            panels["task descriptions (MiniLM)"] = self.planner.description_similarity()
        return panels

    # ---- plans ----------------------------------------------------------------------------
    def plans(self) -> list[PlanEntry]:
        """The GW plan and the plans it is compared with (paper, descriptions, families, random)."""
        return self.planner.plans()

    def plan(self, name: str) -> merge_plans.Plan:
        """The plan named ``name``."""
        return self.planner.plan(name)

    def plan_table(self) -> pd.DataFrame:
        """method, groups, n_models, source, gw_score (and ari_families, with planted families)."""
        return self.planner.plan_table()

    def random_plan_scores(self) -> np.ndarray:
        """The GW score of every plan the random ones are drawn from."""
        return self.planner.random_plan_scores()

    # ---- merging and its evaluation ---------------------------------------------------------
    def performance(self) -> pd.DataFrame:
        """Long: method, task, the kind's metrics, n_test (test split, every task under every method)."""
        return self.evaluation.performance()

    def label_performance(self) -> pd.DataFrame:
        """Long, multi-label only: method, task, label, f1, accuracy (test split)."""
        return self.evaluation.label_performance()

    def table3(self, performance: pd.DataFrame) -> pd.DataFrame:
        """Per method: plan, n_models, the test-size-weighted metrics and the gap to pre-merge (Table 3)."""
        return self.evaluation.table3(performance)

    def tuning_table(self) -> pd.DataFrame:
        """The validation grids of the GW plan's ablations (task arithmetic, per group): group, method,
        density, scaling, val score, chosen."""
        self.evaluation.methods()
        return self.merges.tuning_table()

    # ---- the premise: every pair merged -------------------------------------------------------
    def ties_choice(self) -> pd.DataFrame:
        """Per TIES setting of the grid: density, scaling, mean_loss, worst_loss over the pairwise merges
        (validation), chosen: the chapter's one setting."""
        return self.pairwise.choice_table()

    def pair_table(self) -> pd.DataFrame:
        """One row per task pair: its merge loss (validation) and every predictor's closeness."""
        return self.premise.pairs()

    def premise_correlations(self) -> pd.DataFrame:
        """Per predictor: Spearman's rho with the merge loss, its 95% interval (tasks resampled), verdict."""
        return self.premise.correlations()

    # ---- plans on the same footing ------------------------------------------------------------
    def plan_ranks(self) -> pd.DataFrame:
        """Every plan evaluated at the chapter's TIES setting: named, oracle, bootstrap and random plans."""
        return self.ranks.table()

    def layerwise_table(self) -> pd.DataFrame:
        """The fitted layer-wise coefficients: group, task, layer, start, coefficient."""
        return self.layerwise.table()

    def layerwise_summary(self) -> pd.DataFrame:
        """Per fitted group: the validation headline metric before and after the fit, the fit's loss."""
        return self.layerwise.summary()

    def ttests(self, performance: pd.DataFrame, labels: pd.DataFrame, pairs=None) -> pd.DataFrame:
        """Paired t-tests and Wilcoxon p per metric and pair of methods, over tasks and task-labels."""
        return significance.ttests(performance, labels, self.metrics, pairs)

    def storage(self) -> pd.DataFrame:
        """Per plan: n_models, total_mb, total_mb_shared_frozen, saving."""
        return self.evaluation.storage()

    # ---- beyond the paper: stability --------------------------------------------------------
    def bootstrap(self) -> pd.DataFrame:
        """One row per bootstrap resample: replicate, plan, same_as_cg_plan, groups (, ari_families)."""
        return self.stability.bootstrap()

    def group_frequencies(self, boot: pd.DataFrame) -> pd.DataFrame:
        """group, share (of the bootstrap plans that have it), in_gw_plan."""
        return self.stability.group_frequencies(boot)

    # ---- cost -------------------------------------------------------------------------------
    def timing_table(self) -> pd.DataFrame:
        """step, seconds: this run's wall time per step (a cached step costs its loading)."""
        return pd.DataFrame([{"step": k, "seconds": v} for k, v in self.timing.items()])

    def solver_table(self) -> pd.DataFrame:
        """Each distinct GW matrix solved: step, method, responses, workers, seconds (when it was solved)."""
        return self.gw.solver_table()
