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
  the lambda and temperature chosen on validation (:mod:`scoring_lab.kd.distill`), over
  ``kd.seeds`` seeds, and beside them the positive control: the same student distilled from
  the benchmark generator's own probabilities, where the data have them.

It is a facade over the step modules: :mod:`~scoring_lab.kd.plan` (which models, seeds and sets),
:mod:`~scoring_lab.kd.fine_tuned` (teachers, small transformers, teacher targets),
:mod:`~scoring_lab.kd.students` (students and the ANN, cached),
:mod:`~scoring_lab.kd.vocab_choice` (the student vocabulary's count threshold, chosen on validation),
:mod:`~scoring_lab.kd.distillation_choice` (lambda and the temperature, chosen on validation),
:mod:`~scoring_lab.kd.oracle` (the positive control's teacher, the generator's own probabilities),
:mod:`~scoring_lab.kd.claim_tests` (paired tests over test responses, Holm over the sets),
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
from . import agreement, claim_tests, footprint
from . import results_over_seeds, student_predictions
from . import unknown_words as unknown_words_module
from . import vocab_choice as vocab_choice_module
from .ann import ANNBaseline
from .fine_tuned import FineTunedTransformers, Teacher, transformer_training
from .plan import ANN, KD_STUDENT, ORACLE, ORACLE_STUDENT, SMALL, STUDENT, TEACHER, KDPlan
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
    def distillation_choice(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.distillation_choice.choice`: lambda and tau of the KD student, chosen on the
        sweep set's validation responses (set, lam, temperature, val_accuracy_mean, val_accuracy_sd, seeds,
        chosen)."""
        return self.models.distillation_choice()

    def kd_setting(self) -> tuple[float, float]:
        """(lambda, tau) of every set's KD student."""
        return self.models.kd_setting()

    @property
    def test_truth(self) -> dict[str, np.ndarray]:
        """{set: (n_test,) test classes}."""
        return {name: task.test.scores for name, task in self.sets.items()}

    def _gain(self, a: str, b: str, predictions: dict | None = None) -> pd.DataFrame:
        c = self.profile.claims
        samples = claim_tests.by_set(self.test_predictions if predictions is None else predictions,
                                     self.test_truth, a, b)
        return claim_tests.gain_by_set(samples, c.n_resamples, c.seed)

    def paired_tests(self) -> pd.DataFrame:
        """The KD student against each baseline and the lambda = 0 student, per set:
        :func:`~scoring_lab.kd.claim_tests.gain_by_set` (test accuracy paired over the same responses, seeds
        pooled per response, Holm over the sets within each baseline), a ``baseline`` column first."""
        rows = [self._gain(KD_STUDENT, other).assign(baseline=other) for other in (TEACHER, SMALL, ANN, STUDENT)]
        out = pd.concat([r for r in rows if len(r)], ignore_index=True)
        return out[["baseline", *[c for c in out.columns if c != "baseline"]]]

    def control_gain(self) -> pd.DataFrame:
        """The positive control per set: the student distilled from the generator's probabilities against the
        lambda = 0 student (:func:`~scoring_lab.kd.claim_tests.gain_by_set`; empty where no set has them)."""
        return self._gain(ORACLE_STUDENT, STUDENT)

    def targets_against_labels(self) -> pd.DataFrame:
        """Per set and kind of target (the teacher's in-sample targets; the generator's, where the set has
        them): how often their top class is the training response's label (``agreement_with_labels``) and
        their mean top probability (``top_probability``), over the set's training responses."""
        rows = []
        for name, task in self.sets.items():
            for how in ("in-sample", ORACLE) if self.models.has_oracle(name) else ("in-sample",):
                p = self.teacher_targets(name, how).for_ids(task.train.ids, task.n_classes)
                rows.append({"set": name, "targets": how, "n_train": len(task.train),
                             "agreement_with_labels": float((p.argmax(axis=1) == task.train.scores).mean()),
                             "top_probability": float(p.max(axis=1).mean())})
        return pd.DataFrame(rows)

    def out_of_fold_gain(self) -> pd.DataFrame:
        """The KD student with out-of-fold against in-sample targets on each set of the comparison, paired
        over its test responses, Holm over the sets (:func:`~scoring_lab.kd.claim_tests.gain_by_set`)."""
        names = self.plan.oof_sets
        predictions = {(name, how, s): student_predictions.kd_student_proba(self.models, name, s, how).argmax(axis=1)
                       for name in names for how in ("out-of-fold", "in-sample") for s in self.plan.seeds}
        return self._gain("out-of-fold", "in-sample", predictions)

    def step_costs(self) -> pd.DataFrame:
        """step, seconds: what each step of this run cost (a step taken from the cache costs its loading; inner
        steps are counted apart, so the seconds add up)."""
        timing = self.transformers.timing
        return pd.DataFrame([{"step": k, "seconds": round(timing[k], 1)} for k in sorted(timing)],
                            columns=["step", "seconds"])

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

    def out_of_fold_comparison(self) -> pd.DataFrame:
        """:func:`~scoring_lab.kd.results_over_seeds.out_of_fold_comparison` on the plan's sets."""
        return results_over_seeds.out_of_fold_comparison(self.transformers, self.models)

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
