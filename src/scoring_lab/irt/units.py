"""The per-unit table behind the IRT chapter's extractor claim: the extractors' absolute errors per
(held-out model, subset), where the chapter's own table keeps only their means.

A verdict on "random extraction is as good as clustering" compares two errors on the same units (the
same held-out merged model, the same repetition), so it needs every unit's error, not a mean. The
table is drawn exactly as :mod:`~scoring_lab.irt.evaluation` draws its own (same streams, seeds and
subsets: its means equal the chapter's table) and cached beside it (kind ``irt-table``) under their own names, so the chapter's cached steps are not touched.

Shapes: e held-out models, k reported items, n endpoints.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ..models.cache import array_digest, code_version
from . import estimators, evaluation
from .evaluation_tables import EvaluationTables


def extractor_units(tables: EvaluationTables, held_out: np.ndarray, chosen: dict[str, float]) -> pd.DataFrame:
    """extractor, subset_size, repetition, model, estimator, abs_error: every unit of the chapter's
    extractor table (random items, IRT and representation clustering) for the random mean, mp- and
    gmp-IRT, ``held_out`` (e, k) the held-out models' answers on the reported items, cached."""
    s, items = tables.settings, tables.calibration.items.subset(tables.eval_pos)

    def compute():
        found = {"random": None, **{n: partial(estimators.cluster_subset, f) for n, f in tables.features().items()}}
        parts = []
        for name, ex in found.items():
            err, _ = evaluation.error_rows(held_out, items, tables.held_out_endpoints(), s.extractor_sizes,
                                           s.repetitions, tables.seed, "extract", chosen, s.paper_mixing, ex,
                                           tables.calibration.prior)
            parts.append(pd.DataFrame(err).assign(extractor=name))
        t = pd.concat(parts, ignore_index=True)
        t = t[t["estimator"].isin([estimators.RANDOM, estimators.MP_IRT, estimators.GMP_IRT])]
        return t[["extractor", "subset_size", "repetition", "model", "estimator", "abs_error"]]

    return tables._cached("extractor-units", {"held_out": array_digest(held_out.astype(np.uint8)), "chosen": chosen,
                                              "units_code": code_version(extractor_units)}, compute)
