"""Layer-wise merge coefficients (the paper's future work, AdaMerging's layer-wise form): per task and
per layer, fitted on each merged group's validation responses from the task-arithmetic scaling chosen
there (:mod:`scoring_lab.merging.adamerging`), cached, with what the fit did."""
from __future__ import annotations

import json

import pandas as pd

from ..merging import adamerging
from ..merging.evaluation import OWN, Merge, MergeEvaluator
from ..models.cache import code_version
from ..models.per_task import split_fingerprint
from ..study_steps import TimedSteps
from . import merge_plans
from .merges import Merges
from .protocol import StudySetup

LAYERWISE_KIND = "layerwise-merge"


class LayerwiseFit(TimedSteps):
    """Each merged group's fitted layer-wise coefficients, fitted (or read from the cache) once per run."""

    def __init__(self, setup: StudySetup, merges: Merges):
        self.setup, self.merges = setup, merges
        self.timing, self._memo = setup.timing, {}

    def fit(self, group: tuple[str, ...]) -> tuple[Merge, pd.DataFrame]:
        """(the task-arithmetic merge with per-task, per-layer coefficients for ``group``, the fit's history),
        fitted on validation responses starting from the task-arithmetic scaling chosen on validation."""
        setup = self.setup
        s = setup.settings

        def fit():
            start = self.merges.tuned_merge(group, "task_arithmetic")[0].scaling
            inputs = {"group": [setup.evaluator.scorers[t].key for t in group], "start": start,
                      "steps": s.layerwise_steps, "lr": s.layerwise_lr, "batch": s.layerwise_batch,
                      "seed": setup.seed, "val": [split_fingerprint(setup.tasks[t].val) for t in group],
                      "code": code_version(adamerging, MergeEvaluator)}

            def produce(folder):
                merge, history = adamerging.fit_layer_coefficients(setup.evaluator, group, start, s.layerwise_steps,
                                                                   s.layerwise_lr, s.layerwise_batch, setup.seed,
                                                                   setup.progress)
                (folder / "coefficients.json").write_text(json.dumps(merge.coefficients))
                history.to_csv(folder / "history.csv", index=False)

            def load(art):
                coefficients = tuple((t, tuple((p, c) for p, c in cs))
                                     for t, cs in json.loads(art.file("coefficients.json").read_text()))
                return (Merge("task_arithmetic", scaling=1.0, coefficients=coefficients),
                        pd.read_csv(art.file("history.csv")))

            value, _ = self._timed("merging: layer-wise coefficients", lambda: setup.cache.get_or_compute(
                LAYERWISE_KIND, inputs, produce, load))
            return value
        return self._once(tuple(group), fit)

    def merges_of(self, plan: merge_plans.Plan) -> dict[tuple[str, ...], Merge]:
        """{group: its fitted merge} for every group of ``plan`` (a singleton keeps its own scorer)."""
        return {g: (self.fit(g)[0] if len(g) > 1 else Merge(OWN)) for g in plan}

    def table(self) -> pd.DataFrame:
        """The coefficients fitted so far: group, task, layer, start (the task-arithmetic scaling), coefficient."""
        rows = []
        for group, (merge, _) in self._memo.items():
            start = self.merges.tuned_merge(group, "task_arithmetic")[0].scaling
            for task, coefficients in merge.coefficients:
                for prefix, c in coefficients:
                    rows.append({"group": ", ".join(group), "task": task, "layer": prefix.rstrip("."),
                                 "start": start, "coefficient": c})
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """Per group fitted so far: the validation headline metric at the start (task arithmetic, tuned)
        and after the fit, and the fit's loss over its first and last three steps."""
        main = self.setup.main
        rows = []
        for group, (merge, history) in list(self._memo.items()):
            start = self.merges.tuned_merge(group, "task_arithmetic")[0]
            rows.append({"group": ", ".join(group), f"val_{main} (start)": self.merges.val_score(group, start),
                         f"val_{main} (fitted)": self.merges.val_score(group, merge),
                         "loss (first 3 steps)": float(history["loss"].head(3).mean()),
                         "loss (last 3 steps)": float(history["loss"].tail(3).mean())})
        return pd.DataFrame(rows)
