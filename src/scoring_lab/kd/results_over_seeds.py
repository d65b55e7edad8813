"""Test results of the KD chapter's models, one row per seed: every model on every set (Table 2's raw
rows, from the models' test predictions, which the claims' paired tests read), the KD student over the lambda sweep, and with in-sample against out-of-fold teacher targets."""
from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import distill as kd_module
from . import student_predictions
from .fine_tuned import FineTunedTransformers
from .plan import ANN, KD_STUDENT, ORACLE, ORACLE_STUDENT, SMALL, STUDENT, TEACHER
from .students import StudentsAndANN
from ..data.task import Task
from ..metrics import accuracy, multiclass_macro_f1, multiclass_weighted_f1, quadratic_weighted_kappa

METRICS = ("accuracy", "macro_f1", "weighted_f1", "qwk")


def scores_of(task: Task, pred: np.ndarray) -> dict:
    """:data:`METRICS` of (n,) predicted classes on the test split: accuracy, macro-F1 (over every class of
    the task), weighted F1 (classes weighted by their test support; the paper's F1 tracks its accuracy as
    this one does) and quadratic weighted kappa (the scores are ordinal)."""
    y = task.test.scores
    return {"accuracy": accuracy(y, pred), "macro_f1": multiclass_macro_f1(y, pred, task.n_classes),
            "weighted_f1": multiclass_weighted_f1(y, pred), "qwk": quadratic_weighted_kappa(y, pred)}


def predicted_test_classes(transformers: FineTunedTransformers, models: StudentsAndANN,
                           progress: bool = True) -> dict[tuple[str, str, int], np.ndarray]:
    """Every model's predicted classes on each set's test split, from the cached models:
    {(set, model, seed): (n_test,) classes}, in Table 2's order (the claims' paired tests read them), the
    positive control's student last where the set has one."""
    plan = models.plan
    out = {}
    for name, task in tqdm(plan.sets.items(), desc="KD sets", unit="set", disable=not progress):
        for s in plan.transformer_seeds:
            out[(name, TEACHER, s)] = transformers.teacher(name, s).predict(task.test)
            if plan.has_small_transformer(name):
                out[(name, SMALL, s)] = transformers.small_transformer(name, s).predict(task.test)
        for s in plan.seeds:
            out[(name, ANN, s)] = models.ann_test_proba(name, s)[0].argmax(axis=1)
            out[(name, STUDENT, s)] = student_predictions.student_proba(models, name, s, 0.0).argmax(axis=1)
            out[(name, KD_STUDENT, s)] = student_predictions.kd_student_proba(models, name, s).argmax(axis=1)
        if models.has_oracle(name):
            for s in plan.seeds:
                out[(name, ORACLE_STUDENT, s)] = student_predictions.kd_student_proba(models, name, s, ORACLE).argmax(axis=1)
    return out


def scores_of_predictions(sets: dict[str, Task], predictions: dict[tuple[str, str, int], np.ndarray]) -> pd.DataFrame:
    """One row per set, model and seed of :func:`predicted_test_classes`: set, model, seed, the :data:`METRICS`,
    n_test."""
    return pd.DataFrame([{"set": name, "model": model, "seed": seed, **scores_of(sets[name], pred),
                          "n_test": len(sets[name].test)} for (name, model, seed), pred in predictions.items()])


def seed_results(transformers: FineTunedTransformers, models: StudentsAndANN, progress: bool = True,
                 predictions: dict | None = None) -> pd.DataFrame:
    """One row per set, model and seed: set, model, seed, the :data:`METRICS`, n_test (from ``predictions``
    of :func:`predicted_test_classes` where given)."""
    predictions = predicted_test_classes(transformers, models, progress) if predictions is None else predictions
    return scores_of_predictions(models.plan.sets, predictions)


def lambda_sweep(models: StudentsAndANN, name: str | None = None, progress: bool = True) -> pd.DataFrame:
    """The lambda and temperature sweep on one set (default the plan's sweep set): set, targets (``in-sample``:
    the teacher's; ``oracle``: the generator's, at the chosen temperature, where the set has it), lam,
    temperature, seed, val_accuracy and the :data:`METRICS`, one row per student (lambda 0 once, at tau 1)."""
    plan = models.plan
    name = name or plan.sweep_set
    task = plan.sets[name]
    _, tau_chosen = models.kd_setting()
    runs = [("in-sample", 0.0, 1.0)] + [("in-sample", lam, tau) for lam in plan.kd.lambdas if lam > 0
                                        for tau in plan.kd.temperatures]
    if models.has_oracle(name):
        runs += [(ORACLE, lam, tau_chosen) for lam in plan.kd.lambdas if lam > 0]
    rows = []
    for how, lam, tau in tqdm(runs, desc=f"lambda and temperature sweep ({name})", disable=not progress):
        for s in plan.sweep_seeds:
            st = models.student(name, s, lam, how, tau)
            val = kd_module.best_value(st.history, st.info["best_epoch"], "val_accuracy")
            rows.append({"set": name, "targets": how, "lam": lam, "temperature": tau, "seed": s, "val_accuracy": val,
                         **scores_of(task, student_predictions.student_proba(models, name, s, lam, how, tau).argmax(axis=1))})
    return pd.DataFrame(rows)


def out_of_fold_comparison(transformers: FineTunedTransformers, models: StudentsAndANN,
                           names: list[str] | None = None) -> pd.DataFrame:
    """In-sample against out-of-fold teacher targets on the sets ``names`` (default the plan's): set, targets,
    seed, the :data:`METRICS`, plus the targets' mean max-probability and agreement with the labels (how
    over-confident they are); no rows, but these columns, where there is no set to compare on."""
    plan = models.plan
    rows = []
    for name in names or plan.oof_sets:
        rows += _out_of_fold_rows(transformers, models, name)
    return pd.DataFrame(rows, columns=OUT_OF_FOLD_COLUMNS)


OUT_OF_FOLD_COLUMNS = ["set", "targets", "seed", *METRICS, "target_confidence", "target_agreement"]


def _out_of_fold_rows(transformers: FineTunedTransformers, models: StudentsAndANN, name: str) -> list[dict]:
    plan = models.plan
    task = plan.sets[name]
    rows = []
    for how in ("in-sample", "out-of-fold"):
        targets = transformers.teacher_targets(name, how).for_ids(task.train.ids, task.n_classes)
        confidence = float(targets.max(axis=1).mean())
        agreement = float((targets.argmax(axis=1) == task.train.scores).mean())
        for s in plan.seeds:
            rows.append({"set": name, "targets": how, "seed": s,
                         **scores_of(task, student_predictions.kd_student_proba(models, name, s, how).argmax(axis=1)),
                         "target_confidence": confidence, "target_agreement": agreement})
    return rows
