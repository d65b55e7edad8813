"""Every pair of tasks merged (the premise of GW-SMM, measured): what each pair loses on validation when its
two scorers share one TIES-merged encoder, and the one TIES setting every plan of the chapter is merged with.

For each pair (a, b) and each TIES setting of the profile's grid (``gw.ties_density`` x ``gw.ties_scaling``),
the merged encoder runs over both tasks' validation responses; the pair's **merge loss** is the
validation-size-weighted headline metric of the two own scorers minus that of the merged pair (positive:
merging lost that much). The setting with the smallest mean loss over all pairs is the chapter's TIES
setting: chosen on validation, once, and then used for every plan, so plans differ only in how they group
the tasks (a setting tuned per group would let a plan's score depend on how many groups it tuned).
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..merging.evaluation import OWN, Merge
from ..paired_metrics import task_metrics
from ..study_steps import TimedSteps
from .protocol import StudySetup

PAIR_COLUMNS = ["task_a", "task_b", "density", "scaling", "val_own", "val_merged", "loss"]


def split_metrics(task, pred: np.ndarray, split: str, names) -> dict[str, float]:
    """{metric: value} of ``names`` and n_test for predictions on one split of ``task``
    (:func:`scoring_lab.paired_metrics.task_metrics`)."""
    s = task.splits()[split]
    truth = s.labels if task.kind == "multilabel" else s.scores
    return task_metrics(task.kind, truth, pred, names, task.n_classes)


class PairwiseMerges(TimedSteps):
    """The 36 (T(T-1)/2) pairwise TIES merges on validation, made once per run."""

    def __init__(self, setup: StudySetup):
        self.setup = setup
        self.timing, self._memo = setup.timing, {}

    def settings(self) -> list[Merge]:
        """The TIES settings tried: the profile's density x scaling grid, in its order."""
        s = self.setup.settings
        return [Merge("ties", d, c) for d in s.ties_density for c in s.ties_scaling]

    def own_scores(self) -> dict[str, float]:
        """{task: its own scorer's headline metric on its validation responses}."""
        s = self.setup

        def make():
            return {t: self._score(t, s.evaluator.predictions((t,), Merge(OWN), "val")[t]) for t in s.names}
        return self._once("own", lambda: self._timed("pairwise merges (validation)", make))

    def _score(self, task: str, pred: np.ndarray) -> float:
        """The headline metric of ``pred`` on the task's validation responses."""
        return float(split_metrics(self.setup.tasks[task], pred, "val", [self.setup.main])[self.setup.main])

    def grid(self) -> pd.DataFrame:
        """One row per pair and TIES setting: task_a, task_b, density, scaling, val_own, val_merged, loss
        (validation, headline metric, each pair's two tasks weighted by their validation sizes)."""
        return self._once("grid", lambda: self._timed("pairwise merges (validation)", self._grid))

    def _grid(self) -> pd.DataFrame:
        s = self.setup
        own = self.own_scores()
        rows = []
        for a, b in itertools.combinations(s.names, 2):
            w = np.array([len(s.tasks[a].val), len(s.tasks[b].val)], dtype=float)
            base = float(np.average([own[a], own[b]], weights=w))
            for m in self.settings():
                p = s.evaluator.predictions((a, b), m, "val")
                merged = float(np.average([self._score(a, p[a]), self._score(b, p[b])], weights=w))
                rows.append({"task_a": a, "task_b": b, "density": m.density, "scaling": m.scaling,
                             "val_own": base, "val_merged": merged, "loss": base - merged})
        return pd.DataFrame(rows, columns=PAIR_COLUMNS)

    def choice_table(self) -> pd.DataFrame:
        """Per TIES setting: density, scaling, mean_loss and worst_loss over the pairs, chosen (the smallest
        mean loss; ties: the first in grid order)."""
        return self._once("choice", self._choice_table)

    def _choice_table(self) -> pd.DataFrame:
        g = self.grid()
        t = g.groupby(["density", "scaling"], sort=False, as_index=False)["loss"].agg(
            mean_loss="mean", worst_loss="max")
        t["chosen"] = np.arange(len(t)) == int(t["mean_loss"].to_numpy().argmin())
        return t

    def chosen(self) -> Merge:
        """The chapter's TIES setting (:meth:`choice_table`)."""
        row = self.choice_table().query("chosen").iloc[0]
        return Merge("ties", float(row["density"]), float(row["scaling"]))

    def losses(self) -> pd.DataFrame:
        """(T, T) merge loss of every pair at the chosen setting, symmetric, 0 on the diagonal."""
        s, m = self.setup, self.chosen()
        g = self.grid()
        g = g[(g["density"] == m.density) & (g["scaling"] == m.scaling)]
        out = pd.DataFrame(0.0, index=s.names, columns=s.names)
        for r in g.itertuples():
            out.loc[r.task_a, r.task_b] = out.loc[r.task_b, r.task_a] = r.loss
        return out
