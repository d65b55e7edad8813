"""Scoring on a split: a model's probabilities, the metrics of its decisions (at the paper's threshold
for rubric dimensions, the most probable class for a score; a multi-task model's or a per-task scorer's), and which experts a model's gate uses per task, with whether tasks
of one planted family route alike."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from ..metrics import multiclass_report, multilabel_report
from ..models.cache import code_version
from ..models.per_task import report, split_fingerprint
from ..study_steps import TimedSteps
from . import multitask
from .inputs import Inputs
from .protocol import INDIVIDUAL, THRESHOLD, StudySetup, decide
from .store import FittedModel

PROBA_KIND = "multitask-proba"
REPORT_KIND = "multitask-report"
USAGE_KIND = "expert-usage"


def task_report(task, decisions: np.ndarray, split: str) -> dict:
    """The chapter's metrics of ``decisions`` on a split of ``task``: the per-task scorers' report, with a
    score's quadratic weighted kappa as the chapter's ``kappa`` (:data:`~.protocol.MULTICLASS_METRICS`)."""
    r = report(task, decisions, split)
    if task.kind == "multiclass":
        r = {"kappa": r.pop("qwk"), **r}
    return r


def usage_specialisation(usage: pd.DataFrame, families: dict[str, str], permutations: int = 2000,
                         seed: int = 0) -> dict:
    """Do tasks of one planted family route alike? Mean Jensen-Shannon distance between the expert-usage
    rows (tasks x experts, rows summing to 1) of same-family pairs and of other pairs, and the share of
    seeded permutations of the family labels whose within-family mean is at most the observed one."""
    tasks = [t for t in usage.index if t in families]
    rows = usage.loc[tasks].to_numpy(dtype=float)
    labels = np.array([families[t] for t in tasks])
    n = len(tasks)
    d = np.array([[jensenshannon(rows[i], rows[j], base=2) for j in range(n)] for i in range(n)])
    iu = np.triu_indices(n, 1)

    def within_mean(lab):
        same = lab[iu[0]] == lab[iu[1]]
        return float(d[iu][same].mean()) if same.any() else float("nan")

    same = labels[iu[0]] == labels[iu[1]]
    observed = within_mean(labels)
    rng = np.random.default_rng(seed)
    null = np.array([within_mean(rng.permutation(labels)) for _ in range(permutations)]) if same.any() else []
    return {"within_family_js": observed, "between_family_js": float(d[iu][~same].mean()) if (~same).any() else
            float("nan"), "same_family_pairs": int(same.sum()), "pairs": int(len(same)),
            "p_value": float((np.sum(null <= observed + 1e-12) + 1) / (len(null) + 1)) if len(null) else float("nan")}


class Evaluation(TimedSteps):
    """Scores a study's models and per-task scorers on its tasks' splits, each score cached."""

    def __init__(self, setup: StudySetup, inputs: Inputs):
        self.setup, self.inputs = setup, inputs
        self.timing, self._memo = setup.timing, {}

    def proba(self, fitted: FittedModel, task: str, split: str) -> np.ndarray:
        """(n, L) probabilities of ``task`` on a split (over the states the model reads), cached by model
        and split content."""
        s = self.setup.tasks[task].splits()[split]
        inputs = {"model": fitted.key, "task": task, "split": split_fingerprint(s)}

        def produce(folder: Path):
            np.save(folder / "proba.npy", multitask.predict_proba(
                fitted.model, self.inputs.states(task, split, self.setup.reads_pooled(fitted.settings)), task))

        return self._once(("proba", fitted.key, task, split), lambda: self.setup.cache.get_or_compute(
            PROBA_KIND, inputs, produce, lambda art: np.load(art.file("proba.npy")))[0])

    def metrics(self, who: str, task: str, split: str, proba) -> dict:
        """The metrics of ``proba()`` ((n, L)) on a split of ``task`` (decided at threshold 0.5, or the most
        probable class), cached by ``who`` made them (a model's or a scorer's key) and the split's content."""
        t = self.setup.tasks[task]
        s = t.splits()[split]
        inputs = {"who": who, "task": task, "split": split_fingerprint(s), "threshold": THRESHOLD,
                  "code": code_version(report, multilabel_report)}
        if t.kind != "multilabel":
            inputs = {**inputs, "threshold": "argmax", "code": code_version(report, multiclass_report, task_report)}

        def produce(folder: Path):
            r = task_report(t, decide(proba(), t.kind), split)
            (folder / "report.json").write_text(json.dumps(r))

        return self._once(("report", who, task, split), lambda: self.setup.cache.get_or_compute(
            REPORT_KIND, inputs, produce, lambda art: json.loads(art.file("report.json").read_text()))[0])

    def evaluate(self, fitted: FittedModel, tasks: list[str] | None = None, split: str = "test",
                 method: str | None = None) -> pd.DataFrame:
        """Per task: the run's metrics (:func:`~.protocol.columns_of`) and n_test on ``split``."""
        return pd.DataFrame([{"method": method or fitted.name, "task": t,
                              **self.metrics(fitted.key, t, split, lambda t=t: self.proba(fitted, t, split))}
                             for t in tasks or fitted.tasks])

    def individual(self, tasks: list[str], split: str = "test") -> pd.DataFrame:
        """The per-task scorers' metrics (the paper's 'Individual')."""
        s = self.setup
        return pd.DataFrame([{"method": INDIVIDUAL, "task": t, **self.metrics(
            s.scorers[t].key, t, split, lambda t=t: s.scorers[t].predict_proba(s.tasks[t].splits()[split]))}
            for t in tasks])

    def validation_scores(self, fitted: FittedModel) -> dict:
        """The mean validation metrics over the training tasks and the best validation loss."""
        v = self.evaluate(fitted, split="val")
        return {**{f"val_{m}": float(v[m].mean()) for m in self.setup.metrics},
                "val_loss": float(fitted.history["val_loss"].min()) if len(fitted.history) else float("nan")}

    def expert_usage(self, fitted: FittedModel, split: str = "test") -> pd.DataFrame:
        """(tasks x experts) the mean gate weight of each expert over each task's ``split`` responses
        (cached by model and split content)."""
        s = self.setup

        def usage(t: str) -> np.ndarray:
            inputs = {"model": fitted.key, "task": t, "split": split_fingerprint(s.tasks[t].splits()[split]),
                      "code": code_version(multitask)}

            def produce(folder: Path):
                np.save(folder / "usage.npy", multitask.expert_usage(
                    fitted.model, self.inputs.states(t, split, s.reads_pooled(fitted.settings)), t))
            return s.cache.get_or_compute(USAGE_KIND, inputs, produce, lambda a: np.load(a.file("usage.npy")))[0]

        rows = {t: usage(t) for t in fitted.tasks}
        table = pd.DataFrame(rows).T
        table.columns = [f"expert {j + 1}" for j in range(table.shape[1])]
        table.index.name = "task"
        return table
