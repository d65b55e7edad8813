"""What the multi-task models read: the frozen states of each split entering their first trained
layer (per token, or pooled to one row per response), and the teachers' logits on the training
responses joined by response id (in-sample, or out-of-fold); with how those teachers fit the labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import KFold

from ..kd.teachers import without_responses
from ..merging.evaluation import OWN, Merge, MergeEvaluator
from ..models.cache import code_version
from ..models.frozen_states import STATES_KIND, FrozenStates, StateMaker, first_trainable_layer, states_inputs
from ..models.per_task import TrainedScorer, get_scorer, get_scorers, split_fingerprint
from ..profiles import MultiTaskSettings
from ..study_steps import TimedSteps
from . import layers as moe, multitask
from .multitask import TaskData
from .protocol import IN_SAMPLE, StudySetup, decide


def logits_of(proba: np.ndarray, kind: str = "multilabel", eps: float = 1e-6) -> np.ndarray:
    """(n, L) logits of (n, L) probabilities, clipped to [eps, 1 - eps] first: each label's log-odds
    (``multilabel``), or the log-probabilities of a score's classes (``multiclass``: logits whose softmax
    gives the probabilities back, renormalised after the clipping)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), eps, 1 - eps)
    return (np.log(p) if kind == "multiclass" else np.log(p / (1 - p))).astype(np.float32)


def agreement_and_confidence(proba: np.ndarray, truth: np.ndarray, kind: str) -> tuple[float, float]:
    """How probabilities (n, L) sit against the truth: the share of decisions that match it (per rubric
    dimension, or per response's score) and the mean confidence, |2p - 1| per dimension, or
    (K max_k p_k - 1) / (K - 1) per response over K classes (0 for a uniform guess, 1 for a certain one;
    |2p - 1| again for K = 2)."""
    p = np.asarray(proba, dtype=float)
    agree = float((decide(p, kind) == np.asarray(truth)).mean())
    if kind == "multiclass":
        k = p.shape[1]
        return agree, float(((k * p.max(axis=1) - 1) / max(k - 1, 1)).mean())
    return agree, float(np.abs(2 * p - 1).mean())


