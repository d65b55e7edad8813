"""The IRT chapter's study on the smoke profile (tiny backbone, tiny benchmark): items are scored as the
merged-model code scores them, subsets cost less than the whole, the population and the searches are
seeded, every file the issue names has its columns, and the claims come from the results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring_lab import claims
from scoring_lab.irt import estimators as irt, findings
from scoring_lab.irt.search_space import resolve_group
from scoring_lab.irt.study import IRTStudy
from scoring_lab.irt.items import ItemPool, Recipe
from scoring_lab.merging.evaluation import OWN, Merge
from scoring_lab.metrics import exact_match
from scoring_lab.book.run import setup


@pytest.fixture(scope="module")
def smoke_study():
    run = setup("irt", "smoke")
    return IRTStudy(run.tasks, run.scorers(progress=False), run.profile, run.cache, seed=0, progress=False)


def test_the_group_falls_back_to_a_sources_first_tasks():
    tasks = {"a": None, "b": None, "c": None}
    assert resolve_group(tasks, ("a", "c")) == (("a", "c"), "")
    group, note = resolve_group(tasks, ("x", "y"))
    assert group == ("a", "b") and "no task x, y" in note
    with pytest.raises(ValueError, match="at least two"):
        resolve_group({"a": None}, ("x", "y"))


@pytest.mark.slow
def test_an_item_is_correct_when_the_whole_label_set_matches(smoke_study):
    study = smoke_study
    task = study.group[0]
    own = study.pool.positions("test", task)
    y = study.scorer.score(Recipe((task,)), own).correct
    pred = study.evaluator.predictions((task,), Merge(OWN), "test")[task]
    truth = study.tasks[task].splits()["test"].labels
    assert y.tolist() == (pred == truth).all(axis=1).astype(int).tolist()
    assert y.mean() == pytest.approx(exact_match(truth, pred))


@pytest.mark.slow
def test_scoring_a_subset_gives_the_same_answers_for_fewer_flops(smoke_study):
    study = smoke_study
    recipe = study.space.recipe([0.3, 0.6, 0.9, 0.5, 0.2, 0.8])
    full = study.scorer.score(recipe)
    sub = np.sort(np.random.default_rng(0).choice(len(study.pool), 7, replace=False))
    part = study.scorer.score(recipe, sub)
    assert part.correct.tolist() == full.correct[sub].tolist()
    assert 0 < part.flops < full.flops


def test_pool_positions_split_by_task_and_split():
    class T:   # a stand-in task: only its split sizes matter
        def __init__(self, n):
            self.n = n

        def splits(self):
            return {"val": [0] * self.n, "test": [0] * (2 * self.n)}

    pool = ItemPool.build({"a": T(2), "b": T(3)}, ("a", "b"))
    assert len(pool) == 15 and pool.positions("val", "b").tolist() == [6, 7, 8]
    assert pool.task_of([0, 14]).tolist() == ["a", "b"] and pool.row[pool.positions("test", "a")].tolist() == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="no task 'c'"):
        ItemPool.build({"a": T(2)}, ("a", "c"))


@pytest.mark.slow
def test_population_and_searches_are_seeded_and_in_bounds(smoke_study):
    study = smoke_study
    recipes = study.population_recipes()
    assert len(recipes) == study.settings.population + len(study.group) + 1
    assert recipes[: len(study.group)] == study.space.endpoints() and recipes[len(study.group)] == Recipe(())
    assert all(r.merge.method != "slerp" or len(r.members) == 2 for r in recipes)
    assert recipes == study.population_recipes()
    r = study.space.recipe([0.123456, 1.0, 0.0, 0.55555, 0.1, 1.0])   # a weight and a density per endpoint
    assert r.merge.weights == (0.1235, 1.0, 0.0) and r.merge.density == (0.5556, 0.1, 1.0) and r.members == study.group
    with pytest.raises(ValueError, match="length 6"):
        study.space.recipe([0.5] * 4)
    subset = study.fitness_subset()
    assert len(set(subset)) == len(subset) and (np.bincount(study.pool.task[study.fit_pos[subset]]) ==
                                               study.settings.fitness_items).all()
    assert not np.array_equal(study.fitness_subset(1), subset)   # each replicate draws its own subset
    held = study.space.held_out(4)   # merges of two endpoints and of three, in turn, each with its own members
    assert [len(h.members) for h in held] == [2, 3, 2, 3] and all(len(h.merge.density) == len(h.members) for h in held)
    table = study.dimension_choice()   # chosen among the dimensions where Eq. 2 binds
    assert table.loc[table["chosen"], "dims"].item() > len(study.group) and study.calibration.binds
    assert table["binds"].tolist() == [d > len(study.group) for d in table["dims"]]


@pytest.mark.slow
def test_the_chapters_files_have_the_issues_columns_and_the_claims_come_from_them(smoke_study, tmp_path):
    study = smoke_study
    errors, similarity = study.estimator_study()
    assert {"estimator", "subset_size", "repetition", "model", "abs_error"} <= set(errors.columns)
    assert set(errors["estimator"]) >= set(irt.ESTIMATORS)
    assert np.allclose(errors["abs_error"], (errors["estimate"] - errors["accuracy"]).abs())
    assert {"estimator", "subset_size", "cosine"} <= set(similarity.columns)
    evolution = study.evolution_table()
    assert list(evolution.columns[:5]) == ["run", "generation", "individual", "estimated_fitness", "true_fitness"]
    full = evolution[evolution["run"] == study.runs.full.label]
    assert np.allclose(full["estimated_fitness"], full["true_fitness"])   # full-data fitness is the truth
    compute = study.compute_table().set_index("arm")
    assert {"seconds_per_evaluation", "flops_per_evaluation", "setup_seconds", "end_to_end_seconds_ratio",
            "break_even_evaluations_seconds", "test_accuracy"} <= set(compute.columns)
    runs = study.runs
    assert compute.loc[runs.full.label, "items_per_evaluation"] == "pool"
    assert compute.loc[runs.full.label, "setup_seconds"] == 0 == compute.loc[runs.subset_mean.label, "setup_seconds"]
    assert compute.loc[runs.estimated.label, "setup_seconds"] > 0     # the IRT route pays for its population
    assert compute.loc[runs.estimated.label, "flops_per_evaluation"] < compute.loc[runs.full.label,
                                                                                   "flops_per_evaluation"]
    logged = {run.label: r.log for run, r in study.searches().items() if run.replicate == 0}
    assert (logged[runs.full.label]["items_scored"] == len(study.fit_pos)).all()
    assert (logged[runs.estimated.label]["items_scored"] == len(study.fitness_subset())).all()
    timed = study.cost_timing()
    assert len(timed) == study.settings.cost_models and (timed["merge_seconds"] > 0).all()
    sweep = study.sweep_table()
    assert sweep["run"].iloc[0] == runs.full.label and sweep["share_of_pool"].iloc[0] == 1.0
    assert sweep["items"].iloc[1:].tolist() == sorted(sweep["items"].iloc[1:]) and len(sweep) == len(runs.sweep) + 1
    results = study.results()
    assert {"test_accuracy", *study.group} <= set(results.columns) and results["test_accuracy"].between(0, 1).all()
    assert (results["model"] == runs.estimated.label).sum() == runs.replicates
    arms = study.arm_table().set_index("model")
    assert arms.loc[runs.estimated.label, "replicates"] == runs.replicates
    assert arms.loc[runs.estimated.label, "test_accuracy"] == pytest.approx(
        results.loc[results["model"] == runs.estimated.label, "test_accuracy"].mean())
    rand = study.population_best()
    assert rand in study.population_recipes()[len(study.group) + 1:]
    sampled = study.searches()[runs.sampled]   # random search: as many uniform draws as the GA, no generations
    assert len(sampled.log) == study.settings.pop_size * study.settings.generations
    assert set(sampled.evolution.history["generation"]) == {0}
    assert sampled.evolution.best_fitness == pytest.approx(sampled.log["estimated_fitness"].max())
    comparisons = findings.arm_comparisons(study)
    assert len(comparisons) == 4 + 2 + 5 and set(comparisons["a_above_b"]) <= set(claims.VERDICTS)
    assert (comparisons["ci_low"] <= comparisons["effect"]).all() and (comparisons["effect"] <= comparisons["ci_high"]).all()
    row = comparisons[(comparisons["a"] == runs.estimated.label) & (comparisons["b"] == runs.full.label)].iloc[0]
    assert row["effect"] == pytest.approx(arms.loc[runs.estimated.label, "test_accuracy"] -
                                          arms.loc[runs.full.label, "test_accuracy"])
    found = findings.irt_claims(study, errors, similarity, study.compute_table())
    table = claims.claims_table(found)
    assert len(table) == 11 and set(table["verdict"]) <= set(claims.VERDICTS)
    assert list(table.columns) == claims.COLUMNS
    measured = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert (measured["test"].str.len() > 0).all() and (measured["n"].str.len() > 0).all()
    assert not measured["test"].str.contains("of .* cells below|within 0.01", regex=True).any()   # no counting
    rows = table.set_index("claim")
    fold = rows.loc["Estimated fitness cuts the fitness computation about 50-fold (per evaluation)"]
    assert fold["basis"] == "measured" and fold["note"].startswith(claims.WALL_CLOCK_NOTE)   # measured, merges in both
    assert fold["ci_low"] <= fold["effect"] <= fold["ci_high"] and fold["n"] == f"{study.settings.cost_models} timed merges"
    whole = rows.loc["Estimated fitness cuts the fitness computation about 50-fold (end to end, set-up counted)"]
    led = study.compute_table().set_index("arm")
    capped = led.loc[runs.full.label, "total_seconds"] < led.loc[runs.estimated.label, "setup_seconds"] * 0.8 * \
        len(study.fit_pos) / len(study.fitness_subset())
    assert (whole["verdict"] == "not tested") == capped and whole["note"].startswith(claims.WALL_CLOCK_NOTE)
    assert not any("About 15 models" in c for c in rows.index)   # tinyBenchmarks', not this paper's
    close = rows.loc["Evolution on estimated fitness comes close to evolution on full-data fitness"]
    assert close["n"].endswith(f"{runs.replicates} seeds") and "replicates per arm" in close["note"]
    assert "Eq. 2 binds" in rows.loc[rows.index[0], "note"]
    ests = rows.loc["Every IRT estimator beats the random-subset mean"]
    assert "(held-out model, subset) units" in ests["test"] and "held-out models x" in ests["n"]
    path = tmp_path / "claims.csv"
    table.to_csv(path, index=False)
    assert len(claims.read_claims(path)) == 11
    # the per-unit tables behind two claims reproduce the chapter's own means
    u = study.extractor_units().groupby(["extractor", "subset_size", "estimator"], as_index=False)["abs_error"].mean()
    m = study.extractor_study().merge(u, on=["extractor", "subset_size", "estimator"])
    assert len(m) == len(study.extractor_study()) and np.allclose(m["mean_abs_error"], m["abs_error"])
    agreement = study.fitness_agreement()
    assert agreement.set_index("run").loc[study.runs.full.label, "mean_abs_gap"] == 0
    assert (agreement["spearman"].between(-1, 1) | agreement["spearman"].isna()).all()   # NaN: a constant side
    assert "Spearman" in findings.summary_text(study, errors, study.arm_table(), study.compute_table(), agreement)


@pytest.mark.slow
def test_a_warm_study_gives_the_same_numbers(smoke_study):
    study = smoke_study
    again = IRTStudy(study.tasks, study.evaluator.scorers, study.profile, study.cache, seed=0, progress=False)
    pd.testing.assert_frame_equal(study.evolution_table().drop(columns="estimator_seconds"),
                                  again.evolution_table().drop(columns="estimator_seconds"))
    pd.testing.assert_frame_equal(study.estimator_study()[0], again.estimator_study()[0])


@pytest.mark.slow
def test_fits_in_worker_processes_equal_fits_here(smoke_study):
    from dataclasses import replace

    study = smoke_study
    parallel = IRTStudy(study.tasks, study.evaluator.scorers,
                        replace(study.profile, irt=replace(study.settings, workers=2, irt_epochs=7)),
                        study.cache, seed=0, progress=False)
    serial = IRTStudy(study.tasks, study.evaluator.scorers,
                      replace(study.profile, irt=replace(study.settings, workers=1, irt_epochs=7)),
                      study.cache.__class__(study.cache.root / "serial"), seed=0, progress=False)
    specs = [(1, None), (2, np.arange(5))]
    parallel.fits.prefit(specs)   # two uncached fits, two processes
    for dims, models in specs:
        a, b = parallel.fits.fit(dims, models), serial.fits.fit(dims, models)
        assert np.array_equal(a[0].alpha, b[0].alpha) and np.array_equal(a[1], b[1])
