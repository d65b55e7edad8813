"""The MoE chapter's study: MTL, UniMoE and UniMoE-Guided against the per-task scorers.

:class:`MoEStudy` runs the UniMoE paper's protocol on a run's tasks with the profile's ``moe``
settings: the paper's Tasks 1-7 train the multi-task models and its Tasks 8-9 (``moe.held_out``)
are kept for adaptation. The multi-task models share the profile's backbone. Two columns: over the
wholly frozen encoder every model trains over cached final-layer states
(:mod:`scoring_lab.models.frozen_states`; the search, the controls, the frozen column), and with the
encoder's top ``moe.trainable_layers`` layers trained too (:mod:`.encoder`; all of them on ``paper``) the
chosen models continue from the frozen ones: the chapter's models, adapted and judged. The teachers of
UniMoE-Guided are the per-task scorers (or, with ``moe.teacher``, a teacher fine-tuned per
task), their logits on the training responses joined by response id. Hyper-parameters are
chosen on validation responses; every table reports the test split. Every model and every
measurement goes through the artifact cache, so a warm chapter only reads them back.

The study is a facade over its steps, one module each: :mod:`.protocol` (the tasks' roles and
what the steps share), :mod:`.inputs` (states and teacher logits), :mod:`.store` (building,
training and caching models), :mod:`.evaluation` (scores and expert usage), :mod:`.search`
(choosing settings, Table 3), :mod:`.encoder` (the trained-encoder column), :mod:`.resources`
(Table 4), :mod:`.adaptation` (Table 5 and forgetting); :mod:`.report` sets the results beside the
paper's and judges its claims, :mod:`.prose` writes the page's findings and :mod:`.cost` counts what a
profile trains. Tasks carry rubric dimensions (a sigmoid each) or a score (a softmax each), one kind a run.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..data.task import Task
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer
from ..profiles import Profile
from ..study_steps import TimedSteps
from .adaptation import Adaptation
from .encoder import EncoderTraining
from .evaluation import Evaluation
from .evidence import Evidence, gather
from .inputs import Inputs
from .protocol import CONTINUED, CONTROLS, GUIDED, MTL, SINGLE, StudySetup
from .resources import resources_table
from .search import ModelSelection
from .store import FittedModel, ModelStore


@dataclass
class Column:
    """The steps behind one column of the chapter's tables: the models over one setting of the encoder
    (``setup.encoder_label``), their inputs, store and scores; ``models``: whatever gives a method's model
    (the search over the frozen encoder, or :class:`~.encoder.EncoderTraining`), ``adaptation``: its adaptation."""

    setup: StudySetup
    inputs: Inputs
    store: ModelStore
    evaluation: Evaluation
    models: object = None
    adaptation: Adaptation | None = None

    @classmethod
    def over(cls, setup: StudySetup) -> Column:
        inputs = Inputs(setup)
        return cls(setup, inputs, ModelStore(setup, inputs), Evaluation(setup, inputs))


class MoEStudy(TimedSteps):
    """The UniMoE protocol on ``tasks`` and their per-task ``scorers`` (``run.scorers()``): the
    chapter's tables, each made once per run by its step over the shared ``setup``. ``frozen``: the
    column over the wholly frozen encoder (the search, the controls); ``trained``: the column with the
    encoder's top layers trained (None when ``moe.trainable_layers`` is 0); ``main``: the chapter's models,
    the trained column where there is one. ``inputs``, ``store``, ``evaluation`` and ``adaptation`` are
    ``main``'s, ``selection`` the search's."""

    def __init__(self, tasks: dict[str, Task], scorers: dict[str, TrainedScorer], profile: Profile,
                 cache: ArtifactCache | None = None, seed: int = 0, progress: bool = True):
        setup = StudySetup(tasks, scorers, profile, cache, seed, progress)
        self.tasks, self.settings, self.old, self.new = setup.tasks, setup.settings, setup.old, setup.new
        self.timing, self._memo = setup.timing, {}
        self.frozen = Column.over(setup.frozen())
        self.selection = ModelSelection(self.frozen.setup, self.frozen.store, self.frozen.evaluation)
        self.frozen.models = self.selection
        self.trained = None
        if not setup.frozen_encoder:
            self.trained = Column.over(setup)
            self.trained.models = EncoderTraining(setup, self.trained.store, self.trained.evaluation, self.selection)
            self.frozen.inputs.below = self.trained.inputs   # the final states: one layer on from the trained column's
        self.main = self.trained or self.frozen
        self.main.adaptation = Adaptation(self.main.setup, self.main.inputs, self.main.store, self.main.evaluation,
                                          self.main.models)
        self.setup, self.inputs, self.store = self.main.setup, self.main.inputs, self.main.store
        self.evaluation, self.adaptation = self.main.evaluation, self.main.adaptation

    @property
    def layer(self) -> int:
        """The first encoder layer the chapter's models train (the layer count: the encoder stays frozen)."""
        return self.setup.layer

    @property
    def frozen_encoder(self) -> bool:
        return self.setup.frozen_encoder

    def families(self) -> dict[str, str] | None:
        """{task: planted family} when every task names one (the synthetic benchmark), else None."""
        return self.setup.families()

    # ---- the training tasks ----------------------------------------------------------
    def teacher_fit(self) -> pd.DataFrame:
        """task, split (train, val), the teachers' agreement with the truth and mean confidence
        (:func:`~.inputs.agreement_and_confidence`)."""
        return self.frozen.inputs.teacher_fit()

    def search(self) -> pd.DataFrame:
        """Every configuration tried (frozen encoder), its validation scores, epochs, seconds, key, and the chosen
        one per method."""
        return self.selection.search()

    def model(self, method: str) -> FittedModel:
        """The chapter's model of ``method`` (MTL, UniMoE, UniMoE-Guided: the trained column's where there is
        one); a control of :data:`~.protocol.CONTROLS` is over the frozen encoder."""
        return self.selection.model(method) if method in CONTROLS else self.main.models.model(method)

    def proba(self, fitted: FittedModel, task: str, split: str):
        """(n, L) ``fitted``'s probabilities on a split of ``task``, scored by the column it belongs to."""
        column = self.frozen if fitted.model.layer == self.frozen.setup.layer else self.main
        return column.evaluation.proba(fitted, task, split)

    def table3(self) -> pd.DataFrame:
        """method, task, the metrics and n_test on the training tasks' test splits (the chapter's column),
        each method's average last."""
        return self.main.models.table3()

    def freezing(self) -> pd.DataFrame:
        """What freezing the encoder costs: method, encoder (each column's label), the test averages of the
        metrics over the training tasks, and the gap to Individual's kappa; with the trained column, its
        freezing control (each frozen model trained on as long, :data:`~.protocol.CONTINUED`) and the transfer
        control (MTL's model trained one task at a time) beside MTL."""
        def make():
            tables = [(self.frozen.setup.encoder_label, self.frozen.models.table3())]
            if self.trained:
                tables += [(CONTINUED, self.trained.models.continued_table()),
                           (self.trained.setup.encoder_label, self.trained.models.table3())]
            ind = tables[0][1].query("task == 'average' and method == 'Individual'").iloc[0]
            rows = [self._freezing_row("Individual", "-", ind, ind)]
            for label, t3 in tables:
                avg = t3[(t3["task"] == "average") & (t3["method"] != "Individual")]
                rows += [self._freezing_row(r["method"], label, r, ind) for _, r in avg.iterrows()]
            if self.trained:
                single = self.trained.models.single_task_table()
                rows.append(self._freezing_row(SINGLE, self.trained.setup.encoder_label, single.mean(numeric_only=True),
                                               ind))
            return pd.DataFrame(rows)
        return self._once("freezing", make)

    def _freezing_row(self, method: str, encoder: str, scores, individual) -> dict:
        return {"method": method, "encoder": encoder, **{m: float(scores[m]) for m in self.setup.metrics},
                "gap_to_individual": float(individual["kappa"] - scores["kappa"])}

    def controls(self) -> pd.DataFrame:
        """UniMoE beside the dense block of its size, MTL beside MTL + KD, and UniMoE-Guided, over the frozen
        encoder: params, epochs, test averages and validation scores."""
        return self.selection.controls()

    def variants(self) -> pd.DataFrame:
        """The chosen UniMoE-Guided (frozen encoder) with its experts on every token, on the pooled vector (and
        out-of-fold teachers)."""
        return self.selection.variants()

    def expert_usage(self, fitted: FittedModel | None = None, split: str = "test") -> pd.DataFrame:
        """(tasks x experts) each expert's mean gate weight per task on ``split`` (the chapter's UniMoE-Guided's
        by default)."""
        fitted = fitted or self.model(GUIDED)
        column = self.frozen if fitted.model.layer == self.frozen.setup.layer else self.main
        return column.evaluation.expert_usage(fitted, split)

    def resources(self) -> pd.DataFrame:
        """model, params, disk_mb, latency_ms_batch1, latency_ms_batch32, relative_size (Table 4, this machine)."""
        guided, mtl = self.model(GUIDED), self.model(MTL)
        teacher = self.frozen.inputs.teachers[self.old[0]]
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
