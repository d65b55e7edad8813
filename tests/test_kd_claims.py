"""The KD chapter's claims on the verdict framework: each builder, fed constructed predictions, reaches
its outcomes; the chapter's claims.csv has the new columns, a test and n behind every measured verdict,
the parameter ratio by construction and the speed-up marked wall-clock."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scoring_lab import claims, verdicts
from scoring_lab.kd import claim_tests as ct
from scoring_lab.kd import footprint, report
from scoring_lab.kd.plan import ANN, KD_STUDENT, ORACLE_STUDENT, SMALL, STUDENT, TEACHER
from scoring_lab.kd.results_over_seeds import scores_of_predictions
from scoring_lab.metrics import multiclass_macro_f1

from kd_tasks import tiny_task

K = 4
R = 400


def _wrong(y: np.ndarray, idx) -> np.ndarray:
    """``y`` with the responses ``idx`` moved to the next class (so wrong)."""
    out = y.copy()
    out[idx] = (out[idx] + 1) % K
    return out


def _at(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """A prediction right on a seeded ``accuracy`` share of ``y`` (independent errors)."""
    rng = np.random.default_rng(seed)
    return _wrong(y, rng.permutation(len(y))[: round((1 - accuracy) * len(y))])


def _truth(n: int = 300, sets=("a", "b")) -> dict:
    return {s: np.random.default_rng(i).integers(0, K, n) for i, s in enumerate(sets)}


def _samples(truth: dict, acc_a: dict, acc_b: dict, seeds_a: int = 1, seeds_b: int = 1) -> dict:
    return {s: (y, [_at(y, acc_a[s], 10 * j + i) for j in range(seeds_a)],
                [_at(y, acc_b[s], 100 + 10 * j + i) for j in range(seeds_b)]) for i, (s, y) in enumerate(truth.items())}


@pytest.mark.parametrize("acc_a, acc_b, verdict, held", [
    ({"a": .9, "b": .9}, {"a": .6, "b": .6}, "held", (True, True)),
    ({"a": .9, "b": .75}, {"a": .6, "b": .75}, "partly", (True, False)),
    ({"a": .75, "b": .75}, {"a": .76, "b": .75}, "inconclusive", (False, False)),
    ({"a": .6, "b": .6}, {"a": .9, "b": .9}, "not held", (False, False))])
def test_more_accurate_is_holm_over_per_set_paired_bootstraps(acc_a, acc_b, verdict, held):
    parts, overall = ct.beats(_samples(_truth(), acc_a, acc_b), R, 0)
    v = verdicts.compare_all(list(parts.values()), overall)
    assert v.verdict == verdict and v.held_each == held
    assert v.effect == pytest.approx(np.mean([acc_a[s] - acc_b[s] for s in "ab"]), abs=0.002)
    assert v.ci_low <= v.effect <= v.ci_high and v.n == 600
    assert "within 2 strata, mean over them" in v.test and "Holm" in v.test
    assert all("McNemar" in p.test for p in parts.values())           # one prediction per response each
    row = claims.judged("kd", "c", "+0.030", v)
    assert ("smallest effect" in row.note) == (verdict == "inconclusive")


def test_seeds_are_pooled_per_response_and_mcnemar_left_out():
    truth = _truth()
    parts, overall = ct.beats(_samples(truth, {"a": .9, "b": .9}, {"a": .6, "b": .6}, seeds_a=3, seeds_b=3), R, 0)
    assert overall.n_text == "600 responses, 3 seeds" and "seeds pooled" in overall.test
    assert not any("McNemar" in p.test for p in parts.values())


def test_by_set_pairs_seeds_in_order_and_skips_sets_without_the_baseline():
    truth = _truth(n=20)
    preds = {("a", KD_STUDENT, 1): truth["a"], ("a", KD_STUDENT, 0): _wrong(truth["a"], [0]),
             ("a", SMALL, 0): truth["a"], ("b", KD_STUDENT, 0): truth["b"]}
    s = ct.by_set(preds, truth, KD_STUDENT, SMALL)
    assert list(s) == ["a"] and len(s["a"][1]) == 2 and (s["a"][1][0] != truth["a"]).sum() == 1


def test_every_set_corrects_all_comparisons_together_and_says_how_many_held():
    truth = _truth()
    ann, _ = ct.beats(_samples(truth, {"a": .9, "b": .9}, {"a": .6, "b": .6}), R, 0)
    small, _ = ct.beats(_samples(truth, {"a": .75, "b": .75}, {"a": .75, "b": .74}), R, 0)
    parts = {**{f"{s} vs ANN": v for s, v in ann.items()}, **{f"{s} vs small": v for s, v in small.items()}}
    v = ct.every_set(parts)
    assert v.verdict == "partly" and sum(v.held_each) == 2
    assert v.test.startswith("2 of 4 held after Holm's correction of 4")
    assert v.n_text == "4 comparisons over 1200 test responses"
    assert v.against_each == (False,) * 4
    assert ct.which_held(parts, v.held_each, v.against_each) == (
        "held after Holm's correction on a vs ANN, b vs ANN; not on a vs small, b vs small")


def test_a_comparison_the_other_way_makes_the_claim_not_held_and_the_note_names_it():
    truth = _truth()
    ann, _ = ct.beats(_samples(truth, {"a": .9, "b": .9}, {"a": .6, "b": .6}), R, 0)
    small, _ = ct.beats(_samples(truth, {"a": .6, "b": .75}, {"a": .9, "b": .74}), R, 0)   # a: the KD student worse
    parts = {**{f"{s} vs ANN": v for s, v in ann.items()}, **{f"{s} vs small": v for s, v in small.items()}}
    v = ct.every_set(parts)
    assert v.verdict == "not held" and sum(v.held_each) == 2 and v.against_each == (False, False, True, False)
    assert v.test.startswith("2 of 4 held after Holm's correction of 4")
    assert ct.which_held(parts, v.held_each, v.against_each) == (
        "held after Holm's correction on a vs ANN, b vs ANN; significantly the other way on a vs small; not on b vs small")



def test_the_every_set_claim_counts_the_comparisons_the_other_way_in_its_value():
    rows = {r.claim: r for r in report.kd_claims(*_chapter(kd=.75, small=.95, ann=.6))}
    every = next(r for c, r in rows.items() if "every data set" in c)
    assert every.verdict == "not held"
    assert every.our_value == "2 of 4 held after correction, 2 significantly the other way"
    assert "significantly the other way on a vs small transformer, b vs small transformer" in every.note

@pytest.mark.parametrize("kd_wrong, verdict", [(66, "held"), (84, "inconclusive"), (150, "not held")])
def test_teacher_gap_is_one_sided_at_most_the_papers(kd_wrong, verdict):
    truth = _truth()
    samples = {s: (y, [_wrong(y, np.arange(60))], [_wrong(y, np.arange(kd_wrong))]) for s, y in truth.items()}
    v = ct.gap_at_most(samples, 0.0817, R, 0)
    assert v.verdict == verdict and v.effect == pytest.approx((kd_wrong - 60) / 300)
    assert "<= 0.0817" in v.test and v.ci_low <= v.effect <= v.ci_high


def test_a_teacher_gap_far_below_the_papers_is_held_and_says_what_a_negative_gap_means():
    rows = report.kd_claims(*_chapter(teacher=.6, kd=.8))
    gap = next(r for r in rows if "teacher's" in r.claim)
    assert gap.verdict == "held" and gap.effect < 0 and "weak teacher" in gap.note


@pytest.mark.parametrize("fast_ms, verdict", [(0.5, "held"), ("spread", "inconclusive"), (5.0, "not held")])
def test_speedup_is_a_band_on_the_ratio_of_median_seconds_over_timed_responses(fast_ms, verdict):
    rng = np.random.default_rng(0)
    slow = 0.010 + 0.0005 * rng.random(16)
    fast = rng.uniform(0.0006, 0.0016, 16) if fast_ms == "spread" else fast_ms / 1000 + 0.00001 * rng.random(16)
    v = ct.speedup_band(slow, fast, 10, R, 0)
    assert v.verdict == verdict and v.effect == pytest.approx(np.median(slow) / np.median(fast))
    assert v.ci_low <= v.effect <= v.ci_high and v.n == 16 and ">= 10" in v.test
    with pytest.raises(ValueError, match="same responses"):
        ct.speedup_band(slow, fast[:3], 10, R, 0)


# ----------------------------------------------------------------------------- the chapter's rows
def _chapter(teacher=.8, kd=.75, small=.7, ann=.6, plain=.74, small_on=("a", "b"), n=300, latencies=True,
             source=None, oracle=.85):
    """kd_claims' inputs for two sets: each model right on its share of the test responses."""
    truth = _truth(n)
    preds = {}
    for i, (s, y) in enumerate(truth.items()):
        preds[(s, TEACHER, 0)] = _at(y, teacher, i)
        if s in small_on:
            preds[(s, SMALL, 0)] = _at(y, small, 10 + i)
        for seed in range(2):
            models = ((ANN, ann), (STUDENT, plain), (KD_STUDENT, kd)) + (((ORACLE_STUDENT, oracle),) if oracle else ())
            for j, (model, acc) in enumerate(models):
                preds[(s, model, seed)] = _at(y, acc, 100 * seed + 20 * j + i)
    sets = {s: SimpleNamespace(test=SimpleNamespace(scores=y), meta={"role": s, "data_source": source})
            for s, y in truth.items()}
    ratios = {"parameter_ratio": 820.0, "teacher_parameters": 22_700_000}
    times = pd.DataFrame({"small_seconds": np.full(8, 0.011), "student_seconds": np.full(8, 0.002)}) if latencies else None
    return preds, ratios, sets, SimpleNamespace(n_resamples=R, seed=0), times


