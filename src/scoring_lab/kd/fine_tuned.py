"""The fine-tuned transformers of each KD set: its teacher (fine-tuned on the set, or the per-task scorers of
its member tasks), whose class probabilities on the training responses are the KD targets, and its small
transformer (the paper's TinyBERT role); each trained once through the per-task scorer cache."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from . import distill as kd_module
from . import sets as kd_sets
from . import oracle as kd_oracle
from . import teachers as kd_teachers
from .plan import ORACLE, SMALL, TEACHER, KDPlan
from ..data.task import Split, Task
from ..metrics import accuracy
from ..merging.evaluation import OWN, Merge, MergeEvaluator
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer, get_scorer
from ..profiles import Profile, small_transformer_settings, teacher_settings
from ..study_steps import TimedSteps


@dataclass
class Teacher:
    """A KD set's teacher: its class probabilities on any split of the set, and the model(s) behind them.

    scorers: the fine-tuned transformer(s): one per set (``fine-tune``) or one per member task
    (``per-task``, each response scored by its own task's)."""

    source: str
    scorers: dict[str, TrainedScorer]
    predict_proba: Callable[[Split], np.ndarray]   # split of the set -> (n, K)

    def predict(self, split: Split) -> np.ndarray:
        """(n,) predicted classes of the split's responses."""
        return self.predict_proba(split).argmax(axis=1)

    @property
    def scorer(self):
        """The (first) transformer itself, for its size and speed."""
        return next(iter(self.scorers.values())).scorer


class FineTunedTransformers(TimedSteps):
    """The teachers, small transformers and teacher targets of ``plan``'s sets under ``profile``, each
    loaded (or trained) once. ``tasks`` are the source's tasks the sets were built from: the per-task
    teachers (``kd.teacher_source: per-task``) are their scorers."""

    def __init__(self, plan: KDPlan, profile: Profile, cache: ArtifactCache, progress: bool = True,
                 tasks: dict[str, Task] | None = None):
        self.plan, self.sets, self.profile, self.kd = plan, plan.sets, profile, profile.kd
        self.cache, self.progress, self.tasks = cache, progress, tasks
        self._memo: dict = {}   # (what, set, seed or how) -> a model or targets
        self.timing: dict[str, float] = {}   # step -> seconds (shared with the students: one cost table)
        if self.kd.teacher_source == "per-task":
            if tasks is None:
                raise ValueError("kd.teacher_source per-task needs the source's tasks (KDStudy(..., tasks=run.tasks))")
            for t in self.sets.values():
                kd_teachers.check_applies(t, tasks)

    def teacher(self, name: str, seed: int | None = None) -> Teacher:
        """The teacher of set ``name``: fine-tuned on the set (``fine-tune``), or the scorers of its member
        tasks with the profile's own train settings, the very ones of the chapter "Per-task scorers"."""
        seed = self.plan.seed if seed is None else seed
        return self._once(("teacher", name, seed), lambda: self._timed("teachers: load", lambda: self._teacher(name, seed)))

    def _teacher(self, name: str, seed: int) -> Teacher:
        task = self.sets[name]
        if self.kd.teacher_source == "fine-tune":
            trained = get_scorer(task, teacher_settings(self.profile), seed, self.cache, self.progress)
            return Teacher("fine-tune", {name: trained}, lambda split: self._timed(
                "teachers: inference", lambda: trained.predict_proba(split)))
        scorers = {m: self._member_scorer(m, seed) for m in kd_sets.spec_of(task).tasks}

        def member_proba(m: str, responses: Split) -> np.ndarray:   # looked up in the task's own predictions
            index, proba = self._once(("task proba", m, seed), lambda: kd_teachers.task_probabilities_by_id(
                self.tasks[m], scorers[m].predict_proba, self._train_split_proba(m, seed)))
            return proba[kd_teachers.rows_by_id(task, responses, index, m)]

        return Teacher("per-task", scorers, lambda split: self._timed("teachers: inference", lambda: (
            kd_teachers.per_task_probabilities(task, split, self.tasks, member_proba))))

    def _member_scorer(self, member: str, seed: int) -> TrainedScorer:
        """The per-task scorer of task ``member`` (the chapter "Per-task scorers"' own), once per study: a task
        several sets share (one both pooled and a single item) teaches them all with the one scorer."""
        return self._once(("scorer", member, seed), lambda: get_scorer(self.tasks[member], self.profile.train, seed,
                                                                       self.cache, self.progress))

    def _train_split_proba(self, member: str, seed: int) -> Callable[[Split], np.ndarray] | None:
        """How member task ``member``'s scorer scores the task's training split: on partial fine-tuning
        (``train.trainable_layers``), only its trained top layers over the frozen lower layers' states of the
        split, which are cached and shared with the chapters after this one (one
        :class:`~scoring_lab.merging.evaluation.MergeEvaluator` for every member task, so the backbone loads
        once); None (the scorer itself, every layer) on full fine-tuning or LoRA. Its validation and test
        splits are the chapter "Per-task scorers"' own predictions, read from the cache."""
        train = self.profile.train
        if train.trainable_layers is None or train.lora is not None:
            return None

        def evaluator() -> MergeEvaluator:
            members = list(dict.fromkeys(m for t in self.sets.values() for m in kd_sets.spec_of(t).tasks))
            return MergeEvaluator({m: self._member_scorer(m, seed) for m in members},
                                  {m: self.tasks[m] for m in members}, train, seed, self.cache, self.progress)

        shared = self._once(("evaluator", seed), evaluator)
        return lambda split: shared.probabilities((member,), Merge(OWN), "train")[member]

    def small_transformer(self, name: str, seed: int | None = None) -> TrainedScorer:
        """The small transformer of set ``name`` (``kd.small_transformer``'s settings)."""
        seed = self.plan.seed if seed is None else seed
        return self._once(("small", name, seed), lambda: self._timed("small transformers: fine-tune or load", lambda: (
            get_scorer(self.sets[name], small_transformer_settings(self.profile), seed, self.cache, self.progress))))

    def has_oracle(self, name: str) -> bool:
        """Whether set ``name``'s tasks carry the generator's label probabilities (:mod:`~scoring_lab.kd.oracle`)."""
        return self.tasks is not None and kd_oracle.applies(self.sets[name], self.tasks)

    def teacher_targets(self, name: str, how: str = "in-sample") -> kd_module.TeacherProbabilities:
        """The KD targets of a set's training responses: the seed's teacher scoring its own training data
        (``in-sample``), k fold teachers each scoring the fold it did not see (``out-of-fold``), or the
        generator's own probabilities (``oracle``, the positive control)."""
        return self._once(("targets", name, how), lambda: self._timed(
            "out-of-fold teachers: fine-tunes and inference" if how == "out-of-fold" else "teacher targets",
            lambda: self._teacher_targets(name, how)))

    def _teacher_targets(self, name: str, how: str) -> kd_module.TeacherProbabilities:
        task, seed = self.sets[name], self.plan.seed
        if how == ORACLE:
            return kd_oracle.oracle_targets(task, self.tasks or {})
        if how == "in-sample":
            return kd_module.TeacherProbabilities(task.train.ids, self.teacher(name).predict_proba(task.train))
        if how != "out-of-fold":
            raise ValueError(f"teacher targets are 'in-sample', 'out-of-fold' or {ORACLE!r}, got {how!r}")
        if self.kd.teacher_source == "fine-tune":
            settings = teacher_settings(self.profile)

            def predict_fold(fold_task, held):
                return get_scorer(fold_task, settings, seed, self.cache, self.progress).predict_proba(held)

            return kd_module.out_of_fold_probabilities(task, self.kd.oof_folds, predict_fold, seed)

        def predict_task_fold(fold_task, responses):
            return get_scorer(fold_task, self.profile.train, seed, self.cache, self.progress).predict_proba(
                responses)

        return kd_teachers.out_of_fold_class_probabilities(task, self.tasks, self.kd.oof_folds, seed,
                                                           predict_task_fold)


def transformer_training(transformers: FineTunedTransformers) -> pd.DataFrame:
    """How the transformers of each set trained (the plan's seed): set, model, models, val_accuracy
    and val_n (the set's validation responses the model never trained on, in the set's classes),
    epochs_run, best_epoch, epoch_cap, seconds. A per-task teacher is several scorers (a pooled
    set's): their largest epochs, their summed seconds; it trained on most of a set's validation
    responses (they come from its tasks' training splits), so only the others count."""
    rows = []
    for name, task in transformers.sets.items():
        teacher = transformers.teacher(name)
        y = task.val.scores
        everything = np.ones(len(y), dtype=bool)
        held = kd_teachers.not_trained_on(task, task.val, transformers.tasks) if teacher.source == "per-task" \
            else everything
        models = [(TEACHER, list(teacher.scorers.values()), teacher.predict(task.val), held, None)]
        if transformers.plan.has_small_transformer(name):
            small = transformers.small_transformer(name)
            models.append((SMALL, [small], small.predict(task.val), everything,
                           small_transformer_settings(transformers.profile).max_epochs))
        for model, scorers, pred, keep, cap in models:
            rows.append({"set": name, "model": model, "models": len(scorers),
                         "val_accuracy": accuracy(y[keep], pred[keep]) if keep.any() else float("nan"),
                         "val_n": int(keep.sum()),
                         "epochs_run": max(int(s.info["epochs_run"]) for s in scorers),
                         "best_epoch": max(int(s.info["best_epoch"]) for s in scorers),
                         "epoch_cap": cap, "seconds": float(sum(s.info["seconds"] for s in scorers))})
    return pd.DataFrame(rows).astype({"epoch_cap": "Int64"})
