"""Which lambda and temperature the KD student uses: chosen on validation, never on test.

The paper fixes lambda in its 0.02-0.08 range and uses no temperature. Here every lambda > 0 of
``kd.lambdas`` at every temperature of ``kd.temperatures`` (Hinton's tau; 1 is the paper's loss)
trains a KD student over the sweep's seeds on the sweep set (:meth:`KDPlan.distillation_candidates`),
learning from the teacher's in-sample targets; the pair whose students reach the highest mean
validation accuracy (each student's at the epoch early stopping kept) is the KD student's on every
set. Ties go to the smaller lambda, then the smaller tau. The candidates are cached as the students
they are, and the sweep's table and figure show them all.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .students import StudentsAndANN

COLUMNS = ["set", "lam", "temperature", "val_accuracy_mean", "val_accuracy_sd", "seeds", "chosen"]


def choose(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (lam, temperature) of ``runs`` (one row per student: set, lam, temperature, seed,
    val_accuracy), in ascending lambda then tau: :data:`COLUMNS`, ``chosen`` True on the pair of highest
    mean validation accuracy (ties: the smaller lambda, then the smaller tau)."""
    if runs.empty:
        raise ValueError("no KD candidate students to choose lambda and temperature from")
    out = runs.groupby(["lam", "temperature"]).agg(
        set=("set", "first"), val_accuracy_mean=("val_accuracy", "mean"), val_accuracy_sd=("val_accuracy", "std"),
        seeds=("seed", "nunique")).reset_index().sort_values(["lam", "temperature"], kind="stable")
    score = out["val_accuracy_mean"].round(9)   # equal means tie, whatever their last bits
    if score.isna().all():
        raise ValueError("no KD candidate has a validation accuracy")
    out["chosen"] = False
    out.loc[score[score == score.max()].index[0], "chosen"] = True
    return out[COLUMNS].reset_index(drop=True)


def chosen_setting(table: pd.DataFrame) -> tuple[float, float]:
    """(lambda, temperature) of :func:`choose`'s chosen row."""
    row = table[table["chosen"]]
    if len(row) != 1:
        raise ValueError(f"a distillation choice needs exactly one chosen row, got {len(row)}")
    return float(row["lam"].iloc[0]), float(row["temperature"].iloc[0])


def choice(models: "StudentsAndANN", name: str | None = None) -> pd.DataFrame:
    """:func:`choose` over the candidates of set ``name`` (default the plan's sweep set), trained side by
    side where the cache lacks them."""
    plan = models.plan
    name = name or plan.sweep_set
    candidates = plan.distillation_candidates(name, models.min_count(name))
    models.train_students(name, candidates)
    rows = [{"set": name, "lam": r.lam, "temperature": r.temperature, "seed": r.seed,
             "val_accuracy": models.cached_student(name, r).info["val_accuracy"]} for r in candidates]
    return choose(pd.DataFrame(rows))