def test_the_chapters_claims_csv_has_the_new_columns_and_a_test_behind_every_measured_verdict(tmp_path):
    rows = report.kd_claims(*_chapter())
    path = tmp_path / "kd" / "claims.csv"
    path.parent.mkdir()
    claims.claims_table(rows).to_csv(path, index=False)
    table = claims.read_claims(path)              # the checker: columns, vocabulary, interval, test and n
    assert list(table.columns) == claims.COLUMNS and len(table) == 8
    measured = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert len(measured) == 7 and (measured["test"] != "").all() and (measured["n"] != "").all()
    by = table.set_index("claim")
    ann = by.loc["The KD student is more accurate than the ANN (by about 3% on average)"]
    assert ann["verdict"] == "held" and "Holm" in ann["note"] and ann["n"] == "600 responses, 2 seeds"
    assert by.filter(like="every data set", axis=0)["our_value"].iloc[0].endswith("of 4 held after correction")
    ratio = by.loc["The student has about 4,000 times fewer parameters than the teacher"]
    assert ratio["basis"] == "by construction" and ratio["verdict"] == "partly" and ratio["our_value"] == "820x"
    speed = by.loc["The student infers about 10 times faster than TinyBERT"]
    assert speed["note"].startswith(claims.WALL_CLOCK_NOTE) and speed["verdict"] == "not held"
    assert speed["our_value"] == "5.5x [5.5, 5.5]"


