"""The KD chapter's experiment as one object: teachers, baselines and students over seeds, each trained
once and cached, and the tables the chapter draws from them.

For every KD data set (:mod:`scoring_lab.kd.sets`) a :class:`KDStudy` gives

* the teacher: a fine-tuned transformer (``training.train_scorer`` through the
  per-task scorer cache) with the profile's train settings and ``kd.teacher``'s
  changes; its class probabilities on the training responses are the KD targets;
* the small transformer (the paper's TinyBERT role): the same scorer code with
  ``kd.small_transformer``'s settings (on ``default`` the lower layers of the
  packaged MiniLM, on ``paper`` a TinyBERT checkpoint by name);
* the ANN (:mod:`scoring_lab.kd.ann`) and the LSTM student with lambda = 0 and with
  the paper's lambda (:mod:`scoring_lab.kd.distill`), over ``kd.seeds`` seeds.

It is a facade over the step modules: :mod:`~scoring_lab.kd.plan` (which models, seeds and sets),
:mod:`~scoring_lab.kd.fine_tuned` (teachers, small transformers, teacher targets),
:mod:`~scoring_lab.kd.students` (students and the ANN, cached),
:mod:`~scoring_lab.kd.vocab_choice` (the student vocabulary's count threshold, chosen on validation),
:mod:`~scoring_lab.kd.unknown_words` (accuracy with and without words unseen in training),
:mod:`~scoring_lab.kd.agreement` (agreement with the teacher and KL on test, and its paired test),
:mod:`~scoring_lab.kd.results_over_seeds` (per-seed test results, the lambda sweep, out-of-fold
against in-sample targets) and :mod:`~scoring_lab.kd.footprint` (the shipped student, size and speed).
The chapter summarises the results with :mod:`~scoring_lab.kd.tables` and states its claims and
prose with :mod:`~scoring_lab.kd.report`.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import distill as kd_module
from . import agreement, footprint
from . import results_over_seeds
from . import unknown_words as unknown_words_module
from . import vocab_choice as vocab_choice_module
from .ann import ANNBaseline
from .fine_tuned import FineTunedTransformers, Teacher, transformer_training
from .plan import KDPlan
from .students import CachedStudent, StudentsAndANN
from ..data.task import Task
from ..models.cache import ArtifactCache
from ..models.per_task import TrainedScorer
from ..profiles import Profile


class KDStudy:
    """Everything the KD chapter trains, for the sets ``sets`` under ``profile`` (seeds from ``seed``).

    ``tasks`` are the source's tasks the sets were built from: the per-task teachers
    (``kd.teacher_source: per-task``) are their scorers."""

    def __init__(self, sets: dict[str, Task], profile: Profile, cache: ArtifactCache | None = None, seed: int = 0,
                 progress: bool = True, tasks: dict[str, Task] | None = None):
        self.sets, self.profile, self.kd, self.tasks = sets, profile, profile.kd, tasks
        self.cache = cache or ArtifactCache()
        self.progress = progress
        self.plan = KDPlan(sets, profile.kd, seed)
        self.seed = self.plan.seed
        self.transformers = FineTunedTransformers(self.plan, profile, self.cache, progress, tasks)
        self.models = StudentsAndANN(self.plan, self.transformers, self.cache, progress)

    # ---- the plan ---------------------------------------------------------------------------
    @property
    def single_item_sets(self) -> list[str]:
        return self.plan.single_item_sets

    def has_small_transformer(self, name: str) -> bool:
        return self.plan.has_small_transformer(name)

    # ---- the models -------------------------------------------------------------------------
    def teacher(self, name: str, seed: int | None = None) -> Teacher:
        return self.transformers.teacher(name, seed)

    def small_transformer(self, name: str, seed: int | None = None) -> TrainedScorer:
        return self.transformers.small_transformer(name, seed)

    def teacher_targets(self, name: str, how: str = "in-sample") -> kd_module.TeacherProbabilities:
        return self.transformers.teacher_targets(name, how)

    def train_students(self, name: str, requests: list[kd_module.StudentRequest] | None = None) -> int:
        return self.models.train_students(name, requests)

    def student(self, name: str, seed: int, lam: float, how: str = "in-sample") -> CachedStudent:
        return self.models.student(name, seed, lam, how)

    def ann_test_proba(self, name: str, seed: int) -> tuple[np.ndarray, dict]:
        return self.models.ann_test_proba(name, seed)

    def fit_ann(self, name: str, seed: int) -> ANNBaseline:
        return self.models.fit_ann(name, seed)

    # ---- the chapter's steps ----------------------------------------------------------------
    def vocab_choice(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.vocab_choice.choice` of every set: set, min_count, vocab_size,
        val_accuracy_mean, val_accuracy_sd, seeds, chosen."""
        return vocab_choice_module.choice_table([self.models.vocab_choice(n) for n in self.sets])

    def unknown_words(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.unknown_words.unknown_word_table`: every model's test accuracy on the
        responses with and without a word no training response of the set has, per set."""
        return unknown_words_module.unknown_word_table(self.models, self.test_predictions)

    @cached_property
    def test_predictions(self) -> dict[tuple[str, str, int], np.ndarray]:
        """:func:`~scoring_lab.kd.results_over_seeds.predicted_test_classes`: every model's predicted test classes,
        {(set, model, seed): (n_test,)}."""
        return results_over_seeds.predicted_test_classes(self.transformers, self.models, self.progress)

    @cached_property
    def test_probabilities(self) -> tuple[dict, dict]:
        """:func:`~scoring_lab.kd.agreement.probabilities_on_test`: the teacher's and every other model's test
        probabilities, computed once for the agreement table and its paired test."""
        return agreement.probabilities_on_test(self.transformers, self.models)

    def agreement_with_teacher(self) -> pd.DataFrame:
        """Per set and model, agreement with the teacher's class and KL(teacher || model) on the test
        responses, mean and sd over seeds (:mod:`~scoring_lab.kd.agreement`)."""
        return agreement.agreement_table(agreement.agreement_rows(*self.test_probabilities))

    def agreement_gain(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.agreement.agreement_gain`: the KD student's agreement with the teacher against
        the lambda = 0 student's, per set, paired over test responses, Holm over the sets (the profile's
        ``claims`` resamples and seed)."""
        c = self.profile.claims
        return agreement.agreement_gain(*self.test_probabilities, c.n_resamples, c.seed)

    @cached_property
    def seed_results(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.results_over_seeds.seed_results`: every model's test scores per set and seed."""
        return results_over_seeds.seed_results(self.transformers, self.models, self.progress, self.test_predictions)

    def sweep(self, name: str | None = None) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.results_over_seeds.lambda_sweep` on set ``name`` (default the plan's)."""
        return results_over_seeds.lambda_sweep(self.models, name, self.progress)

    def out_of_fold_comparison(self, name: str | None = None) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.results_over_seeds.out_of_fold_comparison` on set ``name`` (default the plan's)."""
        return results_over_seeds.out_of_fold_comparison(self.transformers, self.models, name)

    def transformer_training(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.fine_tuned.transformer_training`: how each set's transformers trained."""
        return transformer_training(self.transformers)

    def ship_student(self, name: str, folder: Path, n_example: int = 5) -> dict:
        """:func:`~scoring_lab.kd.footprint.ship_student`: set ``name``'s KD student as a deployable folder."""
        return footprint.ship_student(self.models, name, folder, n_example)

    def size_and_speed(self, name: str, onnx_path: Path, n_responses: int = 32, threads: int = 1,
                       repeats: int = 3) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.footprint.size_and_speed` of set ``name``'s models."""
        return footprint.size_and_speed(self.transformers, self.models, name, onnx_path, n_responses, threads,
                                        repeats)

    def response_latencies(self, name: str, n_responses: int = 32, threads: int = 1) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.footprint.response_latencies` of set ``name``: seconds per test response of
        the small transformer and the KD student, one response at a time."""
        return footprint.response_latencies(self.transformers, self.models, name, n_responses, threads)
