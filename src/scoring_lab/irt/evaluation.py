"""Judging the estimators, as functions of arrays: how far each estimate from subsets of items falls
from a model's accuracy on all of them (the paper's Fig. 3), how close the abilities behind it come
to the full-data ones (Fig. 4), with which c the g- estimators do best, how the extractors compare
(appendix C.1), and how the error moves with the population the IRT was fitted on.

Shapes: m models, k items (those the estimates are of), d IRT dimensions, n endpoints. ``y`` (m, k)
is the models' 0/1 correctness on the k items, ``items`` those items' parameters, ``endpoints``
the endpoints' abilities mp-IRT combines: one (n, d) for every model, or a list of (n_m, d), one per
model (its own members'); ``prior`` the abilities' (:class:`~scoring_lab.irt.estimators.AbilityPrior`). Every subset is drawn with :func:`subset_seed` of the study's seed,
a stream name, and the draw's place.
"""
from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pandas as pd

from .calibration import fitted_abilities
from .estimators import (GMP_IRT, MP_IRT, RANDOM, AbilityPrior, ItemParameters, choose_mixing, cluster_subset,
                         random_subset, subset_estimates)

ABILITY_FAMILIES = {"p": "p-IRT / gp-IRT", "mp": "mp-IRT / gmp-IRT"}   # whose abilities Fig. 4 compares


def subset_seed(*parts) -> int:
    """A seed for one subset draw, from the study's seed and the draw's stream and place."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def endpoints_of(endpoints, m: int) -> np.ndarray:
    """Model ``m``'s endpoints' abilities: its own entry of a per-model list, or the one array for all."""
    return np.asarray(endpoints[m] if isinstance(endpoints, (list, tuple)) else endpoints, dtype=float)


def mixing_table(y: np.ndarray, items: ItemParameters, endpoints, subset_size: int, repetitions: int,
                 mixing, seed: int, prior: AbilityPrior | None = None) -> pd.DataFrame:
    """gp- and gmp-IRT's mean absolute error in estimating each model's accuracy on the k items from
    ``repetitions`` random subsets of ``subset_size`` per model, for every c in ``mixing``; ``chosen`` marks
    each estimator's best c."""
    rows = []
    for m, row in enumerate(y):
        for r in range(repetitions):
            subset, _ = random_subset(len(items), subset_size, subset_seed(seed, "mix", m, r))
            est, _ = subset_estimates(row[subset], subset, items, endpoints_of(endpoints, m), None, mixing, prior)
            rows += [{"estimator": e, "c": c, "abs_error": abs(v - row.mean())}
                     for (e, c), v in est.items() if c is not None]
    t = pd.DataFrame(rows).groupby(["estimator", "c"], as_index=False)["abs_error"].mean()
    t["chosen"] = False
    for e, part in t.groupby("estimator"):
        c = choose_mixing(dict(zip(part["c"], part["abs_error"])))
        t.loc[(t["estimator"] == e) & (t["c"] == c), "chosen"] = True
    return t


def error_rows(y: np.ndarray, items: ItemParameters, endpoints, sizes, repetitions: int, seed: int,
               stream: str, chosen: dict[str, float], paper_c: float, extractor=None,
               prior: AbilityPrior | None = None) -> tuple[list, list]:
    """(errors, similarities), one row per (subset size, repetition, model): each estimator's estimate and
    absolute error (gp- / gmp-IRT at their ``chosen`` c and at the paper's code's ``paper_c``), and p-/gp-IRT's
    and mp-/gmp-IRT's ability against the model's ability fitted on all k items (cosine, distance). The
    subsets: random, or ``extractor(size, seed)`` -> (positions, weights); each row says how many endpoints
    (``members``) the model merges."""
    truth = fitted_abilities(y, items, prior)
    err, sim = [], []
    for n in sizes:
        for r in range(repetitions):
            if extractor is None:
                subset, weights = random_subset(len(items), min(n, len(items)), subset_seed(seed, stream, n, r))
            else:
                subset, weights = extractor(min(n, len(items)), subset_seed(seed, stream, n, r))
            for m, row in enumerate(y):
                ends = endpoints_of(endpoints, m)
                est, gammas = subset_estimates(row[subset], subset, items, ends, weights,
                                               sorted({*chosen.values(), paper_c}), prior)
                for (name, c), v in est.items():
                    if c is not None and c != chosen.get(name) and c != paper_c:
                        continue
                    label = name if c is None or c == chosen.get(name) else f"{name} (c={c:g}, paper's code)"
                    err.append({"estimator": label, "subset_size": n, "repetition": r, "model": m,
                                "abs_error": abs(v - row.mean()), "estimate": v, "accuracy": row.mean(),
                                "members": len(ends)})
                for fam, g in gammas.items():
                    t = truth[m]
                    cos = float(g @ t / (np.linalg.norm(g) * np.linalg.norm(t))) if np.linalg.norm(g) and \
                        np.linalg.norm(t) else np.nan
                    sim.append({"estimator": ABILITY_FAMILIES[fam], "subset_size": n, "repetition": r, "model": m,
                                "cosine": cos, "distance": float(np.linalg.norm(g - t)), "members": len(ends)})
    return err, sim


