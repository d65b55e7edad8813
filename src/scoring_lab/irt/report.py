"""The IRT chapter's result tables: the population, every search's evaluations and how its fitness
tracked the truth, NSGA-II's Pareto set, the reported accuracy of the chosen models beside the
standard merges and the endpoints, and each arm's test accuracy over its replicates (what each arm
costs is :mod:`~scoring_lab.irt.cost`'s).

Shapes: k_fit fitness items, k reported items (``eval_pos``), n endpoints (the group's tasks).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..merging.evaluation import OWN
from ..profiles.settings import IRTChapterSettings
from .items import ItemScorer, Recipe
from .search_space import SearchSpace
from .searches import SearchResult, SearchRun

OWN_SCORERS = "per-task scorers (each on its own task)"
POPULATION_BEST = "best of the population (its random merges)"


def population_table(recipes: list[Recipe], y: np.ndarray, fit_pos: np.ndarray, eval_pos: np.ndarray,
                     settings: IRTChapterSettings) -> pd.DataFrame:
    """One row per population model: its recipe and accuracy on the fitness and reported items, from its
    answers ``y`` (m, I) on every item."""
    rows = [{"model": r.label(), "kind": "endpoint" if r.merge.method == OWN and r.members else
             "pre-trained" if not r.members else r.merge.method, "members": len(r.members),
             f"{settings.fitness_split}_accuracy": y[i, fit_pos].mean(),
             f"{settings.eval_split}_accuracy": y[i, eval_pos].mean()}
            for i, r in enumerate(recipes)]
    return pd.DataFrame(rows)


def recorded(searches: dict[SearchRun, SearchResult]) -> dict[SearchRun, SearchResult]:
    """The searches whose every evaluation's truth was recorded: each arm's first replicate at the profile's
    subset size."""
    return {run: r for run, r in searches.items() if run.replicate == 0 and run.per_task is None}


def evolution_table(searches: dict[SearchRun, SearchResult]) -> pd.DataFrame:
    """run, generation, individual, estimated_fitness, true_fitness (and per-task true fitness) of every
    evaluation of every :func:`recorded` search."""
    parts = []
    for run, r in recorded(searches).items():
        h = r.evolution.history[["generation", "individual"]].reset_index(drop=True)
        parts.append(pd.concat([h, r.log], axis=1).assign(run=run.label))
    t = pd.concat(parts, ignore_index=True)
    first = ["run", "generation", "individual", "estimated_fitness", "true_fitness"]
    return t[first + [c for c in t.columns if c not in first]]


def fitness_agreement(searches: dict[SearchRun, SearchResult], scorer: ItemScorer, fit_pos: np.ndarray
                      ) -> pd.DataFrame:
    """Per :func:`recorded` search: how its fitness agreed with the truth over its evaluations (Spearman rho, mean
    absolute gap; rho is NaN when either side is constant) and for its chosen model (what the search saw
    against its true fitness-item accuracy)."""
    from scipy.stats import spearmanr

    rows = []
    for run, r in recorded(searches).items():
        log = r.log
        chosen = r.evolution.best_fitness
        seen = float(np.max(chosen @ (np.bincount(scorer.pool.task[fit_pos]) / len(fit_pos)))
                     if np.ndim(chosen) == 2 else chosen)
        true = float(scorer.score(r.chosen, fit_pos).correct.mean())
        same = log["estimated_fitness"].equals(log["true_fitness"])
        rows.append({"run": run.label, "evaluations": len(log),
                     "spearman": 1.0 if same else float(spearmanr(log["estimated_fitness"], log["true_fitness"])[0]),
                     "mean_abs_gap": float((log["estimated_fitness"] - log["true_fitness"]).abs().mean()),
                     "chosen_estimated": seen, "chosen_true": true})
    return pd.DataFrame(rows)


def pareto_table(search: SearchResult, space: SearchSpace, scorer: ItemScorer, fit_pos: np.ndarray) -> pd.DataFrame:
    """A multi-objective ``search``'s final Pareto set: estimated and true per-task fitness."""
    rows = []
    for x, f in zip(search.evolution.best_x, search.evolution.best_fitness):
        truth = scorer.score(space.recipe(x), fit_pos).correct
        rows.append({**{f"estimated_{t}": float(v) for t, v in zip(space.group, f)},
                     **{f"true_{t}": float(truth[scorer.pool.task[fit_pos] == j].mean())
                        for j, t in enumerate(space.group)}})
    return pd.DataFrame(rows)


