"""Every chapter runs unchanged on real-data-shaped inputs (smoke profile): multi-class ASAP-SAS,
multi-label PASTA and a plain scored CSV, written by the tests (see ``real_data_fixtures``). A shape's chapters
share one kernel, cleared before each (``tests/test_kernels.py`` holds that clearing).

A chapter added to the book must be added to ``CHAPTERS``: the first test fails until it is.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest

from real_data_fixtures import SHAPES, TASKS, write_shape
from scoring_lab.book.chapters import chapter_sources, execute_chapter
from scoring_lab.book.kernels import SharedKernel

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("00_data", "01_scorers", "02_kd_lstm", "03_gw_merging", "04_moe", "05_irt_merging", "90_claims", "91_reproducibility")


def test_every_chapter_is_held_to_the_real_data_check():
    assert {s.stem for s in chapter_sources(ROOT / "notebooks")} == set(CHAPTERS)


@pytest.fixture(scope="module", params=list(SHAPES))
def shape_run(request, tmp_path_factory):
    """One shape's fixture and a results folder, with every chapter executed on it in book order, in one shared
    kernel (:class:`~scoring_lab.book.kernels.SharedKernel`: 6-7 s of kernel start and imports a chapter saved,
    about 40 s a shape). The smoke executions (``executed``) give each chapter its own kernel, as the book does."""
    shape = request.param
    root = tmp_path_factory.mktemp(f"real-{shape}")
    source, data_path = write_shape(shape, root / "data")
    results = root / "results"
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_LAB_RESULTS", str(results))
    executed, errors = {}, {}
    try:
        with SharedKernel() as kernel:
            for chapter in CHAPTERS:
                try:
                    executed[chapter] = execute_chapter(ROOT / "notebooks" / f"{chapter}.md", root / "out",
                                                        profile="smoke", cwd=ROOT, progress=False, source=source,
                                                        data_path=str(data_path), kernel=kernel)
                except Exception as e:  # noqa: BLE001 (reported per chapter by the test below)
                    errors[chapter] = f"{type(e).__name__}: {str(e)[-3000:]}"
    finally:
        mp.undo()
    return shape, results / f"smoke-{source}", executed, errors


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_real_data_shape(shape_run, chapter):
    shape, results, executed, errors = shape_run
    assert chapter not in errors, f"{chapter} failed on the {shape} fixture:\n{errors[chapter]}"
    nb = nbformat.read(executed[chapter], as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{chapter} on {shape}: {out.get('ename')}"


def test_scorers_chapter_tables_fit_the_kind(shape_run):
    shape, results, _, errors = shape_run
    assert "01_scorers" not in errors
    kind, names = SHAPES[shape][3], SHAPES[shape][4]
    metrics = pd.read_csv(results / "scorers" / "metrics.csv")
    assert list(metrics["task"]) == [*names, "weighted mean"]
    baseline = pd.read_csv(results / "scorers" / "baseline_metrics.csv")
    assert list(baseline["task"]) == list(metrics["task"])
    main = "micro_f1" if kind == "multilabel" else "qwk"
    assert metrics[main].between(-1, 1).all() and baseline[main].between(-1, 1).all()
    versus = pd.read_csv(results / "scorers" / "scorer_vs_baseline.csv")
    assert {f"{main} (scorer)", f"{main} (TF-IDF + LR)"} <= set(versus.columns)
    claims = pd.read_csv(results / "scorers" / "claims.csv")
    if kind == "multiclass" or not set(names) & set(TASKS):   # none of the papers' tasks: nothing to compare with
        assert (claims["verdict"] == "not tested").all()
    else:                        # two of the papers' tasks, by name: the claims on them are tested
        assert (claims["verdict"] != "not tested").any()
    ordinal = results / "scorers" / "decoding_qwk.csv"
    if kind == "multiclass":
        qwk = pd.read_csv(ordinal)
        decodings = ("argmax", "ordinal, per task", "ordinal, shared")
        models = ("scorer, softmax head", "scorer, cumulative head", "TF-IDF + LR")
        assert list(qwk.columns) == ["task", *(f"{m}, {d}" for m in models for d in decodings)]
        assert list(qwk["task"]) == [*names, "weighted mean"]
        choice = pd.read_csv(results / "scorers" / "decoding_choice.csv")
        assert choice.groupby("model", sort=False)["chosen"].sum().to_dict() == dict.fromkeys(models, 1)
        assert choice["val_cv_qwk"].between(-1, 1).all()
    else:
        assert not ordinal.exists()


def test_data_chapter_summarises_the_fixture(shape_run):
    shape, results, _, errors = shape_run
    assert "00_data" not in errors
    summary = pd.read_csv(results / "data" / "summary.csv")
    kind, names = SHAPES[shape][3], SHAPES[shape][4]
    assert set(summary["kind"]) == {kind}
    assert list(summary["name"]) == names


def test_kd_chapter_builds_sets_from_any_source_and_compares_every_model(shape_run):
    shape, results, _, errors = shape_run
    assert "02_kd_lstm" not in errors
    names = SHAPES[shape][4]
    sets = pd.read_csv(results / "kd" / "sets.csv")
    # a pooled set of the source's tasks, then its largest tasks as single items (at most three)
    assert sets["set"].iloc[0] == f"pooled-{len(names)}" and set(sets["set"].iloc[1:]) <= set(names)
    assert (sets["responses"] == sets["train"] + sets["val"] + sets["test"]).all()
    table = pd.read_csv(results / "kd" / "table2.csv")
    assert set(table["model"]) == {"teacher", "small transformer", "ANN", "student (lambda = 0)", "KD student"}
    assert table["accuracy_mean"].between(0, 1).all()
    claims = pd.read_csv(results / "kd" / "claims.csv")
    assert len(claims) >= 6 and (claims["paper"] == "kd").all()
    source = SHAPES[shape][0]           # the notes name the real source, never a synthetic benchmark
    notes = claims.loc[claims["claim"].str.contains("more accurate than|comparable to the teacher"), "note"]
    assert len(notes) == 3 and notes.str.startswith(f"{source} data in the roles of the paper's data sets").all()
    assert not claims["note"].fillna("").str.contains("synthetic").any()
    for name in ("vocab_choice", "unknown_words"):
        assert (results / "kd" / f"{name}.csv").is_file()
    agreeing = pd.read_csv(results / "kd" / "agreement_with_teacher.csv")
    assert {"KD student", "student (lambda = 0)"} <= set(agreeing["model"])
    assert agreeing["agreement_mean"].between(0, 1).all() and (agreeing["kl_mean"] >= 0).all()
    gain = pd.read_csv(results / "kd" / "agreement_gain.csv")
    assert len(gain) >= 1 and (gain["ci_low"] <= gain["ci_high"]).all() and gain["verdict"].notna().all()
    assert {"qwk_mean", "weighted_f1_mean"} <= set(table.columns) and table["qwk_mean"].between(-1, 1).all()
    scored = pd.read_csv(results / "kd" / "student" / "example_scored.csv")
    assert {"id", "response", "predicted_score"} <= set(scored.columns)
    choice = pd.read_csv(results / "kd" / "distillation_choice.csv")   # lambda and tau chosen on validation
    assert choice["chosen"].sum() == 1 and (choice["lam"] > 0).all()
    # real data have no generator probabilities: no positive control, and the claim says so
    assert "student of the generator" not in set(table["model"])
    control = claims[claims["claim"].str.startswith("Positive control")]
    assert len(control) == 1 and control["verdict"].iloc[0] == "not tested"
    against = pd.read_csv(results / "kd" / "targets_against_labels.csv")
    assert set(against["targets"]) == {"in-sample"} and against["agreement_with_labels"].between(0, 1).all()
    costs = pd.read_csv(results / "kd" / "step_costs.csv")
    assert {"LSTM students: training", "teachers: inference"} <= set(costs["step"]) and (costs["seconds"] >= 0).all()


def test_gw_chapter_plans_merges_and_scores_any_source(shape_run):
    shape, results, _, errors = shape_run
    assert "03_gw_merging" not in errors
    kind, names = SHAPES[shape][3], SHAPES[shape][4]
    distance = pd.read_csv(results / "gw" / "distance.csv", index_col=0)
    assert list(distance.index) == list(distance.columns) == names
    plans = pd.read_csv(results / "gw" / "plans.csv")
    assert {"method", "groups", "n_models"} <= set(plans.columns)
    assert plans.set_index("method").loc["GW-SMM", "n_models"] == len(names) - 1   # two tasks: one model
    perf = pd.read_csv(results / "gw" / "performance.csv")
    main = "micro_f1" if kind == "multilabel" else "qwk"
    assert {"method", "task", main, "n_test"} <= set(perf.columns)
    assert set(perf["task"]) == set(names) and {"Pre-Merged", "GW-SMM"} <= set(perf["method"])
    for name in ("ttests", "storage", "timing", "claims"):
        assert (results / "gw" / f"{name}.csv").is_file()
    claims = pd.read_csv(results / "gw" / "claims.csv")
    assert (claims["paper"] == "gw").all()
    assert (claims[claims["claim"].str.contains("Human Knowledge|GPT-o1")]["verdict"] == "not tested").all()


def test_moe_chapter_trains_adapts_and_scores_every_source(shape_run):
    """Rubric (multi-label) and scored (multi-class) sources alike: the chapter's parts ran, with each kind's
    metrics (a score's: quadratic weighted kappa, macro-F1 over classes, accuracy)."""
    shape, results, executed, errors = shape_run
    assert "04_moe" not in errors
    kind, names = SHAPES[shape][3], SHAPES[shape][4]
    metrics = ["kappa", "macro_f1", "micro_f1", "per_label_accuracy"] if kind == "multilabel" else \
        ["kappa", "macro_f1", "accuracy"]
    text = nbformat.read(executed["04_moe"], as_version=4)
    shown = "".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("data", {}).get("text/plain", ""))
                    for c in text.cells for o in c.get("outputs", []))
    assert "parts are skipped" not in shown
    # the paper's held-out tasks are absent: the source's last task is held out, the others train
    table3 = pd.read_csv(results / "moe" / "table3.csv")
    assert list(table3.columns[2:2 + len(metrics)]) == metrics
    assert table3[metrics].notna().all().all() and table3["kappa"].between(-1, 1).all()
    assert set(table3["method"]) == {"Individual", "MTL", "UniMoE", "UniMoE-Guided"}
    assert set(table3["task"]) == {*names[:-1], "average"}
    general = pd.read_csv(results / "moe" / "generalization.csv")
    assert set(general["task"]) == {names[-1]} and set(general["method"]) == {"Individual", "MTL", "UniMoE-Guided"}
    for name, columns in {"search": ["method", "n_experts", "lambda_lb", "lambda_kd", "tau", "val_kappa"],
                          "resources": ["model", "params", "disk_mb", "latency_ms_batch1", "latency_ms_batch32"],
                          "forgetting": ["metric", "before", "after"], "freezing": ["method", "encoder", "kappa"],
                          "seeds": ["model", "seed", "kappa"],
                          "load_balancing": ["lambda_lb", "chosen", "task_entropy"]}.items():
        assert columns == list(pd.read_csv(results / "moe" / f"{name}.csv").columns[:len(columns)])
    freezing = pd.read_csv(results / "moe" / "freezing.csv")     # both columns and the transfer control ran
    assert {"frozen encoder", "top layer trained"} <= set(freezing["encoder"])
    assert "MTL, one task at a time" in set(freezing["method"])
    usage = pd.read_csv(results / "moe" / "expert_usage.csv", index_col=0)
    assert list(usage.index) == names[:-1]
    claims = pd.read_csv(results / "moe" / "claims.csv")
    assert len(claims) >= 10 and (claims["paper"] == "moe").all()
    if kind == "multiclass":   # judged on a score's metrics, and said so
        judged = claims[(claims["basis"] == "measured") & (claims["verdict"] != "not tested")]
        assert len(judged) and judged["test"].str.contains("QWK").any()
        assert set(pd.read_csv(results / "moe" / "forgetting.csv")["metric"]) == set(metrics)


