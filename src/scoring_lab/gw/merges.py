"""Merging a plan's groups and a plan's test predictions (a task on its own keeps its scorer).

TIES, the paper's merge, uses one setting for every group of every plan: the one chosen on the pairwise
merges' validation responses (:mod:`.pairwise`), so plans differ only in how they group the tasks. The GW
plan's ablations (task arithmetic, plain averaging) choose their setting per group on its validation
responses, as before."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..merging.evaluation import OWN, Merge
from ..study_steps import TimedSteps
from . import merge_plans
from .pairwise import PairwiseMerges
from .protocol import StudySetup


class Merges(TimedSteps):
    """Merges of groups of tasks: TIES at the chapter's one setting (``pairwise.chosen()``), the other
    methods tuned on validation once per group."""

    def __init__(self, setup: StudySetup, pairwise: PairwiseMerges):
        self.setup, self.pairwise = setup, pairwise
        self.timing, self._memo = setup.timing, {}

    def grid(self, method: str) -> list[Merge]:
        """The settings tried for ``method`` (ties, task_arithmetic, average), from the profile's ``gw``."""
        s = self.setup.settings
        if method == "ties":
            return [Merge("ties", d, c) for d in s.ties_density for c in s.ties_scaling]
        if method == "task_arithmetic":
            return [Merge("task_arithmetic", scaling=c) for c in s.arithmetic_scaling]
        if method == "average":
            return [Merge("average")]
        raise ValueError(f"unknown merge method {method!r}")

    def val_score(self, group: tuple[str, ...], merge: Merge) -> float:
        """The validation-size-weighted mean of the headline metric over the group's tasks."""
        s = self.setup
        reports = self._timed("merging: validation grid", lambda: s.evaluator.reports(group, merge, "val"))
        weights = [len(s.tasks[t].val) for t in group]
        return float(np.average([reports[t][s.main] for t in group], weights=weights))

    def tuned_merge(self, group: tuple[str, ...], method: str = "ties") -> tuple[Merge, pd.DataFrame]:
        """(the grid's best merge on validation, the grid: group, method, density, scaling, val score, chosen)."""
        main = self.setup.main

        def tune():
            rows = [{"group": ", ".join(group), "method": method, "density": m.density, "scaling": m.scaling,
                     "merge": m, f"val_{main}": self.val_score(group, m)} for m in self.grid(method)]
            table = pd.DataFrame(rows)
            best = int(table[f"val_{main}"].to_numpy().argmax())   # ties: the first in grid order
            table["chosen"] = np.arange(len(table)) == best
            return table.loc[best, "merge"], table.drop(columns="merge")
        return self._once((tuple(group), method), tune)

    def merges_of(self, plan: merge_plans.Plan, method: str = "ties") -> dict[tuple[str, ...], Merge]:
        """{group: its merge} for every group of ``plan`` (a singleton keeps its own scorer): TIES at the
        chapter's setting, another method tuned on the group's validation responses."""
        def merge(g):
            if len(g) == 1:
                return Merge(OWN)
            return self.pairwise.chosen() if method == "ties" else self.tuned_merge(g, method)[0]
        return {g: merge(g) for g in plan}

    def plan_predictions(self, plan: merge_plans.Plan, method: str = "ties",
                         merges: dict | None = None) -> dict[str, np.ndarray]:
        """{task: (n_test, ...) test predictions} under ``plan``: merged groups through their merge (tuned
        with ``method``, or as ``merges`` gives them), others their own scorer."""
        merges = merges or self.merges_of(plan, method)
        out = {}
        for g, m in merges.items():
            out.update(self._timed("merging: test evaluation",
                                   lambda g=g, m=m: self.setup.evaluator.predictions(g, m)))
        return out

    def tuning_table(self) -> pd.DataFrame:
        """Every validation grid run so far, in the order they ran: group, method, density, scaling, val
        score, chosen."""
        parts = [grid for _, grid in self._memo.values()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