def accuracy_row(name: str, recipe: Recipe, scorer: ItemScorer, eval_pos: np.ndarray) -> dict:
    """model, test_accuracy and the accuracy per task of ``recipe`` on the reported items."""
    y = scorer.score(recipe, eval_pos).correct.astype(float)
    tasks = scorer.pool.task[eval_pos]
    return {"model": name, "test_accuracy": y.mean(),
            **{t: y[tasks == j].mean() for j, t in enumerate(scorer.pool.tasks)}}


def results_table(searches: dict[SearchRun, SearchResult], baselines: dict[str, Recipe], space: SearchSpace,
                  scorer: ItemScorer, eval_pos: np.ndarray) -> pd.DataFrame:
    """Reported-split accuracy (all items and per task) of every search's chosen model (a row per replicate,
    ``replicate`` set; the sweep's runs apart), the ``baselines`` (the random search among them), and each
    task's own scorer on its own items (the paper's 'Finetuned')."""
    rows = [{**accuracy_row(run.label, r.chosen, scorer, eval_pos), "replicate": run.replicate}
            for run, r in searches.items()]
    rows += [accuracy_row(n, r, scorer, eval_pos) for n, r in baselines.items()]
    own = {t: accuracy_row("", r, scorer, eval_pos)[t] for t, r in zip(space.group, space.endpoints())}
    sizes = np.bincount(scorer.pool.task[eval_pos], minlength=len(space.group))
    rows.append({"model": OWN_SCORERS, "test_accuracy": float(np.dot(list(own.values()), sizes) / sizes.sum()), **own})
    return pd.DataFrame(rows)


def arm_summary(results: pd.DataFrame, arms) -> pd.DataFrame:
    """model, replicates, test_accuracy (mean over replicates), sd, min, max: each search arm's chosen models."""
    t = results[results["model"].isin(list(arms))]
    out = t.groupby("model", sort=False)["test_accuracy"].agg(replicates="count", test_accuracy="mean", sd="std",
                                                               low="min", high="max")
    return out.reindex([a for a in arms if a in out.index]).reset_index()


def ledger_views(compute: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per evaluation, end to end): the ledger (:func:`~scoring_lab.irt.cost.ledger`'s columns) split in two
    tables narrow enough for a page, FLOPs in GFLOP and TFLOP."""
    c = compute
    per = pd.DataFrame({"arm": c["arm"], "items_per_task": c["items_per_evaluation"],
                        "seconds": c["seconds_per_evaluation"], "GFLOP": c["flops_per_evaluation"] / 1e9,
                        "seconds_saved_x": c["per_evaluation_seconds_ratio"],
                        "FLOPs_saved_x": c["per_evaluation_flops_ratio"], "test_accuracy": c["test_accuracy"]})
    end = pd.DataFrame({"arm": c["arm"], "setup_seconds": c["setup_seconds"], "setup_TFLOP": c["setup_flops"] / 1e12,
                        "total_seconds": c["total_seconds"], "total_TFLOP": c["total_flops"] / 1e12,
                        "seconds_saved_x": c["end_to_end_seconds_ratio"], "FLOPs_saved_x": c["end_to_end_flops_ratio"],
                        "break_even_seconds": c["break_even_evaluations_seconds"],
                        "break_even_FLOPs": c["break_even_evaluations_flops"]})
    return per, end
