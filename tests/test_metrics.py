"""Metrics against values computed by hand."""
import numpy as np
import pandas as pd
import pytest

from scoring_lab import metrics as M

Y_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
Y_PRED = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
# per label: L1 TP2 FP0 FN0; L2 TP1 FP0 FN1; L3 TP0 FP1 FN1


def test_micro_f1_pools_counts():
    assert M.micro_f1(Y_TRUE, Y_PRED) == pytest.approx(6 / 9)  # 2*3 / (2*3 + 1 + 2)


def test_macro_f1_averages_labels():
    assert M.per_label_f1(Y_TRUE, Y_PRED) == pytest.approx([1.0, 2 / 3, 0.0])
    assert M.macro_f1(Y_TRUE, Y_PRED) == pytest.approx(5 / 9)


def test_exact_match_and_per_label_accuracy():
    assert M.exact_match(Y_TRUE, Y_PRED) == pytest.approx(1 / 4)
    assert M.per_label_accuracy(Y_TRUE, Y_PRED) == pytest.approx([1.0, 0.75, 0.5])
    assert M.mean_per_label_accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.75)


def test_per_label_kappa():
    # L2: po 3/4, pe 0.5 -> 0.5; L3: po 1/2, pe 0.625 -> -1/3
    assert M.per_label_kappa(Y_TRUE, Y_PRED) == pytest.approx([1.0, 0.5, -1 / 3])
    assert M.mean_kappa(Y_TRUE, Y_PRED) == pytest.approx(7 / 18)


def test_kappa_single_class_is_defined_never_nan():
    zeros = np.zeros(5, dtype=int)
    assert M.cohen_kappa(zeros, zeros) == 1.0          # both constant and equal: perfect agreement
    assert M.cohen_kappa(np.ones(5), np.ones(5)) == 1.0
    one_off = zeros.copy(); one_off[2] = 1
    assert M.cohen_kappa(zeros, one_off) == 0.0        # truth constant, prediction not: no better than chance
    t = np.array([[0, 1], [0, 0], [0, 1]]); p = np.array([[0, 1], [0, 0], [0, 0]])
    k = M.per_label_kappa(t, p)
    assert not np.isnan(k).any() and k[0] == 1.0


def test_f1_with_no_positives_anywhere_is_one():
    z = np.zeros((4, 2), dtype=int)
    assert M.macro_f1(z, z) == 1.0 and M.micro_f1(z, z) == 1.0
    t = np.array([[1, 0], [0, 0]]); p = np.array([[1, 0], [0, 0]])
    assert M.per_label_f1(t, p) == pytest.approx([1.0, 1.0])


def test_multilabel_report_keys_and_values():
    r = M.multilabel_report(Y_TRUE, Y_PRED)
    assert set(r) == set(M.MULTILABEL_METRICS) | {"n_test"}
    assert r["n_test"] == 4 and r["micro_f1"] == pytest.approx(2 / 3)


def test_multiclass_metrics():
    t, p = [0, 0, 1, 2], [0, 1, 1, 2]
    assert M.accuracy(t, p) == pytest.approx(0.75)
    assert M.multiclass_macro_f1(t, p) == pytest.approx(7 / 9)
    # classes 0..3 with class 3 never seen: its F1 counts as 0
    assert M.multiclass_macro_f1(t, p, n_classes=4) == pytest.approx(7 / 12)


def test_quadratic_weighted_kappa():
    assert M.quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 2]) == pytest.approx(0.875)
    assert M.quadratic_weighted_kappa([2, 2, 2], [2, 2, 2]) == 1.0
    r = M.multiclass_report([0, 1, 2, 3], [0, 1, 2, 2], n_classes=4)
    assert r["qwk"] == pytest.approx(0.875) and r["n_test"] == 4


def test_weighted_mean_by_test_size():
    per_task = {"a": {"micro_f1": 0.8, "kappa": 0.5, "n_test": 100},
                "b": {"micro_f1": 0.6, "kappa": 0.1, "n_test": 300}}
    m = M.weighted_mean(per_task)
    assert m["micro_f1"] == pytest.approx(0.65)
    assert m["kappa"] == pytest.approx(0.2)
    assert m["n_test"] == 400
    df = pd.DataFrame([{"task": "a", "micro_f1": 0.8, "n_test": 100}, {"task": "b", "micro_f1": 0.6, "n_test": 300}])
    assert M.weighted_mean(df)["micro_f1"] == pytest.approx(0.65)


@pytest.mark.parametrize("bad", [
    lambda: M.micro_f1([[1, 0]], [[1, 0, 1]]),
    lambda: M.micro_f1([[2, 0]], [[1, 0]]),
    lambda: M.micro_f1(np.zeros((0, 2)), np.zeros((0, 2))),
    lambda: M.weighted_mean({"a": {"micro_f1": 0.5}}),
])
def test_bad_metric_input_is_rejected(bad):
    with pytest.raises(ValueError):
        bad()


def test_exact_match_ceiling_under_independent_label_flips():
    assert M.exact_match_ceiling(0.05, 10) == pytest.approx(0.95 ** 10)
    assert M.exact_match_ceiling(0.0, 7) == 1.0 and M.exact_match_ceiling(0.2, 0) == 1.0
    with pytest.raises(ValueError):
        M.exact_match_ceiling(1.5, 3)
