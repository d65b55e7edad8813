"""Small real-data-shaped fixtures, written by the tests (nothing committed): the ASAP-SAS layout
(multi-class holistic scores), the PASTA layout (multi-label rubrics; and three tasks with one 0/1 label
each) and a plain scored CSV.

The responses come from the synthetic generator (two tasks, 5% scale), so the texts are realistic
and the scores follow them; only the file layouts are those of the real sources.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from scoring_lab.data.synthetic import generate_benchmark

TASKS = ("gas_filled_balloons", "natural_sugar")
ASAP_SETS = {"gas_filled_balloons": 1, "natural_sugar": 3}   # set 1 is scored 0-3, set 3 is scored 0-2


# three generated tasks under names none of the papers use (a source that shares nothing with them)
THREE_TASKS = {"dry_ice_model": "ice_melting", "gas_filled_balloons": "balloon_gas", "natural_sugar": "sugar_source"}


def _tasks(names=TASKS):
    return generate_benchmark(seed=3, scale=0.05, tasks=list(names))


def _train_rows(task):
    """(texts, labels, scores) of train and val together: the real files have no validation split."""
    texts = task.train.texts + task.val.texts
    return texts, np.vstack([task.train.labels, task.val.labels]), np.concatenate([task.train.scores,
                                                                                    task.val.scores])


def write_pasta(folder: Path, names=TASKS, labels_kept: int | None = None, rename: dict | None = None) -> Path:
    """``{task}_train.csv`` / ``{task}_test.csv``: text, one 0/1 column per rubric dimension (the first
    ``labels_kept`` only, when given), Group; a task's file is named by ``rename`` when it names it."""
    folder.mkdir(parents=True, exist_ok=True)
    for generated, task in _tasks(names).items():
        name = (rename or {}).get(generated, generated)
        texts, labels, _ = _train_rows(task)
        keep = slice(None) if labels_kept is None else slice(0, labels_kept)
        labels, test_labels, label_names = labels[:, keep], task.test.labels[:, keep], task.label_names[keep]
        for part, (t, y) in {"train": (texts, labels), "test": (task.test.texts, test_labels)}.items():
            with open(folder / f"{name}_{part}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["Sentence", *label_names, "Group"])
                for text, row in zip(t, y):
                    w.writerow([text, *map(int, row), "g1"])
    return folder


def _one_line(text: str) -> str:
    """A TSV field: no tab or line break (some synthetic responses span lines)."""
    return " ".join(text.split()) or "-"


def _asap_score(score: int, essay_set: int) -> int:
    return min(int(score), 2) if essay_set == 3 else int(score)


def write_asap(folder: Path) -> Path:
    """ASAP-SAS: ``train_rel_2.tsv``, ``public_leaderboard_rel_2.tsv`` and its solution CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test, solution = [], [], []
    next_id = 1
    for name, task in _tasks().items():
        essay_set = ASAP_SETS[name]
        texts, _, scores = _train_rows(task)
        for text, score in zip(texts, scores):
            s = _asap_score(score, essay_set)
            train.append([str(next_id), str(essay_set), str(s), str(s), _one_line(text)])
            next_id += 1
        for text, score in zip(task.test.texts, task.test.scores):
            test.append([str(next_id), str(essay_set), _one_line(text)])
            solution.append([str(next_id), str(essay_set), "1", str(_asap_score(score, essay_set)), "Public"])
            next_id += 1
    with open(folder / "train_rel_2.tsv", "w", encoding="utf-8") as f:
        f.write("\t".join(["Id", "EssaySet", "Score1", "Score2", "EssayText"]) + "\n")
        f.writelines("\t".join(r) + "\n" for r in train)
    with open(folder / "public_leaderboard_rel_2.tsv", "w", encoding="utf-8") as f:
        f.write("\t".join(["Id", "EssaySet", "EssayText"]) + "\n")
        f.writelines("\t".join(r) + "\n" for r in test)
    with open(folder / "public_leaderboard_solution.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "essay_set", "essay_weight", "essay_score", "Usage"])
        w.writerows(solution)
    return folder


def write_scored_csv(path: Path) -> Path:
    """One plain table: id, task, split, response, score (the ``csv`` source's default columns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "task", "split", "response", "score"])
        for name, task in _tasks().items():
            for part, split in task.splits().items():
                for i, text, score in zip(split.ids, split.texts, split.scores):
                    w.writerow([f"{name}-{i}", name, part, text, int(score)])
    return path


def write_pasta_three_single(folder: Path) -> Path:
    """The PASTA layout with three tasks and one 0/1 label each (the first rubric dimension), named as no
    paper names its tasks."""
    return write_pasta(folder, list(THREE_TASKS), labels_kept=1, rename=THREE_TASKS)


#: shape -> (source, writer, whether the writer takes a folder (True) or a file path (False), kind, task names)
SHAPES = {
    "asap-sas": ("asap-sas", write_asap, True, "multiclass", ["asap_set_01", "asap_set_03"]),
    "pasta-csv": ("pasta-csv", write_pasta, True, "multilabel", sorted(TASKS)),
    "csv": ("csv", write_scored_csv, False, "multiclass", list(TASKS)),
    "pasta-three-single": ("pasta-csv", write_pasta_three_single, True, "multilabel", sorted(THREE_TASKS.values())),
}


def write_shape(shape: str, root: Path) -> tuple[str, Path]:
    """Write the fixture of ``shape`` under ``root``; returns (source, data_path)."""
    source, writer, is_folder, _, _ = SHAPES[shape]
    return source, writer(root / shape if is_folder else root / f"{shape}.csv")
