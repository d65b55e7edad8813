"""What each search's fitness costs, end to end (the paper's Tables 6-7, counted like with like).

Every arm pays, per evaluation, for building and loading its candidate's merged encoder and for
scoring its items; an IRT arm also for fitting the estimator on them. Those costs are measured the
same way for every arm (:func:`timed_evaluations`: a few merges of the searches' kind, timed with
nothing taken from a cache, each scored on the whole fitness pool and on every subset size the
searches use), so no arm's figure leaves out what another's includes. The IRT route also pays once,
before any search, for its set-up: the population and the validation models scored on the fitness
items (each priced as one full-data evaluation) and the py-irt fits. :func:`ledger` sums them per
arm at the searches' number of evaluations and gives the break-even: the evaluations after which
the IRT route costs less than full-data fitness.

FLOPs are those of the layers that score (``torch.utils.flop_counter``); building a merge is
elementwise work the counter does not count, its seconds are measured. py-irt's fits are counted as
6 m I d FLOPs per epoch (the forward and backward of the m x I logits of a d-dimensional model), an
estimate: they run in pyro, whose element-wise steps the counter does not see either.

Shapes: k_fit fitness items, m population models, I items fitted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .items import ItemScorer, Recipe

FULL_ITEMS = "pool"


def timed_evaluations(scorer: ItemScorer, recipes: list[Recipe], fit_pos: np.ndarray, subsets: dict) -> pd.DataFrame:
    """One row per timed merge of ``recipes``: merge_seconds, and per item set (the whole fitness pool
    ``fit_pos`` as "pool", each of ``subsets`` {k items per task: positions into the pool}) its scoring
    seconds and FLOPs (columns ``<set>_seconds``, ``<set>_flops``)."""
    sets = {FULL_ITEMS: fit_pos, **{str(k): fit_pos[np.asarray(p, dtype=int)] for k, p in subsets.items()}}
    return pd.DataFrame([{"model": j, **scorer.time_evaluation(r, sets)} for j, r in enumerate(recipes)])


def per_evaluation(timed: pd.DataFrame, items: str) -> tuple[np.ndarray, float]:
    """((models,) seconds of one evaluation on item set ``items`` for each timed merge: its merge and its
    scoring, the FLOPs of that scoring)."""
    return (timed["merge_seconds"] + timed[f"{items}_seconds"]).to_numpy(float), float(timed[f"{items}_flops"].iloc[0])


def setup_cost(timed: pd.DataFrame, models_scored: int, fit_seconds: float, fit_flops: float) -> dict:
    """The IRT route's one-off cost: ``models_scored`` models scored on the fitness pool, each priced as a
    full-data evaluation of the timed merges (seconds: their mean), and the py-irt fits."""
    seconds, flops = per_evaluation(timed, FULL_ITEMS)
    return {"setup_seconds": models_scored * float(seconds.mean()) + fit_seconds,
            "setup_flops": models_scored * flops + fit_flops}


def fit_flops(models: int, items: int, dims: int, epochs: int) -> float:
    """An estimate of one py-irt fit's FLOPs: 6 m I d per epoch."""
    return 6.0 * models * items * dims * epochs


def ledger(arms: dict, timed: pd.DataFrame, setup: dict, full_arm: str) -> pd.DataFrame:
    """Per arm ({name: (evaluations per search, the item set it scores ("pool" or k per task), the estimator's
    mean seconds per evaluation, whether it pays the IRT set-up)}): its per-evaluation seconds and FLOPs, its
    total at those evaluations with the set-up where it pays it, the ratios to ``full_arm``'s (per evaluation
    and end to end) and the break-even evaluations against it (NaN where it never breaks even or pays none)."""
    rows = []
    for name, (evaluations, items, estimator_seconds, pays_setup) in arms.items():
        seconds, flops = per_evaluation(timed, items)
        per_s = float(seconds.mean()) + estimator_seconds
        set_s, set_f = (setup["setup_seconds"], setup["setup_flops"]) if pays_setup else (0.0, 0.0)
        rows.append({"arm": name, "evaluations": evaluations, "items_per_evaluation": items,
                     "seconds_per_evaluation": per_s, "flops_per_evaluation": flops,
                     "setup_seconds": set_s, "setup_flops": set_f,
                     "total_seconds": set_s + evaluations * per_s, "total_flops": set_f + evaluations * flops})
    t = pd.DataFrame(rows).set_index("arm")
    full = t.loc[full_arm]
    t["per_evaluation_seconds_ratio"] = full["seconds_per_evaluation"] / t["seconds_per_evaluation"]
    t["per_evaluation_flops_ratio"] = full["flops_per_evaluation"] / t["flops_per_evaluation"]
    t["end_to_end_seconds_ratio"] = full["total_seconds"] / t["total_seconds"]
    t["end_to_end_flops_ratio"] = full["total_flops"] / t["total_flops"]
    saved_s = full["seconds_per_evaluation"] - t["seconds_per_evaluation"]
    saved_f = full["flops_per_evaluation"] - t["flops_per_evaluation"]
    t["break_even_evaluations_seconds"] = np.where((t["setup_seconds"] > 0) & (saved_s > 0),
                                                   t["setup_seconds"] / saved_s.where(saved_s > 0), np.nan)
    t["break_even_evaluations_flops"] = np.where((t["setup_flops"] > 0) & (saved_f > 0),
                                                 t["setup_flops"] / saved_f.where(saved_f > 0), np.nan)
    t["models_per_hour"] = 3600 / t["seconds_per_evaluation"]
    return t.reset_index()