@pytest.mark.parametrize("source, named", [
    ("synthetic", "the project's synthetic benchmark in the roles of the paper's data sets"),
    ("asap-sas", "asap-sas data in the roles of the paper's data sets (this run's source, not the paper's data)"),
    (None, "this run's data sets in the roles of the paper's data sets (not the paper's data)")])
def test_the_notes_name_the_data_source_not_the_sets_roles(source, named):
    rows = report.kd_claims(*_chapter(source=source))
    based = [r for r in rows if r.basis == "measured" and ("more accurate" in r.claim or "teacher's" in r.claim)]
    assert len(based) == 3 and all(r.note.startswith(named + "; ") for r in based)
    if source != "synthetic":
        assert not any("synthetic" in r.note for r in rows)


def test_a_sets_data_source_is_its_member_tasks_source():
    from scoring_lab.data.task import Split, Task
    from scoring_lab.kd import sets as kd_sets

    def task(name, source):
        y = np.arange(8) % 2
        split = lambda part: Split([f"{name}{part}{i}" for i in range(8)], [f"text {i}" for i in range(8)],  # noqa: E731
                                   scores=y)
        return Task(name, "multiclass", split("tr"), split("va"), split("te"), n_classes=2, meta={"source": source})
    tasks = {"x": task("x", "asap-sas"), "y": task("y", "asap-sas"), "z": task("z", "csv")}
    same = kd_sets.build_kd_set(tasks, kd_sets.KDSetSpec("p", "7T", ("x", "y")))
    mixed = kd_sets.build_kd_set(tasks, kd_sets.KDSetSpec("q", "7T", ("x", "z")))
    assert same.meta["data_source"] == "asap-sas" and mixed.meta["data_source"] is None
    assert report.source_text({"p": same}).startswith("asap-sas data")


