"""The MoE chapter's study: MTL, UniMoE and UniMoE-Guided against the per-task scorers.

:class:`MoEStudy` runs the UniMoE paper's protocol on a run's tasks with the profile's ``moe``
settings: the paper's Tasks 1-7 train the multi-task models and its Tasks 8-9 (``moe.held_out``)
are kept for adaptation. The multi-task models share the profile's backbone; on ``default``
it stays frozen and they train over cached final-layer states
(:mod:`scoring_lab.models.frozen_states`), on ``paper`` it fine-tunes whole. The teachers of
UniMoE-Guided are the per-task scorers (or, with ``moe.teacher``, a teacher fine-tuned per
task), their logits on the training responses joined by response id. Hyper-parameters are
chosen on validation responses; every table reports the test split. Every model and every
measurement goes through the artifact cache, so a warm chapter only reads them back.

The study is a facade over its steps, one module each: :mod:`.protocol` (the tasks' roles and
what the steps share), :mod:`.inputs` (states and teacher logits), :mod:`.store` (building,
training and caching models), :mod:`.evaluation` (scores and expert usage), :mod:`.search`
(choosing settings, Table 3), :mod:`.resources` (Table 4), :mod:`.adaptation` (Table 5 and
forgetting); :mod:`.report` sets the results beside the paper's and writes the prose.
"""
from __future__ import annotations

import pandas as pd

from ..data.task import Task
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer
from ..profiles import Profile
from ..study_steps import TimedSteps
from .adaptation import Adaptation
from .evaluation import Evaluation
from .evidence import Evidence, gather
from .inputs import Inputs
from .protocol import GUIDED, MTL, StudySetup
from .resources import resources_table
from .search import ModelSelection
from .store import FittedModel, ModelStore


class MoEStudy(TimedSteps):
    """The UniMoE protocol on ``tasks`` and their per-task ``scorers`` (``run.scorers()``): the
    chapter's tables, each made once per run by its step (``inputs``, ``store``, ``evaluation``,
    ``selection``, ``adaptation``) over the shared ``setup``."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        self.setup = setup = StudySetup(tasks, scorers, profile, cache, seed, progress)
        self.tasks, self.settings, self.old, self.new = setup.tasks, setup.settings, setup.old, setup.new
        self.timing, self._memo = setup.timing, {}
        self.inputs = Inputs(setup)
        self.store = ModelStore(setup, self.inputs)
        self.evaluation = Evaluation(setup, self.inputs)
        self.selection = ModelSelection(setup, self.store, self.evaluation)
        self.adaptation = Adaptation(setup, self.inputs, self.store, self.evaluation, self.selection)

    @property
    def layer(self) -> int:
        """The first encoder layer the multi-task models train (the layer count: the encoder stays frozen)."""
        return self.setup.layer

    @property
    def frozen_encoder(self) -> bool:
        return self.setup.frozen_encoder

    def families(self) -> dict[str, str] | None:
        """{task: planted family} when every task names one (the synthetic benchmark), else None."""
        return self.setup.families()

    # ---- the training tasks ----------------------------------------------------------
    def teacher_fit(self) -> pd.DataFrame:
        """task, split (train, val), the teachers' per_label_accuracy and mean confidence |2p - 1|."""
        return self.inputs.teacher_fit()

    def search(self) -> pd.DataFrame:
        """Every configuration tried, its validation scores, epochs, seconds, key, and the chosen one per method."""
        return self.selection.search()

    def model(self, method: str) -> FittedModel:
        """The chapter's model of ``method`` (MTL, or UniMoE / UniMoE-Guided as the search chose)."""
        return self.selection.model(method)

    def table3(self) -> pd.DataFrame:
        """method, task, the metrics and n_test on the training tasks' test splits, each method's average last."""
        return self.selection.table3()

    def controls(self) -> pd.DataFrame:
        """UniMoE beside the dense block of its size, MTL beside MTL + KD, and UniMoE-Guided: params, epochs,
        test averages and validation scores."""
        return self.selection.controls()

    def variants(self) -> pd.DataFrame:
        """The chosen UniMoE-Guided with its experts on every token, on the pooled vector (and out-of-fold teachers)."""
        return self.selection.variants()

    def expert_usage(self, fitted: FittedModel | None = None, split: str = "test") -> pd.DataFrame:
        """(tasks x experts) each expert's mean gate weight per task on ``split`` (UniMoE-Guided's by default)."""
        return self.evaluation.expert_usage(fitted or self.model(GUIDED), split)

    def resources(self) -> pd.DataFrame:
        """model, params, disk_mb, latency_ms_batch1, latency_ms_batch32, relative_size (Table 4, this machine)."""
        guided, mtl = self.model(GUIDED), self.model(MTL)
        teacher = self.inputs.teachers[self.old[0]]
        return self._timed("resources (sizes, latency)", lambda: resources_table(self.setup, guided, mtl, teacher))

    # ---- the held-out tasks ----------------------------------------------------------
    def adapted(self, method: str) -> FittedModel:
        """``method``'s model (MTL or UniMoE-Guided) adapted to the held-out tasks."""
        return self.adaptation.adapted(method)

    def trainable_share(self) -> pd.DataFrame:
        """method, trainable (parameters adaptation updates), params (the whole adapted model), share."""
        return self.adaptation.trainable_share()

    def generalization(self) -> pd.DataFrame:
        """method, task, metrics on the held-out tasks' test splits: Individual, MTL and UniMoE-Guided adapted."""
        return self.adaptation.generalization()

    def forgetting(self) -> pd.DataFrame:
        """metric, before, after, mtl: UniMoE-Guided's average over the training tasks before and after adaptation."""
        return self.adaptation.forgetting()

    def evidence(self) -> Evidence:
        """What the claims are judged on: every model's test predictions and UniMoE-Guided's gate weights
        per test response (:mod:`.evidence`)."""
        return self._once("evidence", lambda: self._timed("claims' evidence (predictions, gate weights)",
                                                          lambda: gather(self)))

    def timing_table(self) -> pd.DataFrame:
        """step, seconds: what each step of this run cost (loading, when it came from the cache)."""
        return pd.DataFrame([{"step": k, "seconds": round(v, 1)} for k, v in self.timing.items()])
