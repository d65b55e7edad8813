"""Per-unit tables behind the IRT chapter's claims: the extractors' and the refitted populations'
absolute errors per (held-out model, subset), where the chapter's own tables keep only their means.

A verdict on "random extraction is as good as clustering" or "about 15 models suffice" compares two
errors on the same units (the same held-out merged model, the same repetition), so it needs every
unit's error, not a mean. These tables are drawn exactly as :mod:`~scoring_lab.irt.evaluation` draws
its own (same streams, seeds and subsets: their means equal the chapter's tables) and cached beside
them (kind ``irt-table``) under their own names, so the chapter's cached steps are not touched.

Shapes: e held-out models, k reported items, n endpoints.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ..models.cache import array_digest, code_version
from . import estimators, evaluation
from .calibration import fitted_abilities
from .evaluation_tables import EvaluationTables
from .items import Recipe


def extractor_units(tables: EvaluationTables, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
    """extractor, subset_size, repetition, model, estimator, abs_error: every unit of the chapter's
    extractor table (random items, IRT and representation clustering) for the random mean, mp- and
    gmp-IRT, ``held_out`` (e, k) the held-out models' answers on the reported items, cached."""
    s, items = tables.settings, tables.calibration.items.subset(tables.eval_pos)

    def compute():
        features = {"IRT clustering": estimators.irt_features(items),
                    "representation clustering": tables.scorer.embeddings(Recipe(()), tables.eval_pos)}
        found = {"random": None, **{n: partial(estimators.cluster_subset, f) for n, f in features.items()}}
        parts = []
        for name, ex in found.items():
            err, _ = evaluation.error_rows(held_out, items, tables.calibration.endpoint_abilities, s.extractor_sizes,
                                           s.repetitions, tables.seed, "extract", chosen, s.paper_mixing, ex)
            parts.append(pd.DataFrame(err).assign(extractor=name))
        t = pd.concat(parts, ignore_index=True)
        t = t[t["estimator"].isin([estimators.RANDOM, estimators.MP_IRT, estimators.GMP_IRT])]
        return t[["extractor", "subset_size", "repetition", "model", "estimator", "abs_error"]]

    return tables._cached("extractor-units", {"held_out": array_digest(held_out.astype(np.uint8)), "chosen": chosen,
                                              "units_code": code_version(extractor_units)}, compute)


def population_rows(items_by_size: dict, y_endpoints: np.ndarray, y: np.ndarray, positions: np.ndarray,
                    subset_size: int, repetitions: int, seed: int, chosen: dict[str, float]) -> pd.DataFrame:
    """population, estimator, subset_size, repetition, model, abs_error: the units of
    :func:`~scoring_lab.irt.evaluation.population_size_table` (same subsets, stream "fig3"), before
    their mean: ``items_by_size`` {size: every item's parameters}, ``y_endpoints`` (n, I), ``y`` (e, k)
    on the items at ``positions`` (k,)."""
    rows = []
    for size, items_all in items_by_size.items():
        items, ends = items_all.subset(positions), fitted_abilities(y_endpoints, items_all)
        for r in range(repetitions):
            subset, _ = estimators.random_subset(len(items), min(subset_size, len(items)),
                                                 evaluation.subset_seed(seed, "fig3", subset_size, r))
            for m, row in enumerate(y):
                est, _ = estimators.subset_estimates(row[subset], subset, items, ends, None, sorted(set(chosen.values())))
                rows += [{"population": size, "estimator": name, "subset_size": subset_size, "repetition": r,
                          "model": m, "abs_error": abs(v - row.mean())}
                         for (name, c), v in est.items() if c is None or c == chosen.get(name)]
    return pd.DataFrame(rows)


def population_units(tables: EvaluationTables, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
    """:func:`population_rows` of the study (the IRT refitted at the chosen dimension on each population
    size, as the chapter's population table; the fits come from the cache), cached."""
    def compute():
        s = tables.settings
        items_by_size, y_endpoints = tables.refits_by_population_size()
        return population_rows(items_by_size, y_endpoints, held_out, tables.eval_pos, min(s.subset_sizes),
                               s.repetitions, tables.seed, chosen)

    return tables._cached("population-units", {"held_out": array_digest(held_out.astype(np.uint8)), "chosen": chosen,
                                               "units_code": code_version(population_units, population_rows)},
                          compute)