def error_tables(y: np.ndarray, items: ItemParameters, endpoints, sizes, repetitions: int, seed: int,
                 chosen: dict[str, float], paper_c: float, prior: AbilityPrior | None = None) -> pd.DataFrame:
    """:func:`error_rows` on random subsets (stream "fig3") as one frame, its ``table`` column "error" or
    "ability" (:func:`split_error_tables` parts them)."""
    err, sim = error_rows(y, items, endpoints, sizes, repetitions, seed, "fig3", chosen, paper_c, prior=prior)
    return pd.concat([pd.DataFrame(err).assign(table="error"), pd.DataFrame(sim).assign(table="ability")])


def split_error_tables(both: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(estimator_error, ability_similarity) of :func:`error_tables`' frame."""
    err = both[both["table"] == "error"].dropna(axis=1, how="all").drop(columns="table")
    sim = both[both["table"] == "ability"].dropna(axis=1, how="all").drop(columns="table")
    first = ["estimator", "subset_size", "repetition", "model"]
    sim = sim[first + ["cosine", "distance"] + [c for c in sim.columns if c not in (*first, "cosine", "distance")]]
    return err.reset_index(drop=True), sim.reset_index(drop=True)


def extractor_table(y: np.ndarray, items: ItemParameters, endpoints, features: dict[str, np.ndarray],
                    sizes, repetitions: int, seed: int, chosen: dict[str, float], paper_c: float,
                    prior: AbilityPrior | None = None) -> pd.DataFrame:
    """Mean absolute error (and its sd) of the random mean, mp-IRT and gmp-IRT per extractor and subset size:
    random items, and k-means clustering of each of ``features`` ({name: (k, f) per item})."""
    extractors = {"random": None, **{name: partial(cluster_subset, f) for name, f in features.items()}}
    rows = []
    for name, ex in extractors.items():
        err, _ = error_rows(y, items, endpoints, sizes, repetitions, seed, "extract", chosen, paper_c, ex, prior)
        rows.append(pd.DataFrame(err).assign(extractor=name))
    t = pd.concat(rows)
    t = t[t["estimator"].isin([RANDOM, MP_IRT, GMP_IRT])]
    return t.groupby(["extractor", "subset_size", "estimator"], as_index=False)["abs_error"].agg(
        mean_abs_error="mean", sd="std")


def population_size_table(items_by_size: dict[int, ItemParameters], y_endpoints: np.ndarray, y: np.ndarray,
                          positions: np.ndarray, subset_size: int, repetitions: int, seed: int,
                          chosen: dict[str, float], members=None, priors: dict | None = None) -> pd.DataFrame:
    """Mean absolute error of each estimator (the g- ones at their ``chosen`` c) at ``subset_size`` items with
    the IRT fitted on populations of each size (``items_by_size``: {size: parameters of every item}): the
    endpoints' abilities refitted from their answers ``y_endpoints`` (n, I) on every item, the models' answers
    ``y`` (m, k) on the items at ``positions`` (k,) estimated from the same random subsets as Fig. 3's;
    ``members``: each model's endpoints (rows of ``y_endpoints``; None: all), ``priors`` {size: prior}."""
    rows, priors = [], priors or {}
    for size, items_all in items_by_size.items():
        items = items_all.subset(positions)
        ends = fitted_abilities(y_endpoints, items_all, priors.get(size))
        n = subset_size
        for r in range(repetitions):
            subset, _ = random_subset(len(items), min(n, len(items)), subset_seed(seed, "fig3", n, r))
            for m, row in enumerate(y):
                own = ends if members is None else ends[members[m]]
                est, _ = subset_estimates(row[subset], subset, items, own, None, sorted(set(chosen.values())),
                                          priors.get(size))
                for (name, c), v in est.items():
                    if c is not None and c != chosen.get(name):
                        continue
                    rows.append({"population": size, "estimator": name, "subset_size": n,
                                 "abs_error": abs(v - row.mean())})
    t = pd.DataFrame(rows)
    return t.groupby(["population", "estimator", "subset_size"], as_index=False)["abs_error"].mean()
