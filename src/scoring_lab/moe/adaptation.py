"""Adapting MTL and UniMoE-Guided to the held-out tasks (the paper's Table 5): new heads, and for
UniMoE-Guided its MoE block too, trained on the new tasks and a rehearsal share of the old tasks'
responses; what adaptation trains, how the adapted models score the new tasks, and what it costs
the old ones (forgetting)."""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
import torch

from ..models.per_task import task_fingerprint
from ..study_steps import TimedSteps
from . import layers as moe, multitask
from .evaluation import Evaluation
from .inputs import Inputs
from .protocol import GUIDED, IN_SAMPLE, MTL, StudySetup
from .search import ModelSelection
from .store import FittedModel, ModelStore, deployable


def rehearsal_rows(n: int, share: float, seed: int) -> np.ndarray:
    """A seeded subset of ceil(share * n) positions of 0..n-1 (sorted): an old task's rehearsal responses."""
    m = max(1, int(np.ceil(share * n)))
    return np.sort(np.random.default_rng(seed).choice(n, size=min(m, n), replace=False))


class Adaptation(TimedSteps):
    """The chosen MTL and UniMoE-Guided models extended to a study's held-out tasks, and their scores."""

    def __init__(self, setup: StudySetup, inputs: Inputs, store: ModelStore, evaluation: Evaluation,
                 selection: ModelSelection):
        self.setup, self.inputs, self.store = setup, inputs, store
        self.evaluation, self.selection = evaluation, selection
        self.timing, self._memo = setup.timing, {}

    def adapted(self, method: str, rehearsal: float | None = None) -> FittedModel:
        """``method``'s model (MTL or UniMoE-Guided) extended to the held-out tasks: new heads (and task
        embeddings); UniMoE-Guided also trains its MoE block, on the new tasks' training responses and a
        rehearsal share of the old tasks' (``moe.rehearsal``, or ``rehearsal``: 0 for the control without
        it), with its distillation term; MTL trains the new heads only.
        Everything else stays bit-identical. Early stopping watches the new tasks' validation loss (the
        paper does not say; with the old tasks' in it, their rising loss stopped training after one
        epoch, before the new heads had learned)."""
        setup = self.setup
        old, new = setup.old, setup.new
        base = self.selection.model(method)
        s = base.settings
        teacher = IN_SAMPLE if s.lambda_kd > 0 else None
        trains_moe = method != MTL
        share = (setup.settings.rehearsal if rehearsal is None else float(rehearsal)) if trains_moe else 0.0
        rehearse = trains_moe and share > 0
        tasks = old + new
        extra = {"adapt_from": base.key, "new": {t: task_fingerprint(setup.tasks[t]) for t in new},
                 "early_stopping": "new tasks' validation loss",
                 "rehearsal": share, "trains": "moe+new heads" if trains_moe else "new heads"}
        step = f"adaptation ({method})" if rehearsal is None else f"adaptation ({method}, rehearsal {share:g})"
        inputs = self.store.cache_inputs(f"{method} adapted", s, tasks, teacher, extra)

        def train():
            model = copy.deepcopy(base.model)
            torch.manual_seed(setup.seed)
            for t in new:
                model.add_task(t, setup.tasks[t].n_labels, setup.tasks[t].kind)
            for p in model.parameters():
                p.requires_grad_(False)
            trainable = [p for t in new for p in model.heads.heads[model.heads.names.index(t)].parameters()]
            if trains_moe and model.moe is not None:
                trainable += list(model.moe.parameters())
            for p in trainable:
                p.requires_grad_(True)
            tr = {t: self.inputs.task_data(t, "train", s, teacher) for t in new}
            va = {t: self.inputs.task_data(t, "val", s) for t in new}
            if rehearse:   # early stopping still watches the new tasks only: adaptation is for them
                for i, t in enumerate(old):
                    rows = rehearsal_rows(len(setup.tasks[t].train), share, setup.seed + i)
                    tr[t] = self.inputs.task_data(t, "train", s, teacher, rows)
            t0 = time.perf_counter()
            runner = model
            if multitask.trains_encoder_layers(model):   # its trained layers stay fixed: run them once, not each epoch
                runner, tr, va = multitask.over_final_states(model, not s.use_moe or s.moe_on == moe.POOLED, tr, va)
            _, history = multitask.train_multitask(runner, tr, va, s, setup.seed, trainable=trainable,
                                                   progress=setup.progress)
            return model.eval(), history, time.perf_counter() - t0

        return self._once(("adapted", method, share), lambda: self._timed(
            step,
            lambda: self.store.cached(f"{method} adapted", s, tasks, inputs, train)))

    def trainable_share(self) -> pd.DataFrame:
        """method, trainable (parameters adaptation updates), params (the whole adapted model), share."""
        rows = []
        for method in (MTL, GUIDED):
            f = self.adapted(method)
            new = sum(multitask.parameter_count(f.model.heads.heads[f.model.heads.names.index(t)])
                      for t in self.setup.new)
            moe_params = multitask.parameter_count(f.model.moe) if (method != MTL and f.model.moe is not None) else 0
            total = multitask.parameter_count(deployable(f, self.setup.backbone.model))
            rows.append({"method": method, "trainable": new + moe_params, "params": total,
                         "share": (new + moe_params) / total})
        return pd.DataFrame(rows)

    def generalization(self) -> pd.DataFrame:
        """method, task, metrics on the held-out tasks' test splits: Individual, MTL and UniMoE-Guided adapted."""
        new = self.setup.new
        parts = [self.evaluation.individual(new)] + [self.evaluation.evaluate(self.adapted(m), new, method=m)
                                                     for m in (MTL, GUIDED)]
        return pd.concat(parts, ignore_index=True)[self.setup.columns]

    def forgetting(self) -> pd.DataFrame:
        """metric, before, after: UniMoE-Guided's average over the training tasks' test splits before and
        after adaptation; after_no_rehearsal: the same adaptation without rehearsal (the control); and MTL's
        (which adaptation leaves unchanged) beside them."""
        old = self.setup.old
        before = self.evaluation.evaluate(self.selection.model(GUIDED), old)
        after = self.evaluation.evaluate(self.adapted(GUIDED), old)
        bare = self.evaluation.evaluate(self.adapted(GUIDED, rehearsal=0.0), old)
        mtl = self.evaluation.evaluate(self.adapted(MTL), old)
        return pd.DataFrame([{"metric": m, "before": float(before[m].mean()), "after": float(after[m].mean()),
                              "after_no_rehearsal": float(bare[m].mean()), "mtl": float(mtl[m].mean())}
                             for m in self.setup.metrics])
