"""Ordinal decoding: expected score, cut points tuned for QWK on validation, the comparison table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring_lab.data import load_tasks
from scoring_lab.metrics import quadratic_weighted_kappa
from scoring_lab.ordinal import (OrdinalDecoder, apply_cut_points, decoding_comparison, decoding_table,
                                 expected_score, tune_cut_points)


def test_expected_score_and_cut_points():
    proba = np.array([[1, 0, 0, 0], [0.5, 0, 0, 0.5], [0, 0.2, 0.8, 0], [0, 0, 0, 1.0]])
    np.testing.assert_allclose(expected_score(proba), [0, 1.5, 1.8, 3])
    assert apply_cut_points([0.0, 0.5, 1.49, 1.5, 3.0], [0.5, 1.5, 2.5]).tolist() == [0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        expected_score(np.ones(3))


def test_tuned_cut_points_fix_a_shifted_scale():
    # A model whose expected score runs 0.6 too high: plain rounding is off by one on many responses;
    # tuned cut points move up and recover the classes exactly.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    values = y + 0.6 + rng.uniform(-0.2, 0.2, 200)
    plain = quadratic_weighted_kappa(y, apply_cut_points(values, [0.5, 1.5, 2.5]))
    cuts = tune_cut_points(values, y, 4)
    assert np.all(np.diff(cuts) > 0) and len(cuts) == 3
    assert quadratic_weighted_kappa(y, apply_cut_points(values, cuts)) == 1.0 > plain
    assert np.all((cuts > [0.8, 1.8, 2.8]) & (cuts < [1.4, 2.4, 3.4]))


def test_decoder_is_deterministic_and_never_worse_on_validation():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 120)
    logits = rng.normal(size=(120, 3)) + 2.0 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    a, b = OrdinalDecoder.fit(proba, y), OrdinalDecoder.fit(proba, y)
    np.testing.assert_array_equal(a.cuts, b.cuts)
    start = quadratic_weighted_kappa(y, apply_cut_points(expected_score(proba), [0.5, 1.5]))
    assert a.val_qwk >= start
    assert a.val_qwk == pytest.approx(quadratic_weighted_kappa(y, a.predict(proba)))


class _Oracle:
    """A 'model' that puts most probability on the true class (test) or a shifted one (val)."""
    def __init__(self, task):
        self.task = task

    def predict_proba(self, split):
        k = self.task.n_classes
        p = np.full((len(split), k), 0.1 / (k - 1))
        p[np.arange(len(split)), split.scores] = 0.9
        return p


def test_decoding_comparison_tables():
    tasks = load_tasks("synthetic", seed=0, scale=0.05, tasks=["natural_sugar", "dry_ice_model"], view="holistic")
    long = decoding_comparison({"oracle": {n: _Oracle(t) for n, t in tasks.items()}}, tasks)
    assert list(long.columns[:3]) == ["task", "model", "decoding"]
    assert len(long) == 4 and (long["qwk"] == 1.0).all()
    wide = decoding_table(long)
    assert list(wide.columns) == ["task", "oracle, argmax", "oracle, ordinal"]
    assert list(wide["task"]) == [*tasks, "weighted mean"]
    assert wide.iloc[-1, 1:].tolist() == [1.0, 1.0]


def test_decoding_comparison_refuses_multilabel_tasks():
    tasks = load_tasks("synthetic", seed=0, scale=0.05, tasks=["natural_sugar"])
    with pytest.raises(ValueError, match="multi-class"):
        decoding_comparison({"m": {"natural_sugar": _Oracle(tasks["natural_sugar"])}}, tasks)


def test_decoding_table_weights_by_test_size():
    long = pd.DataFrame({"task": ["a", "a", "b", "b"], "model": ["m"] * 4, "decoding": ["argmax", "ordinal"] * 2,
                         "qwk": [0.2, 0.4, 0.8, 1.0], "n_test": [10, 10, 30, 30]})
    wide = decoding_table(long)
    assert wide.iloc[-1]["m, argmax"] == pytest.approx(0.65) and wide.iloc[-1]["m, ordinal"] == pytest.approx(0.85)
