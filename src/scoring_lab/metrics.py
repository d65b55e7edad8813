"""Scoring metrics, from scikit-learn where it has them.

Multi-label metrics take ``y_true`` and ``y_pred`` of shape (n, L) with 0/1
entries; multi-class metrics take (n,) integer class labels. All return plain
floats so they drop straight into a pandas table.

Degenerate cases are defined, never NaN:

* Cohen's kappa of a label on which truth and prediction both hold a single
  class: 1.0 when they agree on every response (the rater pair is in perfect,
  if uninformative, agreement) and 0.0 otherwise. sklearn returns NaN there,
  which would poison a mean across labels (a pitfall seen in the MoE paper's
  reference code). When only one side is constant sklearn's value (0.0 or a
  finite number) is used.
* F1 when there are no positives in truth nor prediction (0/0): 1.0, nothing
  to find and nothing wrongly found (sklearn's ``zero_division=1``); for one
  label in macro-F1, for a whole task in micro-F1.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
)

MULTILABEL_METRICS = ("micro_f1", "macro_f1", "exact_match", "per_label_accuracy", "kappa")
MULTICLASS_METRICS = ("accuracy", "macro_f1", "qwk")


def _as_2d(y, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n, L), got {a.shape}")
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 values")
    return a.astype(np.int8)


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    if t.shape[0] == 0:
        raise ValueError("no responses to score")
    return t, p


def micro_f1(y_true, y_pred) -> float:
    """F1 over the pooled TP/FP/FN of all labels (GW paper, Eq. 7)."""
    t, p = _check_pair(y_true, y_pred)
    return float(f1_score(t, p, average="micro", zero_division=1.0))


def per_label_f1(y_true, y_pred) -> np.ndarray:
    """(L,) F1 of each label; 1.0 where a label has no positives in truth or prediction."""
    t, p = _check_pair(y_true, y_pred)
    # F1 = 2TP / (2TP + FP + FN) is 0/0 only when TP = FP = FN = 0: sklearn's zero_division=1.
    return f1_score(t, p, average=None, zero_division=1.0).astype(float)


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean of per-label F1 (GW paper, Eq. 8)."""
    return float(per_label_f1(y_true, y_pred).mean())


def exact_match(y_true, y_pred) -> float:
    """Share of responses whose whole label vector is right (Eq. 9)."""
    t, p = _check_pair(y_true, y_pred)
    return float(accuracy_score(t, p))  # sklearn's subset accuracy on multi-label input


def per_label_accuracy(y_true, y_pred) -> np.ndarray:
    """(L,) accuracy of each label."""
    t, p = _check_pair(y_true, y_pred)
    return (t == p).mean(axis=0).astype(float)


def mean_per_label_accuracy(y_true, y_pred) -> float:
    """Mean over labels of per-label accuracy (Eq. 10)."""
    return float(per_label_accuracy(y_true, y_pred).mean())


def cohen_kappa(a, b, weights: str | None = None) -> float:
    """Cohen's kappa of two (n,) ratings, with the single-class case defined (see module doc)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if len(a) != len(b):
        raise ValueError(f"ratings differ in length: {len(a)} and {len(b)}")
    if len(a) == 0:
        raise ValueError("no responses to score")
    if len(np.union1d(a, b)) == 1:
        return 1.0
    k = cohen_kappa_score(a, b, weights=weights)
    return 0.0 if np.isnan(k) else float(k)


def per_label_kappa(y_true, y_pred) -> np.ndarray:
    """(L,) Cohen's kappa of each label."""
    t, p = _check_pair(y_true, y_pred)
    return np.array([cohen_kappa(t[:, j], p[:, j]) for j in range(t.shape[1])])


def mean_kappa(y_true, y_pred) -> float:
    """Mean over labels of per-label Cohen's kappa."""
    return float(per_label_kappa(y_true, y_pred).mean())


def exact_match_ceiling(flip_rate: float, n_labels: int) -> float:
    """Best expected exact match when each of ``n_labels`` reference labels is flipped
    independently with probability ``flip_rate`` (rater noise): ``(1 - flip_rate) ** n_labels``."""
    if not 0 <= flip_rate <= 1 or n_labels < 0:
        raise ValueError("flip_rate must be in [0, 1] and n_labels >= 0")
    return float((1 - flip_rate) ** n_labels)


def multilabel_report(y_true, y_pred) -> dict[str, float]:
    """All multi-label metrics for one task, keyed as :data:`MULTILABEL_METRICS`, plus n_test."""
    t, p = _check_pair(y_true, y_pred)
    return {
        "micro_f1": micro_f1(t, p),
        "macro_f1": macro_f1(t, p),
        "exact_match": exact_match(t, p),
        "per_label_accuracy": mean_per_label_accuracy(t, p),
        "kappa": mean_kappa(t, p),
        "n_test": int(t.shape[0]),
    }


def _check_classes(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    if len(t) == 0:
        raise ValueError("no responses to score")
    return t.astype(np.int64), p.astype(np.int64)


def accuracy(y_true, y_pred) -> float:
    """Share of responses given the right class."""
    t, p = _check_classes(y_true, y_pred)
    return float(accuracy_score(t, p))


def multiclass_macro_f1(y_true, y_pred, n_classes: int | None = None) -> float:
    """Mean F1 over classes present in truth or prediction (or 0..n_classes-1 when given)."""
    t, p = _check_classes(y_true, y_pred)
    labels = None if n_classes is None else list(range(n_classes))
    return float(f1_score(t, p, average="macro", labels=labels, zero_division=0))


def multiclass_weighted_f1(y_true, y_pred) -> float:
    """F1 per class weighted by the class's share of the true labels (scikit-learn's ``average="weighted"``;
    a class never predicted counts 0)."""
    t, p = _check_classes(y_true, y_pred)
    return float(f1_score(t, p, average="weighted", zero_division=0))


def quadratic_weighted_kappa(y_true, y_pred) -> float:
    """Cohen's kappa with quadratic weights (the ASAP metric); 1.0 when both are one same class."""
    t, p = _check_classes(y_true, y_pred)
    return cohen_kappa(t, p, weights="quadratic")


def multiclass_report(y_true, y_pred, n_classes: int | None = None) -> dict[str, float]:
    """Accuracy, macro-F1 and QWK for one task, plus n_test."""
    t, p = _check_classes(y_true, y_pred)
    return {
        "accuracy": accuracy(t, p),
        "macro_f1": multiclass_macro_f1(t, p, n_classes),
        "qwk": quadratic_weighted_kappa(t, p),
        "n_test": int(len(t)),
    }


def weighted_mean(per_task: Mapping[str, Mapping[str, float]] | "pd.DataFrame", weight: str = "n_test") -> dict[str, float]:  # noqa: F821
    """Mean of every metric across tasks, weighted by test size (as the GW paper reports).

    ``per_task`` maps task -> {metric: value, ..., "n_test": n}, or is a DataFrame
    with one row per task and an ``n_test`` column.
    """
    import pandas as pd

    df = per_task if isinstance(per_task, pd.DataFrame) else pd.DataFrame.from_dict(per_task, orient="index")
    if weight not in df.columns:
        raise ValueError(f"per-task metrics need a {weight!r} column to weight by")
    w = df[weight].astype(float).to_numpy()
    if (w <= 0).any() or len(w) == 0:
        raise ValueError("test sizes must be positive")
    cols = [c for c in df.columns if c != weight and pd.api.types.is_numeric_dtype(df[c])]
    out = {c: float(np.average(df[c].astype(float), weights=w)) for c in cols}
    out[weight] = int(w.sum())
    return out