def test_irt_chapter_merges_the_sources_tasks_and_writes_the_issues_files(shape_run):
    shape, results, _, errors = shape_run
    assert "05_irt_merging" not in errors
    names = SHAPES[shape][4]
    columns = {"estimator_error": ["estimator", "subset_size", "repetition", "model", "abs_error"],
               "ability_similarity": ["estimator", "subset_size", "repetition", "model", "cosine"],
               "evolution": ["run", "generation", "individual", "estimated_fitness", "true_fitness"]}
    for name, first in columns.items():
        assert first == list(pd.read_csv(results / "irt" / f"{name}.csv").columns[:len(first)])
    compute = pd.read_csv(results / "irt" / "compute.csv")
    assert {"arm", "seconds_per_evaluation", "flops_per_evaluation", "setup_seconds", "end_to_end_seconds_ratio",
            "break_even_evaluations_seconds", "test_accuracy"} <= set(compute.columns) and len(compute) >= 4
    assert len(pd.read_csv(results / "irt" / "sweep.csv")) >= 2 and len(pd.read_csv(results / "irt" / "arms.csv")) == 5
    res = pd.read_csv(results / "irt" / "results.csv")
    group = [c for c in res.columns if c in names]
    assert len(group) >= 2 and res["test_accuracy"].between(0, 1).all()   # the source's own tasks were merged
    claims = pd.read_csv(results / "irt" / "claims.csv")
    assert len(claims) == 11 and (claims["paper"] == "irt").all()
