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


def paper_shape_check(tasks: dict[str, Task], numbering: pd.DataFrame) -> pd.DataFrame:
    """A paper's task table beside this run's tasks of the same names: per paper row ``number, task,
    n_labels, n_train, n_test`` (the paper's), ``ours_n_labels, ours_n_train, ours_n_test`` (train
    counts the validation split carved from it) and ``match``; tasks the run lacks show blanks."""
    rows = []
    for r in numbering.itertuples(index=False):
        t = tasks.get(r.task)
        ours = ({"ours_n_labels": t.n_labels, "ours_n_train": len(t.train) + len(t.val), "ours_n_test": len(t.test)}
                if t is not None else {"ours_n_labels": None, "ours_n_train": None, "ours_n_test": None})
        match = t is not None and (ours["ours_n_labels"], ours["ours_n_train"], ours["ours_n_test"]) == \
            (r.n_labels, r.n_train, r.n_test)
        rows.append({"number": r.number, "task": r.task, "n_labels": r.n_labels, "n_train": r.n_train,
                     "n_test": r.n_test, **ours, "match": bool(match)})
    return pd.DataFrame(rows)


def shape_claims(tasks: dict[str, Task], scale: float = 1.0) -> list:
    """Claims: the run's tasks have the label counts and split sizes of each paper's task table
    (GW-SMM Table 2, UniMoE Table 1). Not tested when the profile shrinks the data (``scale``
    below 1) or when the source has none of the papers' tasks."""
    from .. import claims, published

    tables = {"gw": "Table 2", "moe": "Table 1"}
    out = []
    for paper, where in tables.items():
        numbering, _ = published.task_numbering(paper)
        check = paper_shape_check(tasks, numbering)
        claim = f"Nine PASTA tasks with the label counts and train/test sizes of its {where}"
        paper_value = (f"{len(numbering)} tasks, {numbering['n_labels'].min()}-{numbering['n_labels'].max()} "
                       f"labels, {numbering['n_train'].min()}-{numbering['n_train'].max()} train, "
                       f"{numbering['n_test'].min()}-{numbering['n_test'].max()} test")
        present = int(check["ours_n_labels"].notna().sum())
        if present == 0:
            out.append(claims.not_tested(paper, claim, paper_value, "this data source has none of the papers' tasks"))
        elif scale != 1.0:
            out.append(claims.not_tested(paper, claim, paper_value,
                                         f"this profile shrinks every split to {scale:g} of the papers' sizes",
                                         basis="by construction" if all("family" in t.meta for t in tasks.values())
                                         else "measured"))
        else:
            n_ok = int(check["match"].sum())
            what = ("tasks matched by name through the paper's own numbering; train includes the validation split "
                    "carved from it")
            verdict = claims.verdict_share(n_ok, len(check))
            ours = f"{n_ok} of {len(check)} tasks match"
            if all("family" in t.meta for t in tasks.values()):
                out.append(claims.by_construction(paper, claim, paper_value, ours, verdict,
                                                  f"the synthetic benchmark is generated with these shapes; {what}",
                                                  test="exact comparison with the paper's table"))
            else:
                out.append(claims.Claim(paper, claim, paper_value, ours, verdict, what, n=f"{len(check)} tasks",
                                        test="exact comparison of label counts and split sizes with the paper's "
                                             "table (no sampling error)"))
    return out
