"""The classical yardstick: TF-IDF features and logistic regression, one model per task (scikit-learn).

Word 1-2 grams with sublinear term frequency, fitted on the task's training
responses only. Multi-label tasks get one binary logistic regression per rubric
dimension (a dimension constant in training is predicted as that constant);
multi-class tasks one multinomial logistic regression. The regularisation
strength ``C`` is chosen per task on the validation split by log-loss (the same
criterion that early-stops the transformer scorers), never on test.

A fitted :class:`TfidfBaseline` answers ``predict_proba`` and ``predict`` on a
:class:`~scoring_lab.data.task.Split` like a trained scorer does, so the same
metric tables, and the same ordinal decoding, apply to both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from ..data.task import Split, Task
from .scorer import THRESHOLD

C_GRID = (0.1, 1.0, 10.0, 100.0)
NAME = "TF-IDF + logistic regression"


@dataclass
class TfidfBaseline:
    """TF-IDF + logistic regression for one task, ``C`` chosen on validation.

    kind:        "multilabel" | "multiclass"
    n_outputs:   L labels or K classes
    C:           the chosen inverse regularisation strength
    val_log_loss: {C: validation log-loss} for every C tried
    """

    task: str
    kind: str
    n_outputs: int
    C: float
    vectorizer: TfidfVectorizer = field(repr=False)
    models: list = field(repr=False)   # per label: a LogisticRegression, or a float (constant probability)
    val_log_loss: dict = field(default_factory=dict)

    def predict_proba(self, split: Split) -> np.ndarray:
        """(n, L) label probabilities or (n, K) class probabilities."""
        return _proba(self.models, self.vectorizer.transform(split.texts), self.kind, self.n_outputs)

    def predict(self, split: Split) -> np.ndarray:
        """(n, L) 0/1 at threshold 0.5, or (n,) argmax class: the scorers' own decision rule."""
        proba = self.predict_proba(split)
        if self.kind == "multilabel":
            return (proba >= THRESHOLD).astype(np.int8)
        return proba.argmax(axis=1)


def _targets(task: Task, split: Split) -> np.ndarray:
    return split.labels if task.kind == "multilabel" else split.scores


def _fit(x, y: np.ndarray, kind: str, n_outputs: int, C: float, seed: int) -> list:
    if kind == "multiclass":
        if len(np.unique(y)) == 1:
            return [float(y[0])]  # one class in training: always that class
        return [LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(x, y)]
    models = []
    for j in range(y.shape[1]):
        col = y[:, j]
        models.append(float(col[0]) if len(np.unique(col)) == 1 else
                      LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(x, col))
    return models


def _proba(models: list, x, kind: str, n_outputs: int) -> np.ndarray:
    n = x.shape[0]
    if kind == "multiclass":
        m = models[0]
        out = np.zeros((n, n_outputs))
        if isinstance(m, float):
            out[:, int(m)] = 1.0
        else:  # classes absent from training get probability 0
            out[:, m.classes_.astype(int)] = m.predict_proba(x)
        return out
    return np.column_stack([np.full(n, m) if isinstance(m, float) else m.predict_proba(x)[:, 1] for m in models])


def _val_loss(proba: np.ndarray, y: np.ndarray, kind: str) -> float:
    eps = 1e-7
    p = np.clip(proba, eps, 1 - eps)
    if kind == "multiclass":  # renormalised: a class absent from training had probability 0, now eps
        return float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=list(range(proba.shape[1]))))
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


@dataclass
class LogisticFit:
    """Logistic regression(s) fitted on train with ``C`` chosen by validation log-loss.

    models:       per label a LogisticRegression or a float (a label constant in training), or for a
                  multi-class task one multinomial LogisticRegression (or the one class seen, as a float)
    C:            the chosen inverse regularisation strength
    val_log_loss: {C: validation log-loss} for every C tried (empty without validation responses)
    """

    models: list
    C: float
    val_log_loss: dict

    def predict_proba(self, x, kind: str, n_outputs: int) -> np.ndarray:
        return _proba(self.models, x, kind, n_outputs)


def fit_logistic(x_train, y_train: np.ndarray, x_val, y_val: np.ndarray, kind: str, n_outputs: int,
                 C_grid=C_GRID, seed: int = 0) -> LogisticFit:
    """Fit on (n, d) train features, choosing ``C`` by validation log-loss (the first of ``C_grid`` on
    ties; with no validation responses, the middle of the grid). y: (n, L) 0/1 labels or (n,) classes."""
    losses: dict[float, float] = {}
    if x_val is not None and x_val.shape[0]:
        for C in C_grid:
            proba = _proba(_fit(x_train, y_train, kind, n_outputs, C, seed), x_val, kind, n_outputs)
            losses[float(C)] = _val_loss(proba, y_val, kind)
        best = min(losses, key=lambda c: (losses[c], C_grid.index(c)))
    else:
        best = float(C_grid[len(C_grid) // 2])
    return LogisticFit(_fit(x_train, y_train, kind, n_outputs, best, seed), best, losses)


def fit_tfidf_baseline(task: Task, C_grid=C_GRID, seed: int = 0) -> TfidfBaseline:
    """TF-IDF + logistic regression fitted on ``task.train``, ``C`` chosen by validation log-loss
    (the first of ``C_grid`` on ties; with no validation responses, the middle of the grid)."""
    if len(task.train) == 0:
        raise ValueError(f"task {task.name!r} has no training responses")
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vec.fit_transform(task.train.texts)
    x_val = vec.transform(task.val.texts) if len(task.val) else None
    fit = fit_logistic(x_train, _targets(task, task.train), x_val, _targets(task, task.val) if len(task.val) else None,
                       task.kind, task.n_labels, C_grid, seed)
    return TfidfBaseline(task.name, task.kind, task.n_labels, fit.C, vec, fit.models, fit.val_log_loss)


def fit_tfidf_baselines(tasks: dict[str, Task], seed: int = 0) -> dict[str, TfidfBaseline]:
    """One :class:`TfidfBaseline` per task, in the tasks' order (seconds for the whole benchmark)."""
    return {name: fit_tfidf_baseline(t, seed=seed) for name, t in tasks.items()}
