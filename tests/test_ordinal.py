"""Ordinal decoding: expected score, cut points tuned for QWK on validation, the comparison table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring_lab.data import load_tasks
from scoring_lab.metrics import quadratic_weighted_kappa
from scoring_lab.models.ordinal import ARGMAX, DECODINGS, PER_TASK, SHARED, OrdinalDecoder, apply_cut_points, cross_validated_qwk, decoding_comparison, decoding_summary, decoding_table, expected_score, fit_decoders, tune_cut_points, verdict


def test_expected_score_and_cut_points():
    proba = np.array([[1, 0, 0, 0], [0.5, 0, 0, 0.5], [0, 0.2, 0.8, 0], [0, 0, 0, 1.0]])
    np.testing.assert_allclose(expected_score(proba), [0, 1.5, 1.8, 3])
    assert apply_cut_points([0.0, 0.5, 1.49, 1.5, 3.0], [0.5, 1.5, 2.5]).tolist() == [0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        expected_score(np.ones(3))


def test_fast_qwk_matches_the_metric():
    from scoring_lab.models.ordinal import _qwk_counts
    rng = np.random.default_rng(3)
    for k in (2, 3, 4, 5):
        y, p = rng.integers(0, k, 70), rng.integers(0, k, 70)
        p[:40] = y[:40]
        assert _qwk_counts(y, p, k) == pytest.approx(quadratic_weighted_kappa(y, p), abs=1e-12)
    assert _qwk_counts(np.zeros(5, int), np.zeros(5, int), 3) == quadratic_weighted_kappa([0] * 5, [0] * 5) == 1.0


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
    assert len(long) == 6 and (long["qwk"] == 1.0).all()
    assert list(long["decoding"][:3]) == list(DECODINGS)
    # every decoding is perfect on validation too: the tie goes to the simplest, argmax
    assert set(long.loc[long["chosen"], "decoding"]) == {ARGMAX} and long.groupby("task")["chosen"].sum().tolist() == [1, 1]
    wide = decoding_table(long)
    assert list(wide.columns) == ["task", *(f"oracle, {d}" for d in DECODINGS)]
    assert list(wide["task"]) == [*tasks, "weighted mean"]
    assert wide.iloc[-1, 1:].tolist() == [1.0, 1.0, 1.0]
    summary = decoding_summary(long)
    assert list(summary.columns) == ["model", "decoding", "val_cv_qwk", "test_qwk", "chosen"]
    assert summary["chosen"].tolist() == [True, False, False] and (summary["test_qwk"] == 1.0).all()


def _shifted(y, k, shift, rng, spread=3.0):
    """(n, k) probabilities peaked at y + shift (clipped): an expected score off by about ``shift``."""
    centre = np.clip(y + shift + rng.normal(0, 0.25, len(y)), 0, k - 1)
    logits = -spread * (np.arange(k)[None, :] - centre[:, None]) ** 2
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_shared_cut_points_pool_tasks_of_the_same_range():
    rng = np.random.default_rng(0)
    y = {"a": rng.integers(0, 4, 60), "b": rng.integers(0, 4, 80), "c": rng.integers(0, 3, 50)}
    proba = {"a": _shifted(y["a"], 4, 0.6, rng), "b": _shifted(y["b"], 4, 0.6, rng), "c": _shifted(y["c"], 3, 0, rng)}
    shared = fit_decoders(proba, y, "shared")
    per_task = fit_decoders(proba, y, "task")
    assert list(shared) == ["a", "b", "c"]
    np.testing.assert_array_equal(shared["a"].cuts, shared["b"].cuts)       # one set for the 0-3 tasks
    assert len(shared["c"].cuts) == 2                                        # its own for the 0-2 task
    np.testing.assert_array_equal(shared["c"].cuts, per_task["c"].cuts)      # alone in its range: the same
    pooled = tune_cut_points(np.concatenate([expected_score(proba["a"]), expected_score(proba["b"])]),
                             np.concatenate([y["a"], y["b"]]), 4)
    np.testing.assert_array_equal(shared["a"].cuts, pooled)
    assert shared["a"].val_qwk == pytest.approx(quadratic_weighted_kappa(y["a"], shared["a"].predict(proba["a"])))
    with pytest.raises(ValueError, match="scope"):
        fit_decoders(proba, y, "global")
    with pytest.raises(ValueError, match="no validation responses"):
        fit_decoders({"a": proba["a"][:0]}, {"a": y["a"][:0]}, "shared")


def test_cross_validation_prefers_ordinal_for_a_shifted_model_and_is_deterministic():
    # Expected scores run 0.6 high, so argmax (peaked at y + 0.6, rounded) is often one too high;
    # tuned cut points undo the shift, and the out-of-fold estimate sees it without touching test.
    rng = np.random.default_rng(2)
    y = {n: rng.integers(0, 4, 90) for n in "abcd"}
    proba = {n: _shifted(v, 4, 0.6, rng, spread=1.0) for n, v in y.items()}
    table = cross_validated_qwk(proba, y, folds=5, seed=0)
    assert table["decoding"].tolist() == list(DECODINGS) and table["chosen"].sum() == 1
    cv = table.set_index("decoding")["val_cv_qwk"]
    argmax_qwk = np.average([quadratic_weighted_kappa(y[n], proba[n].argmax(1)) for n in y],
                            weights=[len(v) for v in y.values()])
    assert cv[ARGMAX] == pytest.approx(argmax_qwk)                 # argmax is not fitted: its plain QWK
    assert cv[PER_TASK] > cv[ARGMAX] and cv[SHARED] > cv[ARGMAX]
    assert table.loc[table["chosen"], "decoding"].item() in (PER_TASK, SHARED)
    pd.testing.assert_frame_equal(table, cross_validated_qwk(proba, y, folds=5, seed=0))


def test_decoding_comparison_refuses_multilabel_tasks():
    tasks = load_tasks("synthetic", seed=0, scale=0.05, tasks=["natural_sugar"])
    with pytest.raises(ValueError, match="multi-class"):
        decoding_comparison({"m": {"natural_sugar": _Oracle(tasks["natural_sugar"])}}, tasks)


def test_decoding_table_weights_by_test_size():
    long = pd.DataFrame({"task": ["a", "a", "b", "b"], "model": ["m"] * 4, "decoding": ["argmax", "ordinal"] * 2,
                         "qwk": [0.2, 0.4, 0.8, 1.0], "n_test": [10, 10, 30, 30]})
    wide = decoding_table(long)
    assert wide.iloc[-1]["m, argmax"] == pytest.approx(0.65) and wide.iloc[-1]["m, ordinal"] == pytest.approx(0.85)


def test_verdict_picks_the_ordinal_treatment_on_validation():
    summary = pd.DataFrame({
        "model": ["s"] * 3 + ["c"] * 3 + ["b"] * 3, "decoding": list(DECODINGS) * 3,
        "val_cv_qwk": [0.90, 0.85, 0.84, 0.83, 0.86, 0.85, 0.70, 0.75, 0.76],
        "test_qwk": [0.77, 0.76, 0.79, 0.78, 0.775, 0.80, 0.64, 0.68, 0.69],
        "chosen": [True, False, False, False, True, False, False, False, True]})
    v = verdict(summary, plain="s", ordinal_heads=("c",), baseline="b")
    # s's argmax (0.90) is the plain treatment, not a candidate; of the rest c's per-task decoding is best
    assert (v["model"], v["decoding"], v["val_cv_qwk"]) == ("c", PER_TASK, 0.86)
    assert v["qwk"] == 0.775 and v["argmax_qwk"] == 0.77 and v["ahead_of_argmax"]
    assert v["baseline_decoding"] == SHARED and v["baseline_qwk"] == 0.69 and v["ahead_of_baseline"]
    assert v["best_on_test"] == f"c, {SHARED}" and v["best_on_test_qwk"] == 0.80
    without_heads = verdict(summary, plain="s", ordinal_heads=(), baseline="b")
    assert (without_heads["model"], without_heads["decoding"]) == ("s", PER_TASK)
    assert not without_heads["ahead_of_argmax"]
    with pytest.raises(ValueError, match="no ordinal treatment"):
        verdict(summary[summary["model"] == "b"], plain="s", ordinal_heads=(), baseline="b")


class _Noisy:
    """A 'model' right on a share of the responses (by seed), uniform elsewhere."""
    def __init__(self, task, share, seed):
        self.task, self.share, self.seed = task, share, seed

    def predict_proba(self, split):
        k, n = self.task.n_classes, len(split)
        right = np.random.default_rng(self.seed).uniform(size=n) < self.share
        p = np.full((n, k), 1.0 / k)
        p[right] = 0.05 / (k - 1)
        p[np.flatnonzero(right), split.scores[right]] = 0.95
        return p


def test_qwk_difference_is_paired_weighted_and_seeded():
    from scoring_lab.models.ordinal import decisions_on_test, qwk_difference
    tasks = load_tasks("synthetic", seed=0, scale=0.2, tasks=["natural_sugar", "dry_ice_model"], view="holistic")
    models = {"oracle": {n: _Oracle(t) for n, t in tasks.items()},
              "noisy": {n: _Noisy(t, 0.5, i) for i, (n, t) in enumerate(tasks.items())}}
    decided = decisions_on_test(models, tasks)
    same = qwk_difference(decided, tasks, ("noisy", ARGMAX), ("noisy", ARGMAX), n_boot=200)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "share_above_zero": 0.0}
    d = qwk_difference(decided, tasks, ("oracle", ARGMAX), ("noisy", ARGMAX), n_boot=300, seed=1)
    n = np.array([len(t.test) for t in tasks.values()], dtype=float)
    noisy = [quadratic_weighted_kappa(t.test.scores, decided[("noisy", ARGMAX)][name]) for name, t in tasks.items()]
    assert d["difference"] == pytest.approx(1.0 - np.dot(n, noisy) / n.sum(), abs=1e-12)
    assert 0 < d["low"] < d["difference"] < d["high"] <= 1.0 and d["share_above_zero"] == 1.0
    assert qwk_difference(decided, tasks, ("oracle", ARGMAX), ("noisy", ARGMAX), n_boot=300, seed=1) == d
    flipped = qwk_difference(decided, tasks, ("noisy", ARGMAX), ("oracle", ARGMAX), n_boot=300, seed=1)
    assert flipped["difference"] == -d["difference"] and flipped["high"] == pytest.approx(-d["low"])
