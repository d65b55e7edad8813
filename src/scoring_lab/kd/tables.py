"""The KD chapter's summary tables, from its per-seed results: the Table 2 analog (mean and sd over seeds)
and its mean ± sd view, Table 2 beside the paper's figures, and the out-of-fold comparison's summary (the
paired tests are :func:`scoring_lab.kd.claim_tests.gain_by_set`'s)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .plan import ANN, SMALL, TABLE_MODELS, TEACHER
from .results_over_seeds import METRICS
from ..data.task import Task


def table2(seed_results: pd.DataFrame, models=TABLE_MODELS) -> pd.DataFrame:
    """Per set and model: mean and sd over seeds of each metric the results have (accuracy, macro-F1,
    weighted F1, QWK: ``<metric>_mean``, ``<metric>_sd``), and the number of seeds."""
    g = seed_results.groupby(["set", "model"], sort=False)
    present = [m for m in METRICS if m in seed_results.columns]
    spread = {f"{m}_{name}": (m, how) for m in present for name, how in (("mean", "mean"), ("sd", "std"))}
    out = g.agg(**spread, seeds=("seed", "nunique"))
    out = out.reset_index()
    out["model"] = pd.Categorical(out["model"], categories=list(models), ordered=True)
    return out.sort_values(["set", "model"], key=lambda c: c.map({s: i for i, s in enumerate(
        dict.fromkeys(seed_results["set"]))}) if c.name == "set" else c, kind="stable").reset_index(drop=True)


def mean_sd(table: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Sets as rows, models as columns, cells ``mean ± sd`` (sd left out for a single seed; ``not trained``
    where the profile trains no such model on the set)."""
    def cell(r):
        sd = r[f"{metric}_sd"]
        return f"{r[f'{metric}_mean']:.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}")
    t = table.assign(cell=table.apply(cell, axis=1))
    wide = t.pivot(index="set", columns="model", values="cell")
    order = list(dict.fromkeys(table["set"]))
    wide = wide.reindex(order)[[m for m in TABLE_MODELS if m in wide.columns]].fillna("not trained")
    return wide.rename_axis(None, axis=1).reset_index()


def beside_paper(table: pd.DataFrame, sets: dict[str, Task]) -> pd.DataFrame:
    """Per set and model: our mean test accuracy, macro-F1 and weighted F1 beside the paper's Table 2 figures
    for the data set whose role the set plays (``role``; empty where the paper has no such model)."""
    from .. import published

    theirs, _ = published.kd_table2()
    paper = theirs.pivot_table(index=["role", "model"], columns="metric", values="mean")
    rows = []
    for _, r in table.iterrows():
        role = sets[r["set"]].meta.get("role", "")
        key = (role, str(r["model"]))
        rows.append({"set": r["set"], "role": role, "model": str(r["model"]),
                     "accuracy (ours)": r["accuracy_mean"],
                     "accuracy (paper)": paper["accuracy"].get(key, np.nan),
                     "F1 (ours, macro)": r["macro_f1_mean"],
                     **({"F1 (ours, weighted)": r["weighted_f1_mean"]} if "weighted_f1_mean" in r else {}),
                     "F1 (paper)": paper["f1"].get(key, np.nan)})
    return pd.DataFrame(rows)


def baseline_accuracies(table: pd.DataFrame, name: str) -> dict[str, float]:
    """{model: mean test accuracy} of the teacher, small transformer and ANN on set ``name`` (Table 2 analog)."""
    by = table.set_index(["set", "model"])["accuracy_mean"]
    return {m: float(by.loc[(name, m)]) for m in (TEACHER, SMALL, ANN) if (name, m) in by.index}


def out_of_fold_summary(oof: pd.DataFrame) -> pd.DataFrame:
    """Per kind of teacher target: KD student test accuracy and macro-F1 (mean, sd over seeds), and how
    confident the targets are (mean max-probability) and how often they agree with the labels."""
    g = oof.groupby(["set", "targets"], sort=False)
    return g.agg(accuracy_mean=("accuracy", "mean"), accuracy_sd=("accuracy", "std"),
                 macro_f1_mean=("macro_f1", "mean"), target_confidence=("target_confidence", "first"),
                 target_agreement=("target_agreement", "first"), seeds=("seed", "nunique")).reset_index()