def label_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint, seeded folds of positions 0..n-1 (held-out rows of each fold, sorted)."""
    if k < 2 or k > n:
        raise ValueError(f"out-of-fold teachers need 2 <= k <= {n} folds, got {k}")
    return [np.sort(held) for _, held in KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))]


class Inputs(TimedSteps):
    """The states and teacher logits of a study's tasks, each made once per run (and cached)."""

    def __init__(self, setup: StudySetup):
        self.setup = setup
        self.maker = StateMaker(setup.profile.train, setup.seed, setup.cache, setup.progress, layer=setup.layer)
        self.timing, self._memo = setup.timing, {}
        self.below: Inputs | None = None   # another column's inputs, at a lower frozen layer, to advance from

    @property
    def evaluator(self) -> MergeEvaluator:
        """The per-task scorers over their shared frozen states (the GW chapter's, with its caches)."""
        s = self.setup
        return self._once("evaluator", lambda: MergeEvaluator(s.scorers, s.tasks, s.profile.train, s.seed, s.cache,
                                                              s.progress))

    def states(self, task: str, split: str, pooled: bool = False) -> FrozenStates:
        """The frozen states of one split of ``task`` entering the multi-task models' first trained layer
        (pooled: one mean row per response). When the per-task scorers share lower layers below that
        layer, their states (cached for the whole book) are advanced through the layers between; when
        ``below`` (another column's inputs) enters a frozen layer between those and this one, from its states."""
        setup = self.setup
        s = setup.tasks[task].splits()[split]
        below = self.below if self.below is not None and 0 < self.below.setup.layer < setup.layer else None

        def direct():
            return self.maker.states(s, split_fingerprint(s), f"{task} {split}")

        def advanced():
            lower = below.states(task, split) if below is not None else self.evaluator.states(task, s, split)
            inputs = {**states_inputs(split_fingerprint(s), setup.profile.train, setup.seed, setup.layer),
                      "from_layer": lower.layer, "code": code_version(multitask)}

            def produce(folder: Path):
                st = multitask.advance_states(lower, setup.backbone.model, setup.layer)
                np.save(folder / "values.npy", st.values)
                np.save(folder / "offsets.npy", st.offsets)

            value, _ = setup.cache.get_or_compute(STATES_KIND, inputs, produce, lambda art: FrozenStates(
                setup.layer, np.load(art.file("offsets.npy")), values=np.load(art.file("values.npy"))))
            return value

        base = first_trainable_layer(setup.profile.train, setup.backbone.n_layers)
        make = advanced if below is not None or 0 < base < setup.layer else direct
        step = ("frozen states (encoder output)" if setup.frozen_encoder
                else f"frozen states (into layer {setup.layer + 1})")
        full = self._once(("states", task, split), lambda: self._timed(step, make))
        return self._once(("pooled", task, split), lambda: multitask.pooled_states(full)) if pooled else full

    @property
    def teachers(self) -> dict[str, TrainedScorer]:
        """The per-task teachers: the per-task scorers, or (``moe.teacher``) one fine-tuned per task."""
        s = self.setup
        if not s.settings.teacher:
            return s.scorers
        return self._once("teachers", lambda: self._timed("teachers", lambda: get_scorers(
            s.tasks, s.teacher_settings, s.seed, s.cache, s.progress)))

    def teacher_proba(self, task: str, split: str) -> np.ndarray:
        """(n, L) the teacher's probabilities on a split of ``task``: a per-task scorer runs over the shared
        frozen states (equal to its own run, cached with the GW chapter's), another teacher on its own."""
        if self.setup.settings.teacher:
            return self.teachers[task].predict_proba(self.setup.tasks[task].splits()[split])
        return self.evaluator.probabilities((task,), Merge(OWN), split)[task]

    def teacher_logits(self, task: str, how: str = IN_SAMPLE) -> dict[str, torch.Tensor]:
        """{response id: (L,) teacher logits} for ``task``'s training responses: the teacher's own
        (in-sample, the paper's), or each from the teacher retrained without its fold (out-of-fold)."""
        s = self.setup

        def make():
            train = s.tasks[task].train
            kind = s.tasks[task].kind
            if how == IN_SAMPLE:
                logits, ids = logits_of(self.teacher_proba(task, "train"), kind), train.ids
            else:
                ids, parts = [], []
                for j, held in enumerate(label_folds(len(train), s.settings.teacher_folds, s.seed)):
                    held_ids = {str(i) for i in train.ids[held]}
                    fold_task = without_responses(s.tasks[task], held_ids,
                                                  f"{task} (without fold {j + 1}/{s.settings.teacher_folds})")
                    teacher = get_scorer(fold_task, s.teacher_settings, s.seed, s.cache, s.progress)
                    parts.append(logits_of(teacher.predict_proba(train.subset(held)), kind))
                    ids.append(train.ids[held])
                ids, logits = np.concatenate(ids), np.concatenate(parts)
            return {str(i): torch.from_numpy(row) for i, row in zip(ids, logits)}
        return self._once(("teacher", task, how), lambda: self._timed(f"teacher logits ({how})", make))

    def task_data(self, task: str, split: str, settings: MultiTaskSettings, teacher: str | None = None,
                  rows: np.ndarray | None = None) -> TaskData:
        """One task's responses of ``split`` for training (``rows``: a subset), with teacher logits joined
        by response id when ``teacher`` names how they were made."""
        s = self.setup.tasks[task].splits()[split]
        states = self.states(task, split, self.setup.reads_pooled(settings))
        labels, ids = self.setup.truth(task, split), s.ids
        if rows is not None:
            states, labels, ids = states.select(rows), labels[rows], ids[rows]
        t = None
        if teacher is not None:
            t = moe.teacher_logits_for(ids, self.teacher_logits(task, teacher), task).numpy()
        return TaskData(states, np.asarray(labels), np.asarray(ids), t)

    def teacher_fit(self) -> pd.DataFrame:
        """How the teachers' (in-sample) logits sit against the labels: per training task, the teachers'
        agreement with the truth (per-label accuracy, or accuracy of a score) on the responses they trained
        on and on validation ones, and their mean confidence on each (:func:`agreement_and_confidence`)."""
        def make():
            rows = []
            setup = self.setup
            for t in setup.old:
                for split in ("train", "val"):
                    agree, confidence = agreement_and_confidence(self.teacher_proba(t, split),
                                                                 setup.truth(t, split), setup.kind)
                    rows.append({"task": t, "split": split, "agreement": agree, "confidence": confidence})
            return pd.DataFrame(rows)
        return self._once("teacher_fit", make)
