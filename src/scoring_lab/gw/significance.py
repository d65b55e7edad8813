"""Paired tests between plans (the paper's Table 4): paired t-tests with the Wilcoxon signed-rank test
beside them, over tasks and over task-labels, and the number of paired units a published t and p imply."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .protocol import DESCRIPTIONS, FAMILIES, GW_PLAN, HUMAN, LLM, PREMERGE

# the paper's three comparisons, then GW against the description plan, the families and pre-merge
TEST_PAIRS = [(GW_PLAN, HUMAN), (GW_PLAN, LLM), (HUMAN, LLM), (GW_PLAN, DESCRIPTIONS), (GW_PLAN, FAMILIES),
              (GW_PLAN, PREMERGE)]


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict:
    """n, mean_difference, t and p of the paired t-test (scipy) of (n,) ``a`` against (n,) ``b``, and the
    Wilcoxon signed-rank p (zero differences dropped, scipy's default); NaN where a test is undefined
    (no non-zero difference)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a - b
    out = {"n": int(len(diff)), "mean_difference": float(diff.mean()) if len(diff) else float("nan"),
           "t": float("nan"), "p": float("nan"), "wilcoxon_p": float("nan")}
    if len(diff) >= 2 and np.ptp(diff) > 0:
        res = stats.ttest_rel(a, b)
        out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    elif len(diff) >= 2 and diff[0] != 0:   # every difference the same, non-zero: no variance, t undefined
        out["p"] = 0.0
    if (diff != 0).sum() >= 1:
        out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
    return out


def implied_df(t: float, p: float, max_df: int = 500) -> int:
    """The degrees of freedom whose two-sided t-test turns ``t`` into ``p`` most closely (what a published
    t and p imply about the number of paired units: df + 1)."""
    dfs = np.arange(1, max_df + 1)
    return int(dfs[np.argmin(np.abs(2 * stats.t.sf(abs(t), dfs) - p))])


def ttests(performance: pd.DataFrame, labels: pd.DataFrame, metrics: Sequence[str],
           pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Paired t-tests with Wilcoxon signed-rank beside them: metric, method_a, method_b, unit, n,
    mean_difference, t, p, wilcoxon_p, for each of ``pairs`` (default :data:`TEST_PAIRS`) whose methods
    ``performance`` has. Unit ``task`` (one pair per task, each of ``metrics``) and, when ``labels`` has
    rows (multi-label tasks), ``task-label`` (one pair per rubric dimension: its F1 and accuracy)."""
    present = set(performance["method"])
    pairs = [p for p in (pairs or TEST_PAIRS) if set(p) <= present]
    rows = []
    for a, b in pairs:
        pa = performance[performance["method"] == a].set_index("task")
        pb = performance[performance["method"] == b].set_index("task").reindex(pa.index)
        for metric in metrics:
            rows.append({"metric": metric, "method_a": a, "method_b": b, "unit": "task",
                         **paired_tests(pa[metric].to_numpy(), pb[metric].to_numpy())})
        if len(labels):
            la = labels[labels["method"] == a].set_index(["task", "label"])
            lb = labels[labels["method"] == b].set_index(["task", "label"]).reindex(la.index)
            for metric in ("f1", "accuracy"):
                rows.append({"metric": f"label_{metric}", "method_a": a, "method_b": b, "unit": "task-label",
                             **paired_tests(la[metric].to_numpy(), lb[metric].to_numpy())})
    return pd.DataFrame(rows)
