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

from .data.task import Split, Task
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


def fit_tfidf_baseline(task: Task, C_grid=C_GRID, seed: int = 0) -> TfidfBaseline:
    """TF-IDF + logistic regression fitted on ``task.train``, ``C`` chosen by validation log-loss
    (the first of ``C_grid`` on ties; with no validation responses, the middle of the grid)."""
    if len(task.train) == 0:
        raise ValueError(f"task {task.name!r} has no training responses")
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vec.fit_transform(task.train.texts)
    y_train = _targets(task, task.train)
    n_out = task.n_labels
    losses: dict[float, float] = {}
    if len(task.val):
        x_val, y_val = vec.transform(task.val.texts), _targets(task, task.val)
        for C in C_grid:
            losses[float(C)] = _val_loss(_proba(_fit(x_train, y_train, task.kind, n_out, C, seed), x_val,
                                                task.kind, n_out), y_val, task.kind)
        best = min(losses, key=lambda c: (losses[c], C_grid.index(c)))
    else:
        best = float(C_grid[len(C_grid) // 2])
    models = _fit(x_train, y_train, task.kind, n_out, best, seed)
    return TfidfBaseline(task.name, task.kind, n_out, best, vec, models, losses)


def fit_tfidf_baselines(tasks: dict[str, Task], seed: int = 0) -> dict[str, TfidfBaseline]:
    """One :class:`TfidfBaseline` per task, in the tasks' order (seconds for the whole benchmark)."""
    return {name: fit_tfidf_baseline(t, seed=seed) for name, t in tasks.items()}
