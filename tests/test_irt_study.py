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
    recipe = study.space.recipe([0.3, 0.6, 0.9, 0.5])
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
    r = study.space.recipe([0.123456, 1.0, 0.0, 0.55555])
    assert r.merge.weights == (0.1235, 1.0, 0.0) and r.merge.density == 0.5556 and r.members == study.group
    subset = study.fitness_subset()
    assert len(set(subset)) == len(subset) and (np.bincount(study.pool.task[study.fit_pos[subset]]) ==
                                               study.settings.fitness_items).all()


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
    compute = study.compute_table()
    assert {"run", "items_scored", "seconds", "flops", "test_accuracy"} <= set(compute.columns)
    per_eval = compute.set_index("run")["items_scored"] / compute.set_index("run")["evaluations"]
    assert per_eval[study.runs.full.label] == len(study.fit_pos)
    assert (per_eval.drop(study.runs.full.label) == len(study.fitness_subset())).all()
    results = study.results()
    assert {"test_accuracy", *study.group} <= set(results.columns) and results["test_accuracy"].between(0, 1).all()
    found = findings.irt_claims(study, errors, similarity, study.extractor_study(), study.population_size_study(),
                                 results, compute)
    table = claims.claims_table(found)
    assert len(table) == 9 and set(table["verdict"]) <= set(claims.VERDICTS)
    assert list(table.columns) == claims.COLUMNS
    measured = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert (measured["test"].str.len() > 0).all() and (measured["n"].str.len() > 0).all()
    assert not measured["test"].str.contains("of .* cells below|within 0.01", regex=True).any()   # no counting
    rows = table.set_index("claim")
    fold = rows.loc["Estimated fitness cuts the fitness computation about 50-fold"]
    bound = len(study.fit_pos) / len(study.fitness_subset())
    assert bound < findings.FOLD_NEEDED   # the smoke settings cannot reach the band: decided before training
    assert fold["verdict"] == "not tested" and fold["basis"] == "by construction" and "caps it at" in fold["note"]
    stable = rows.loc["About 15 models suffice for a stable IRT fit (tinyBenchmarks, cited)"]
    assert stable["verdict"] == "not tested" and "only 10 models" in stable["note"]   # the whole population is 10
    close = rows.loc["Evolution on estimated fitness comes close to evolution on full-data fitness"]
    assert "McNemar" in close["test"] and close["n"].endswith("responses")
    ests = rows.loc["Every IRT estimator beats the random-subset mean"]
    assert "(held-out model, subset) units" in ests["test"] and "held-out models x" in ests["n"]
    path = tmp_path / "claims.csv"
    table.to_csv(path, index=False)
    assert len(claims.read_claims(path)) == 9
    # the per-unit tables behind two claims reproduce the chapter's own means
    u = study.extractor_units().groupby(["extractor", "subset_size", "estimator"], as_index=False)["abs_error"].mean()
    m = study.extractor_study().merge(u, on=["extractor", "subset_size", "estimator"])
    assert len(m) == len(study.extractor_study()) and np.allclose(m["mean_abs_error"], m["abs_error"])
    p = study.population_units().groupby(["population", "estimator", "subset_size"], as_index=False)["abs_error"].mean()
    m = study.population_size_study().merge(p, on=["population", "estimator", "subset_size"], suffixes=("", "_u"))
    assert len(m) == len(study.population_size_study()) and np.allclose(m["abs_error"], m["abs_error_u"])
    agreement = study.fitness_agreement()
    assert agreement.set_index("run").loc[study.runs.full.label, "mean_abs_gap"] == 0
    assert (agreement["spearman"].between(-1, 1) | agreement["spearman"].isna()).all()   # NaN: a constant side
    assert "Spearman" in findings.summary_text(study, errors, results, compute, agreement)


@pytest.mark.slow
def test_a_warm_study_gives_the_same_numbers(smoke_study):
    study = smoke_study
    again = IRTStudy(study.tasks, study.evaluator.scorers, study.profile, study.cache, seed=0, progress=False)
    pd.testing.assert_frame_equal(study.evolution_table().drop(columns="seconds"),
                                  again.evolution_table().drop(columns="seconds"))
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
