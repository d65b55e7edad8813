"""Issue 26, second part: the temperature in the KD loss, lambda and tau chosen on validation, the positive
control's teacher (the generator's own label probabilities) and the chapter's plan and cost table."""
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from scoring_lab.data import load_tasks
from scoring_lab.data.synthetic import LABEL_PROBABILITY, DifficultyKnobs
from scoring_lab.data.task import Task
from scoring_lab.errors import DataError
from scoring_lab.kd import distill as kd
from scoring_lab.kd import distillation_choice, oracle
from scoring_lab.kd.plan import ORACLE, KDPlan
from scoring_lab.kd.sets import BENCHMARK_SETS, build_kd_set
from scoring_lab.profiles import KDSettings, ProfileError, load_profile
from scoring_lab.study_steps import TimedSteps

from kd_tasks import tiny_task


@pytest.fixture(scope="module")
def benchmark():
    return load_tasks("synthetic", scale=0.2)


# ----------------------------------------------------------------------------- the temperature
def test_tempering_is_softmax_of_log_p_over_tau_keeps_zeros_and_is_the_identity_at_one():
    p = np.array([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
    assert kd.tempered(p, 1.0) is p
    got = kd.tempered(p, 2.0)
    want = np.sqrt(p) / np.sqrt(p).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0, 3] == 0 and got[0, 0] < p[0, 0] and got.dtype == np.float32
    t = kd.tempered(torch.from_numpy(p), 4.0)
    np.testing.assert_allclose(t.numpy(), kd.tempered(p, 4.0), rtol=1e-6)


def test_the_loss_at_a_temperature_is_hintons_and_tau_one_is_the_papers_term_exactly():
    torch.manual_seed(0)
    logits, y = torch.randn(3, 8, 4), torch.randint(0, 4, (3, 8))
    p = torch.softmax(torch.randn(3, 8, 4), dim=-1)
    lam, tau = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([1.0, 3.0, 1.0])
    tempered_p = torch.stack([kd.tempered(p[m], float(tau[m])) for m in range(3)])
    got = kd.kd_losses(logits, y, tempered_p, lam, tau)
    untempered = kd.kd_losses(logits, y, p, lam)                          # the first edition's loss
    assert torch.equal(got[0], untempered[0]) and torch.equal(got[2], untempered[2])
    soft = -(tempered_p[1] * F.log_softmax(logits[1] / 3, dim=-1)).sum(-1).mean()
    want = F.cross_entropy(logits[1], y[1]) + 0.5 * 9 * soft
    assert float(got[1]) == pytest.approx(float(want), rel=1e-6)
    assert float(kd.kd_loss(logits[1], y[1], p[1], 0.5, 3.0)) == pytest.approx(float(want), rel=1e-6)


def test_a_student_at_another_temperature_trains_otherwise_and_records_it():
    task = tiny_task(n=60)
    teacher = kd.TeacherProbabilities(task.train.ids, np.full((60, 3), 1 / 3) * 0.4 +
                                      0.6 * np.eye(3)[(task.train.scores + 1) % 3])
    s = KDSettings(max_epochs=3, patience=3)
    one = kd.train_student(task, s, seed=0, lam=1.0, teacher=teacher)
    four = kd.train_student(task, s, seed=0, lam=1.0, teacher=teacher, temperature=4.0)
    assert one.info["temperature"] == 1.0 and four.info["temperature"] == 4.0 == four.student.about["temperature"]
    assert not torch.equal(one.student.model.dense.weight, four.student.model.dense.weight)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        kd.train_students(task, s, [kd.StudentRequest(0, 1.0, "t", 1, 0.0)], {"t": teacher})


# ----------------------------------------------------------------------------- the choice
def _runs(means: dict) -> pd.DataFrame:
    return pd.DataFrame([{"set": "a", "lam": lam, "temperature": tau, "seed": s, "val_accuracy": m + d}
                         for (lam, tau), m in means.items() for s, d in enumerate((-0.01, 0.01))])


def test_the_choice_takes_the_best_mean_validation_accuracy_ties_to_the_smaller_lambda_then_tau():
    t = distillation_choice.choose(_runs({(0.2, 1.0): 0.60, (0.05, 2.0): 0.64, (0.05, 4.0): 0.63}))
    assert list(t.columns) == distillation_choice.COLUMNS and t["seeds"].tolist() == [2, 2, 2]
    assert distillation_choice.chosen_setting(t) == (0.05, 2.0)
    tie = distillation_choice.choose(_runs({(0.5, 1.0): 0.6, (0.05, 4.0): 0.6, (0.05, 2.0): 0.6}))
    assert distillation_choice.chosen_setting(tie) == (0.05, 2.0)
    with pytest.raises(ValueError, match="no KD candidate"):
        distillation_choice.choose(_runs({}))
    with pytest.raises(ValueError, match="exactly one chosen"):
        distillation_choice.chosen_setting(t.assign(chosen=False))


def test_the_plan_trains_the_candidates_on_the_sweep_set_and_the_chosen_setting_everywhere():
    sets = {"a": tiny_task(), "b": tiny_task(seed=1)}
    settings = KDSettings(seeds=2, sweep_seeds=1, lambdas=(0.0, 0.1, 1.0), temperatures=(1.0, 2.0))
    plan = KDPlan(sets, settings)
    candidates = plan.distillation_candidates("a", 2)
    assert {(r.lam, r.temperature) for r in candidates} == {(0.1, 1.0), (0.1, 2.0), (1.0, 1.0), (1.0, 2.0)}
    assert {r.seed for r in candidates} == {0} and all(r.min_count == 2 for r in candidates)
    assert plan.distillation_candidates("b") == []
    before = plan.planned_students("b", 1)                                # nothing chosen yet: lambda 0 only
    assert {r.lam for r in before} == {0.0}
    after = plan.planned_students("b", 1, 0.1, 2.0, oracle=True)
    kd_rows = [r for r in after if r.lam > 0]
    assert {(r.targets, r.lam, r.temperature) for r in kd_rows} == {("in-sample", 0.1, 2.0), (ORACLE, 0.1, 2.0)}
    without = plan.planned_students("b", 1, 0.1, 2.0, oracle=False)
    assert not any(r.targets == ORACLE for r in without)
    sweep = plan.planned_students("a", 1, 0.1, 2.0, oracle=True)           # the oracle over lambda, at tau
    assert {r.lam for r in sweep if r.targets == ORACLE} == {0.1, 1.0}
    assert {r.temperature for r in sweep if r.targets == ORACLE} == {2.0}
    assert {r.lam for r in sweep if r.targets == "out-of-fold"} == {0.1}  # "a" is the out-of-fold set


def test_a_profile_needs_a_lambda_to_distil_with_and_positive_temperatures():
    with pytest.raises(ProfileError, match=r"kd.lambdas: .*needs a lambda above 0"):
        KDSettings(lambdas=(0.0,))
    with pytest.raises(ProfileError, match="kd.temperatures"):
        KDSettings(temperatures=(1.0, 0.0))
    d = load_profile("default").kd
    assert d.temperatures == (1.0, 2.0, 4.0) and {0.02, 0.05, 0.08} <= set(d.lambdas)


# ----------------------------------------------------------------------------- the positive control
def test_the_generator_keeps_each_labels_probability_before_rater_noise(benchmark):
    r = DifficultyKnobs.from_level(0.5).rater_noise
    for task in benchmark.values():
        table = task.meta[LABEL_PROBABILITY]
        for split in (task.train, task.val, task.test):
            p = np.array([table[str(i)] for i in split.ids])
            assert p.shape == split.labels.shape
            assert set(np.round(np.unique(p), 9)) <= {0.0, round(r, 9), round(1 - r, 9)}
            flipped = (p > 0.5) != split.labels.astype(bool)
            assert flipped.mean() < 3 * r                                  # the labels are the noised made ones
            assert not (flipped & (p == 0)).any()                          # off-topic answers are never noised


def test_the_oracle_teacher_gives_class_probabilities_that_differ_from_the_labels(benchmark):
    for spec in BENCHMARK_SETS:
        kd_set = build_kd_set(benchmark, spec)
        assert oracle.applies(kd_set, benchmark)
        t = oracle.oracle_targets(kd_set, benchmark)
        assert t.how == ORACLE and t.proba.shape == (len(kd_set.train), kd_set.n_classes)
        np.testing.assert_allclose(t.proba.sum(axis=1), 1, atol=1e-5)
        agree = (t.proba.argmax(axis=1) == kd_set.train.scores).mean()
        assert 0.7 < agree < 0.97, (spec.name, agree)                     # signal the labels lack, not the labels


def test_the_holistic_views_oracle_is_its_class_distribution():
    tasks = load_tasks("synthetic", scale=0.2, view="holistic")
    spec = next(s for s in BENCHMARK_SETS if s.name == "dry_ice_model")
    kd_set = build_kd_set(tasks, spec)
    p = oracle.oracle_probabilities(kd_set, kd_set.test, tasks)
    assert p.shape == (len(kd_set.test), 4)
    assert (p.argmax(axis=1) == kd_set.test.scores).mean() > 0.7


def test_a_source_without_the_generators_probabilities_has_no_oracle():
    task = tiny_task()
    real = Task("real", "multiclass", task.train, task.val, task.test, n_classes=3, meta={"source": "csv"})
    spec = BENCHMARK_SETS[1].__class__("r", "Bathtub", ("real",), "score")
    kd_set = build_kd_set({"real": real}, spec)
    assert not oracle.applies(kd_set, {"real": real}) and not oracle.applies(kd_set, {})
    with pytest.raises(DataError, match="'r'.*no generator label probabilities"):
        oracle.oracle_targets(kd_set, {"real": real})


def test_a_response_missing_from_the_generators_table_is_named(benchmark):
    spec = next(s for s in BENCHMARK_SETS if s.name == "dry_ice_model")
    kd_set = build_kd_set(benchmark, spec)
    task = benchmark["dry_ice_model"]
    table = dict(task.meta[LABEL_PROBABILITY])
    gone = str(kd_set.train.ids[0])
    del table[gone]
    broken = Task(task.name, task.kind, task.train, task.val, task.test, task.label_names, task.n_classes,
                  {**task.meta, LABEL_PROBABILITY: table})
    with pytest.raises(DataError, match=gone):
        oracle.oracle_targets(kd_set, {**benchmark, "dry_ice_model": broken})


# ----------------------------------------------------------------------------- the cost table
class _Steps(TimedSteps):
    def __init__(self):
        self.timing, self._memo = {}, {}


def test_a_step_inside_another_counts_apart_so_the_steps_add_up():
    s = _Steps()
    t0 = time.perf_counter()
    s._timed("outer", lambda: (time.sleep(0.05), s._timed("inner", lambda: time.sleep(0.1))))
    total = time.perf_counter() - t0
    assert s.timing["inner"] >= 0.1 and 0.05 <= s.timing["outer"] < 0.1
    assert sum(s.timing.values()) == pytest.approx(total, abs=0.01)
    with pytest.raises(RuntimeError):
        s._timed("failing", lambda: (_ for _ in ()).throw(RuntimeError("x")))
    s._timed("after", lambda: None)                                     # the stack was left clean
    assert s.timing["after"] < 0.01 and "failing" in s.timing


def test_the_out_of_fold_sets_are_the_first_single_item_set_every_set_none_or_those_named():
    sets = {"pooled": tiny_task(), "a": tiny_task(seed=1), "b": tiny_task(seed=2)}
    for s in sets.values():
        s.meta["spec"] = {"tasks": ["x"]}
    sets["pooled"].meta["spec"] = {"tasks": ["x", "y"]}
    assert KDPlan(sets, KDSettings()).oof_sets == ["a"]
    assert KDPlan(sets, KDSettings(oof_sets="all")).oof_sets == ["pooled", "a", "b"]
    assert KDPlan(sets, KDSettings(oof_sets=("b",))).oof_sets == ["b"]
    plan = KDPlan(sets, KDSettings(oof_sets="none"))
    assert plan.oof_sets == [] and not any(r.targets == "out-of-fold" for r in plan.planned_students("a", 1, 0.2))
    # no comparison: a table with its columns and no rows (its CSV reads back), and the chapter says why
    from types import SimpleNamespace
    from scoring_lab.kd import report, results_over_seeds
    empty = results_over_seeds.out_of_fold_comparison(None, SimpleNamespace(plan=plan))
    assert empty.empty and list(empty.columns) == results_over_seeds.OUT_OF_FOLD_COLUMNS
    assert "kd.oof_sets: none" in report.NO_OUT_OF_FOLD and "`paper` profile" in report.NO_OUT_OF_FOLD
    assert report.out_of_fold_text(None, None) == report.out_of_fold_text(empty, None) == report.NO_OUT_OF_FOLD
    with pytest.raises(ValueError, match=r"kd.oof_sets names \['c'\]"):
        KDPlan(sets, KDSettings(oof_sets=("c",))).oof_sets
    assert load_profile("paper").kd.oof_sets == "all" and load_profile("default").kd.oof_sets == "none"
