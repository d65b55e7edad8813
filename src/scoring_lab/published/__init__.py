"""Figures transcribed from the papers, for comparison tables labelled as the papers' own."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    return yaml.safe_load((resources.files(__name__) / f"{name}.yaml").read_text(encoding="utf-8"))


def individual_scorers() -> tuple[pd.DataFrame, str]:
    """(per-task table with columns task, kappa, macro_f1, micro_f1, per_label_accuracy; its source)."""
    d = _load("individual_scorers")["per_task"]
    return pd.DataFrame(d["rows"], columns=d["columns"]), d["source"]


def pre_merge_weighted_mean() -> tuple[dict, str]:
    """({metric: value} weighted over nine tasks; its source)."""
    d = _load("individual_scorers")["weighted_mean"]
    return dict(d["values"]), d["source"]
