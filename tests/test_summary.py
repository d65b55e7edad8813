import numpy as np
import pytest

from scoring_lab.data import Split, Task
from scoring_lab.data.summary import class_share_table, examples_table, prevalence_matrix, rubrics_table, summary_table


def _task(name, labels, scores=None, n_classes=None):
    labels = np.asarray(labels)
    n = len(labels)
    s = Split(ids=[f"{name}-{i}" for i in range(n)], texts=[f"answer {i}" for i in range(n)], labels=labels,
              scores=scores)
    return Task(name=name, kind="multilabel", train=s, val=s.subset([0]), test=s.subset([1, 2]),
                label_names=[f"E{j + 1}" for j in range(labels.shape[1])], n_classes=n_classes,
                meta={"rubric": [{"id": f"E{j + 1}", "perspective": "DCI", "description": f"d{j}"}
                                 for j in range(labels.shape[1])], "question": "why?"})


TASKS = {
    "a": _task("a", [[1, 0], [1, 1], [0, 0], [1, 0]], scores=[1, 3, 0, 1], n_classes=4),
    "b": _task("b", [[1, 0, 1], [0, 0, 1], [0, 0, 0], [0, 1, 1]]),
}


def test_summary_table_rows():
    t = summary_table(TASKS)
    assert t["name"].tolist() == ["a", "b"]
    assert t["n_labels"].tolist() == [2, 3]
    assert t[["n_train", "n_val", "n_test"]].values.tolist() == [[4, 1, 2], [4, 1, 2]]
    assert t.loc[0, "prevalence"] == [0.75, 0.25]


def test_prevalence_matrix_pads_with_nan():
    m = prevalence_matrix(TASKS)
    assert list(m.columns) == ["E1", "E2", "E3"]
    assert m.loc["a"].tolist()[:2] == [0.75, 0.25] and np.isnan(m.loc["a", "E3"])
    assert m.loc["b"].tolist() == [0.25, 0.25, 0.75]


def test_rubrics_and_examples_tables():
    r = rubrics_table(TASKS)
    assert len(r) == 5 and r.columns[0] == "task"
    assert r["question"].tolist() == ["why?", "", "why?", "", ""]
    e = examples_table(TASKS, n=2, split="test", seed=0)
    assert e.columns[0] == "task" and len(e) == 4
    row = e[e["id"] == "a-1"].iloc[0]
    assert row["labels"] == "E1, E2" and row["score"] == 3


def test_class_shares_only_for_tasks_with_scores():
    c = class_share_table(TASKS)
    assert list(c.index) == ["a"]
    assert c.loc["a"].tolist() == pytest.approx([0.25, 0.5, 0.0, 0.25])