def ratio_interval(timed: pd.DataFrame, arm_items: str, evaluations: float, arm_extra_seconds: float,
                   models_scored: int, fit_seconds: float, n_resamples: int, seed: int,
                   full_evaluations: float | None = None) -> tuple[float, float, float]:
    """(the end-to-end seconds ratio of full-data fitness to an IRT arm scoring ``arm_items``, and its 95%
    percentile interval): the arm at ``evaluations``, full-data fitness at ``full_evaluations`` (default the
    same), the arm with its set-up (``models_scored`` full-data
    evaluations and ``fit_seconds``) and its estimator's ``arm_extra_seconds`` per evaluation; the timed merges
    resampled with replacement (each merge's own merge and scoring seconds together)."""
    if arm_items == FULL_ITEMS:
        raise ValueError("the arm scores the whole pool: no ratio to take")
    full, _ = per_evaluation(timed, FULL_ITEMS)
    arm, _ = per_evaluation(timed, arm_items)
    full_evaluations = evaluations if full_evaluations is None else full_evaluations

    def ratio(f, a):
        setup = models_scored * f.mean() + fit_seconds
        return full_evaluations * f.mean() / (setup + evaluations * (a.mean() + arm_extra_seconds))

    draws = np.random.default_rng(seed).integers(0, len(full), size=(n_resamples, len(full)))
    boot = np.array([ratio(full[d], arm[d]) for d in draws])
    return float(ratio(full, arm)), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


@dataclass(frozen=True)
class RouteCosts:
    """A study's costs: the ``timed`` evaluations, the searches ``found`` ({SearchRun: SearchResult}, the sweep's
    among them), the set-up (``models_scored`` full-data evaluations, the fits' ``fit_seconds`` and
    ``fit_flops``), the profile's ``fitness_items`` per task and the full-data arm's ``full_label``."""

    timed: pd.DataFrame
    found: dict
    models_scored: int
    fit_seconds: float
    fit_flops: float
    fitness_items: int
    full_label: str

    def arms(self) -> dict:
        """{arm: (evaluations per search, the item set it scores, the estimator's mean seconds per evaluation,
        whether it pays the IRT set-up)}, over every replicate of each arm (:func:`ledger`'s ``arms``)."""
        out = {}
        for run in self.found:
            if run.label in out:
                continue
            logs = [r.log for q, r in self.found.items() if q.label == run.label]
            items = FULL_ITEMS if run.estimator is None else str(run.per_task or self.fitness_items)
            out[run.label] = (float(np.mean([len(g) for g in logs])), items,
                              float(pd.concat(logs)["estimator_seconds"].mean()),
                              run.estimator not in (None, "random"))
        return out

    def setup(self) -> dict:
        return setup_cost(self.timed, self.models_scored, self.fit_seconds, self.fit_flops)

    def table(self) -> pd.DataFrame:
        return ledger(self.arms(), self.timed, self.setup(), self.full_label)

    def ratio(self, label: str, n_resamples: int, seed: int, setup: bool = True) -> tuple[float, float, float]:
        """:func:`ratio_interval` of arm ``label``: end to end, or per evaluation (``setup`` False: one
        evaluation each, no set-up)."""
        arms = self.arms()
        evaluations, items, extra, _ = arms[label]
        if not setup:
            return ratio_interval(self.timed, items, 1, extra, 0, 0.0, n_resamples, seed, 1)
        return ratio_interval(self.timed, items, evaluations, extra, self.models_scored, self.fit_seconds,
                              n_resamples, seed, arms[self.full_label][0])
