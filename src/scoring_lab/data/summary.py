"""Tables that describe a set of tasks: sizes, prevalences, rubrics, examples."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .task import Task


def summary_table(tasks: dict[str, Task]) -> pd.DataFrame:
    """One row per task: name, kind, n_labels (labels or classes), split sizes, train prevalences.

    ``prevalence`` is a list: per label (multi-label) or per class (multi-class), on train.
    """
    rows = []
    for name, t in tasks.items():
        rows.append({
            "name": name,
            "kind": t.kind,
            "n_labels": t.n_labels,
            "n_train": len(t.train),
            "n_val": len(t.val),
            "n_test": len(t.test),
            "label_names": list(t.label_names) if t.kind == "multilabel" else [str(k) for k in range(t.n_labels)],
            "prevalence": [round(float(x), 4) for x in t.prevalence("train")],
        })
    return pd.DataFrame(rows)


def prevalence_matrix(tasks: dict[str, Task], split: str = "train") -> pd.DataFrame:
    """(tasks x max labels) share of responses holding each label; NaN where a task has fewer labels.

    Columns are label positions named after the first task's label names when all
    tasks share a naming scheme (E1, E2, ...), else ``label 1``, ``label 2``, ...
    """
    prev = {name: t.prevalence(split) for name, t in tasks.items()}
    width = max((len(p) for p in prev.values()), default=0)
    mat = np.full((len(prev), width), np.nan)
    for i, p in enumerate(prev.values()):
        mat[i, : len(p)] = p
    longest = max(tasks.values(), key=lambda t: len(t.prevalence(split)), default=None)
    names = list(longest.label_names) if longest is not None and longest.kind == "multilabel" else []
    if len(names) != width:
        names = [f"label {j + 1}" for j in range(width)]
    return pd.DataFrame(mat, index=list(prev), columns=names)


def rubric_table(task: Task) -> pd.DataFrame:
    """The task's rubric (id, perspective, description) when it has one, else its label names."""
    rubric = task.meta.get("rubric")
    if rubric:
        return pd.DataFrame(rubric)[["id", "perspective", "description"]]
    return pd.DataFrame({"id": task.label_names})


def rubrics_table(tasks: dict[str, Task]) -> pd.DataFrame:
    """Every task's rubric in one table, with the task's name and (when known) its question."""
    parts = []
    for name, t in tasks.items():
        r = rubric_table(t)
        r.insert(0, "task", name)
        if t.meta.get("question"):
            r["question"] = [t.meta["question"]] + [""] * (len(r) - 1)
        parts.append(r)
    return pd.concat(parts, ignore_index=True)


def example_responses(task: Task, n: int = 3, split: str = "test", seed: int = 0) -> pd.DataFrame:
    """``n`` responses drawn (seeded) from one split, with their ids, labels and holistic score."""
    s = task.splits()[split]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(s), size=min(n, len(s)), replace=False))
    rows = []
    for i in pick:
        row = {"id": s.ids[i], "response": s.texts[i]}
        if s.labels is not None:
            row["labels"] = ", ".join(nm for nm, v in zip(task.label_names, s.labels[i]) if v) or "(none)"
        if s.scores is not None:
            row["score"] = int(s.scores[i])
        rows.append(row)
    return pd.DataFrame(rows)


def class_share_table(tasks: dict[str, Task], split: str = "train") -> pd.DataFrame:
    """(tasks x classes) share of responses per holistic score; tasks without scores are left out."""
    rows = {}
    for name, t in tasks.items():
        s = t.splits()[split]
        if s.scores is not None and t.n_classes:
            rows[name] = np.bincount(s.scores, minlength=t.n_classes) / max(len(s), 1)
    width = max((len(v) for v in rows.values()), default=0)
    return pd.DataFrame({k: list(v) + [np.nan] * (width - len(v)) for k, v in rows.items()},
                        index=[str(c) for c in range(width)]).T


def examples_table(tasks: dict[str, Task], n: int = 3, split: str = "test", seed: int = 0) -> pd.DataFrame:
    """:func:`example_responses` of every task in one table, the task's name first."""
    parts = [example_responses(t, n=n, split=split, seed=seed).assign(task=name) for name, t in tasks.items()]
    out = pd.concat(parts, ignore_index=True)
    return out[["task"] + [c for c in out.columns if c != "task"]]
