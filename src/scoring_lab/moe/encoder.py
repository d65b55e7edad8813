"""The chapter's trained-encoder column: the search's chosen models with the shared encoder's top layers
trained too, and the control that separates transfer between tasks from training the layer at all.

The search and the controls run over the wholly frozen encoder (seconds an epoch over cached pooled
states); training an encoder layer costs about 40 s an epoch on the benchmark's seven training tasks on
two CPU cores, so only the chosen configurations train it. Each starts from the frozen-encoder model of the
same settings (its MoE block and heads) and trains the layers with them for ``moe.encoder_epochs`` epochs at
``moe.encoder_lr``, early-stopped on the validation loss (the frozen model itself when no epoch improves
it): MTL is then multi-task learning, one layer shared by every task's gradients, and negative transfer
can show. The control, :data:`SINGLE`, trains MTL's same start on each task alone, the same layer, epochs
and rate: MTL minus it is what sharing the layer across tasks does. The control for the cost of freezing,
:data:`CONTINUED`, trains each frozen-encoder model on for the same epochs at the same rate with no layer
trained (seconds over pooled states): a trained model minus it is what the layer does, not the extra epochs.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ..profiles import MultiTaskSettings
from ..study_steps import TimedSteps
from .evaluation import Evaluation
from .protocol import CONTINUED, MTL, SINGLE, StudySetup
from .search import ModelSelection, table3_of
from .store import FittedModel, ModelStore


class EncoderTraining(TimedSteps):
    """The models of the trained-encoder ``setup`` (its ``store`` and ``evaluation``), each started from the
    frozen ``selection``'s model of the same method."""

    def __init__(self, setup: StudySetup, store: ModelStore, evaluation: Evaluation, selection: ModelSelection):
        if setup.frozen_encoder:
            raise ValueError("the trained-encoder column needs moe.trainable_layers other than 0")
        self.setup, self.store, self.evaluation, self.selection = setup, store, evaluation, selection
        self.timing, self._memo = setup.timing, {}

    def settings_of(self, frozen: FittedModel) -> MultiTaskSettings:
        """``frozen``'s settings with the encoder stage's epochs, learning rate and autocast."""
        m = self.setup.settings
        return replace(frozen.settings, max_epochs=m.encoder_epochs, lr=m.encoder_lr or frozen.settings.lr,
                       autocast=m.encoder_autocast)

    def model(self, method: str) -> FittedModel:
        """``method``'s model (MTL, UniMoE, UniMoE-Guided) with the encoder's layers trained."""
        base = self.selection.model(method)
        return self.store.fit_from(f"{method}, {self.setup.encoder_label}", base, self.settings_of(base))

    def continued(self, method: str) -> FittedModel:
        """``method``'s frozen-encoder model trained on with this column's epochs, rate and autocast but no
        encoder layer (the frozen column's store): the control for what the trained layer adds."""
        base = self.selection.model(method)
        return self.selection.store.fit_from(f"{method}, {CONTINUED}", base, self.settings_of(base),
                                             step=f"training ({CONTINUED})")

    def continued_table(self) -> pd.DataFrame:
        """Table 3 (:func:`.search.table3_of`) of the :meth:`continued` models, scored over the frozen encoder."""
        return self._once("continued", lambda: table3_of(self.selection.evaluation, self.setup.old, self.continued))

    def single_task(self, task: str) -> FittedModel:
        """MTL's frozen-encoder head of ``task`` with the encoder's layers trained on ``task`` alone."""
        base = self.selection.model(MTL)
        return self.store.fit_from(f"{SINGLE} ({task}), {self.setup.encoder_label}", base, self.settings_of(base),
                                   [task], step=f"training ({SINGLE}, {self.setup.encoder_label})")

    def table3(self) -> pd.DataFrame:
        """Table 3 (:func:`.search.table3_of`) of this column's MTL, UniMoE and UniMoE-Guided."""
        return self._once("table3", lambda: table3_of(self.evaluation, self.setup.old, self.model))

    def single_task_table(self) -> pd.DataFrame:
        """method (the control's name), task and the metrics on each training task's test split."""
        return self._once("single", lambda: pd.concat(
            [self.evaluation.evaluate(self.single_task(t), [t], method=SINGLE) for t in self.setup.old],
            ignore_index=True))

