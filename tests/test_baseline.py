"""TF-IDF + logistic regression: C chosen on validation, both kinds, constant labels, same metrics."""
from __future__ import annotations

import numpy as np
import pytest

from scoring_lab.models import per_task
from scoring_lab.models.baseline import C_GRID, fit_tfidf_baseline, fit_tfidf_baselines
from scoring_lab.data import Split, Task, load_tasks


def _task(kind, train_texts, train_y, test_texts, test_y, n_classes=None, val=None):
    def split(texts, y):
        ids = [f"r{i}" for i in range(len(texts))]
        return Split(ids, texts, labels=y if kind == "multilabel" else None,
                     scores=y if kind == "multiclass" else None)
    v = split(*val) if val else split(train_texts[:4], train_y[:4])
    return Task("t", kind, split(train_texts, train_y), v, split(test_texts, test_y),
                label_names=["a", "b"] if kind == "multilabel" else [], n_classes=n_classes)


def test_multiclass_learns_words_and_picks_c_on_validation():
    words = ["none", "some", "most", "all"]
    texts = [f"the answer shows {words[k]} of it" for k in range(4) for _ in range(10)]
    y = np.repeat(np.arange(4), 10)
    task = _task("multiclass", texts, y, [f"{w} of it" for w in words], np.arange(4), n_classes=4,
                 val=([f"shows {w}" for w in words], np.arange(4)))
    b = fit_tfidf_baseline(task)
    assert b.C in C_GRID and set(b.val_log_loss) == set(C_GRID)
    assert b.C == min(b.val_log_loss, key=b.val_log_loss.get)
    assert b.predict(task.test).tolist() == [0, 1, 2, 3]
    proba = b.predict_proba(task.test)
    assert proba.shape == (4, 4) and np.allclose(proba.sum(axis=1), 1)


def test_multilabel_with_a_constant_label_and_an_absent_class():
    texts = ["photosynthesis light"] * 6 + ["water only"] * 6
    y = np.array([[1, 0]] * 6 + [[0, 0]] * 6)   # label b never occurs in training
    task = _task("multilabel", texts, y, ["light photosynthesis", "only water"], np.array([[1, 0], [0, 0]]))
    b = fit_tfidf_baseline(task)
    assert b.predict(task.test).tolist() == [[1, 0], [0, 0]]
    assert (b.predict_proba(task.test)[:, 1] == 0).all()


def test_multiclass_class_absent_from_training_gets_zero_probability():
    texts = ["low"] * 5 + ["high"] * 5
    task = _task("multiclass", texts, np.array([0] * 5 + [2] * 5), ["low", "high"], np.array([0, 2]), n_classes=3)
    proba = fit_tfidf_baseline(task).predict_proba(task.test)
    assert proba.shape == (2, 3) and (proba[:, 1] == 0).all() and proba.argmax(axis=1).tolist() == [0, 2]


@pytest.mark.slow
def test_benchmark_baselines_score_through_the_same_tables():
    tasks = load_tasks("synthetic", seed=0, scale=0.2, tasks=["natural_sugar", "dry_ice_model"])
    baselines = fit_tfidf_baselines(tasks)
    table = per_task.metrics_table(baselines, tasks)
    assert list(table["task"]) == [*tasks, "weighted mean"]
    # TF-IDF finds the benchmark's phrasings: far above chance, below perfect
    assert 0.55 < table.iloc[-1]["micro_f1"] < 0.99
    again = per_task.metrics_table(fit_tfidf_baselines(tasks), tasks)
    assert table.equals(again)                      # deterministic


def test_holistic_view_gives_multiclass_tasks_with_qwk():
    tasks = load_tasks("synthetic", seed=0, scale=0.2, tasks=["natural_sugar"], view="holistic")
    assert per_task.task_kind(tasks) == "multiclass" and per_task.main_metric("multiclass") == "qwk"
    table = per_task.metrics_table(fit_tfidf_baselines(tasks), tasks)
    assert list(table.columns) == ["task", "accuracy", "macro_f1", "qwk", "n_test"]
    assert table.iloc[0]["qwk"] > 0.3


def test_mixed_kinds_are_refused():
    a = load_tasks("synthetic", seed=0, scale=0.05, tasks=["natural_sugar"])
    b = load_tasks("synthetic", seed=0, scale=0.05, tasks=["dry_ice_model"], view="holistic")
    with pytest.raises(ValueError, match="mix kinds"):
        per_task.task_kind({**a, **b})


def test_count_ahead_compares_tasks_not_the_mean():
    import pandas as pd

    ours = pd.DataFrame({"task": ["a", "b", "c", "weighted mean"], "qwk": [0.5, 0.7, 0.6, 0.9]})
    theirs = pd.DataFrame({"task": ["c", "b", "a", "weighted mean"], "qwk": [0.6, 0.4, 0.6, 0.1]})
    assert per_task.count_ahead(ours, theirs, "qwk") == 1      # only b; c ties, a is behind
