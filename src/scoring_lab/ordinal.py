"""Ordinal decoding of holistic scores: expected score and cut points tuned on validation for QWK.

A multi-class scorer trained with cross-entropy treats the scores 0..K-1 as
unordered names, and argmax decoding throws away what its probabilities say
about order (a response split between 1 and 3 is probably a 2). Ordinal
decoding keeps the trained model and changes the decision:

1. the expected score ``E[s] = sum_k k p_k`` of each response, a real number in [0, K-1];
2. K-1 increasing cut points ``c_1 < ... < c_{K-1}``: the predicted score is the
   number of cut points at or below ``E[s]``;
3. the cut points are tuned on the **validation** split to maximise quadratic
   weighted kappa (the ASAP metric), by coordinate ascent: each cut point in turn
   moves to the candidate (midpoints between sorted validation values, kept
   between its neighbours) that maximises QWK, until no move helps. Start: the
   plain rounding points 0.5, 1.5, ...

Nothing here needs training, so the ordinal treatment costs milliseconds on top
of the scorer. scipy's general minimisers are not used because QWK is a step
function of the cut points (zero gradient almost everywhere); an exhaustive
search over candidates per coordinate is exact for one coordinate at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import multiclass_report, quadratic_weighted_kappa


def expected_score(proba: np.ndarray) -> np.ndarray:
    """(n,) expected class ``sum_k k p_k`` of (n, K) class probabilities."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"class probabilities must have shape (n, K), got {proba.shape}")
    return proba @ np.arange(proba.shape[1], dtype=float)


def apply_cut_points(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(n,) classes: how many of the increasing ``cuts`` (K-1,) lie at or below each value."""
    return np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(values, dtype=float), side="right")


def tune_cut_points(values: np.ndarray, y: np.ndarray, n_classes: int, max_rounds: int = 20) -> np.ndarray:
    """(K-1,) increasing cut points maximising QWK of ``apply_cut_points(values, cuts)`` against ``y``.

    values: (n,) real-valued scores on the 0..K-1 scale (e.g. :func:`expected_score`) of validation responses
    y:      (n,) their true classes
    Deterministic; ties keep the current cut point.
    """
    values, y = np.asarray(values, dtype=float), np.asarray(y)
    if len(values) != len(y) or len(y) == 0:
        raise ValueError(f"need as many values as classes, and some: got {len(values)} and {len(y)}")
    cuts = np.arange(n_classes - 1, dtype=float) + 0.5
    u = np.unique(values)
    candidates = np.unique(np.concatenate([(u[1:] + u[:-1]) / 2, [u[0] - 1e-6, u[-1] + 1e-6], cuts]))
    best = quadratic_weighted_kappa(y, apply_cut_points(values, cuts))
    for _ in range(max_rounds):
        improved = False
        for j in range(len(cuts)):
            low = cuts[j - 1] if j > 0 else -np.inf
            high = cuts[j + 1] if j + 1 < len(cuts) else np.inf
            for c in candidates[(candidates > low) & (candidates < high)]:
                trial = cuts.copy()
                trial[j] = c
                q = quadratic_weighted_kappa(y, apply_cut_points(values, trial))
                if q > best + 1e-12:
                    best, cuts, improved = q, trial, True
        if not improved:
            break
    return cuts


@dataclass
class OrdinalDecoder:
    """Expected-score decoding with cut points tuned on validation (see the module doc).

    cuts:    (K-1,) increasing cut points on the expected-score scale
    val_qwk: QWK on the validation split with these cut points
    """

    cuts: np.ndarray
    val_qwk: float

    @classmethod
    def fit(cls, val_proba: np.ndarray, val_y: np.ndarray) -> "OrdinalDecoder":
        """Tune the cut points on validation probabilities (n, K) and true classes (n,)."""
        values = expected_score(val_proba)
        cuts = tune_cut_points(values, val_y, val_proba.shape[1])
        return cls(cuts, quadratic_weighted_kappa(val_y, apply_cut_points(values, cuts)))

    def predict(self, proba: np.ndarray) -> np.ndarray:
        """(n,) classes of (n, K) class probabilities."""
        return apply_cut_points(expected_score(proba), self.cuts)


DECODINGS = ("argmax", "ordinal")


def decoding_comparison(models: dict[str, dict], tasks: dict) -> pd.DataFrame:
    """Test metrics of argmax and of ordinal decoding, per task and model.

    models: model name -> {task name -> a model with ``predict_proba(split)`` giving (n, K)}
    tasks:  the multi-class tasks, task name -> Task
    Returns a long table: task, model, decoding, accuracy, macro_f1, qwk, n_test, cut_points
    (the ordinal rows' cut points come from each model's own validation probabilities).
    """
    rows = []
    for model_name, per_task in models.items():
        for name, model in per_task.items():
            task = tasks[name]
            if task.kind != "multiclass":
                raise ValueError(f"ordinal decoding needs multi-class tasks; {name!r} is {task.kind}")
            if len(task.val) == 0:
                raise ValueError(f"task {name!r} has no validation responses to tune the cut points on")
            test_proba = model.predict_proba(task.test)
            decoder = OrdinalDecoder.fit(model.predict_proba(task.val), task.val.scores)
            for decoding, pred in (("argmax", test_proba.argmax(axis=1)), ("ordinal", decoder.predict(test_proba))):
                rows.append({"task": name, "model": model_name, "decoding": decoding,
                             **multiclass_report(task.test.scores, pred, task.n_classes),
                             "cut_points": "" if decoding == "argmax" else
                             " ".join(f"{c:.2f}" for c in decoder.cuts)})
    return pd.DataFrame(rows)


def decoding_table(long: pd.DataFrame, metric: str = "qwk") -> pd.DataFrame:
    """Wide view of :func:`decoding_comparison`: one row per task plus ``weighted mean`` (by test size),
    one column ``<model>, <decoding>`` per model and decoding, holding ``metric``."""
    long = long.assign(column=long["model"] + ", " + long["decoding"])
    order = list(dict.fromkeys(long["column"]))
    wide = long.pivot(index="task", columns="column", values=metric)[order]
    wide = wide.reindex(list(dict.fromkeys(long["task"])))
    n = long.drop_duplicates("task").set_index("task")["n_test"].reindex(wide.index)
    wide.loc["weighted mean"] = (wide.mul(n, axis=0).sum() / n.sum()).to_numpy()
    wide.columns.name = None
    return wide.reset_index()