def test_no_verdict_is_decided_before_training():
    """Every measured verdict moves with the predictions: the same settings reach opposite verdicts."""
    good = report.kd_claims(*_chapter(kd=.9, plain=.6))
    bad = report.kd_claims(*_chapter(kd=.5, plain=.8, teacher=.9, oracle=.6))
    for g, b in zip(good, bad):
        if g.basis == "measured" and "faster" not in g.claim:
            assert g.verdict != b.verdict, g.claim


def test_the_positive_control_is_judged_on_the_generators_student_and_not_tested_without_one():
    rows = {r.claim: r for r in report.kd_claims(*_chapter(oracle=.9, plain=.6))}
    assert rows[report.CONTROL_CLAIM].verdict == "held" and "not the paper's claim" in rows[report.CONTROL_CLAIM].note
    rows = {r.claim: r for r in report.kd_claims(*_chapter(oracle=.55, plain=.75))}
    assert rows[report.CONTROL_CLAIM].verdict == "not held"
    rows = {r.claim: r for r in report.kd_claims(*_chapter(oracle=None, source="asap-sas"))}
    assert rows[report.CONTROL_CLAIM].verdict == "not tested" and "no generator" in rows[report.CONTROL_CLAIM].note
    assert "synthetic" not in rows[report.CONTROL_CLAIM].note


def test_a_baseline_left_out_is_named_and_no_baseline_is_not_tested():
    rows = {r.claim: r for r in report.kd_claims(*_chapter(small_on=("a",)))}
    assert "no small transformer on b" in rows[
        "The KD student is more accurate than the small transformer (by about 2% on average)"].note
    rows = {r.claim: r for r in report.kd_claims(*_chapter(small_on=(), latencies=False))}
    small = rows["The KD student is more accurate than the small transformer (by about 2% on average)"]
    speed = rows["The student infers about 10 times faster than TinyBERT"]
    assert small.verdict == speed.verdict == "not tested" and speed.note.startswith(claims.WALL_CLOCK_NOTE)


def test_not_applicable_claims_are_valid_rows(tmp_path):
    rows = report.not_applicable_claims("no multi-class tasks")
    path = tmp_path / "claims.csv"
    claims.claims_table(rows).to_csv(path, index=False)
    table = claims.read_claims(path)
    assert len(table) == 8 and (table["verdict"] == "not tested").all()
    assert table.set_index("claim").loc["The student has about 4,000 times fewer parameters than the teacher",
                                        "basis"] == "by construction"


def test_seed_results_are_the_scores_of_the_kept_predictions():
    task = tiny_task(n_test=6, k=K)
    y = task.test.scores
    t = scores_of_predictions({"a": task}, {("a", KD_STUDENT, 0): y, ("a", ANN, 0): _wrong(y, [0, 1, 2])})
    assert t["accuracy"].tolist() == [1.0, 0.5] and t["n_test"].tolist() == [6, 6]
    assert t["model"].tolist() == [KD_STUDENT, ANN] and t.loc[0, "macro_f1"] == multiclass_macro_f1(y, y, K)


def test_response_latencies_time_both_models_on_the_same_responses_in_turn():
    calls = []
    small = SimpleNamespace(predict_proba=lambda b, batch_size: calls.append(("small", tuple(b))))
    student = SimpleNamespace(predict_proba=lambda b: calls.append(("student", tuple(b))))
    transformers = SimpleNamespace(small_transformer=lambda name: SimpleNamespace(scorer=small))
    models = SimpleNamespace(sets={"a": SimpleNamespace(test=SimpleNamespace(texts=["x", "y", "z"]))},
                             plan=SimpleNamespace(seed=0),
                             kd_student=lambda name, seed: SimpleNamespace(student=student))
    t = footprint.response_latencies(transformers, models, "a", n_responses=2)
    assert list(t.columns) == ["response", "small_seconds", "student_seconds"] and len(t) == 2
    assert calls == [("small", ("x",)), ("student", ("x",)), ("small", ("x",)), ("student", ("x",)),
                     ("small", ("y",)), ("student", ("y",))]
    assert (t[["small_seconds", "student_seconds"]] > 0).all().all()
