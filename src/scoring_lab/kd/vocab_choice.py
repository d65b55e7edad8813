"""Which training words the student's vocabulary keeps: a count threshold chosen on validation.

A vocabulary that keeps every training word (``min_count = 1``) never trains ``<oov>``: every
training word has a row of its own, so ``<oov>`` occurs in training only in an empty response,
while unseen test words (the benchmark's held-out paraphrases and typos) all map to it and feed
its randomly initialised vector into the max-pool. With a threshold, a training word seen fewer
than ``min_count`` times is ``<oov>`` in training as it will be on new text, and ``<oov>`` learns
what an unknown word is worth. The vocabulary's cap stays what the parameter budget allows
(:func:`scoring_lab.kd.distill.vocabulary_size`); a threshold only ever leaves rows out.

For each set, the lambda = 0 students of every candidate threshold (``kd.vocab_min_counts``) over
the chapter's seeds train side by side and are cached as the students they are (the chosen
threshold's are the chapter's own lambda = 0 students); the threshold with the highest mean
validation accuracy (each student's at the epoch early stopping kept) is chosen, ties going to the
smaller threshold. A candidate that leaves the vocabulary as a smaller one does (a set whose
training words all reach it, or one with more words than the budget's rows, where the frequency cap
already decides) would train the very same students: it is not trained again, its row repeats the
smaller one's, and the tie goes to the smaller. The table is cached as an artifact of its own, so a
warm chapter loads no candidate student to know the choice.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from . import distill as kd_module
from .vocab import fit_vocabulary
from ..data.task import Task
from ..models.cache import code_version

if TYPE_CHECKING:
    from .students import StudentsAndANN

CHOICE_KIND = "kd-vocab-choice"
COLUMNS = ["set", "min_count", "vocab_size", "val_accuracy_mean", "val_accuracy_sd", "seeds", "chosen"]


def choose(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per set and candidate threshold from ``runs`` (one row per student: set, min_count, seed,
    val_accuracy, vocab_size): set, min_count, vocab_size, val_accuracy_mean, val_accuracy_sd, seeds,
    chosen (True on the threshold of highest mean validation accuracy per set; ties: the smaller)."""
    g = runs.groupby(["set", "min_count"], sort=False)
    out = g.agg(vocab_size=("vocab_size", "first"), val_accuracy_mean=("val_accuracy", "mean"),
                val_accuracy_sd=("val_accuracy", "std"), seeds=("seed", "nunique")).reset_index()
    out = out.sort_values(["set", "min_count"], key=lambda c: c.map({s: i for i, s in enumerate(
        dict.fromkeys(runs["set"]))}) if c.name == "set" else c, kind="stable").reset_index(drop=True)
    out["chosen"] = False
    for _, rows in out.groupby("set", sort=False):
        score = rows["val_accuracy_mean"].round(9)          # equal means tie, whatever their last bits
        if score.isna().all():
            raise ValueError(f"set {rows['set'].iloc[0]!r}: no candidate threshold has a validation accuracy")
        best = score.max()
        out.loc[rows.index[score == best].min(), "chosen"] = True   # rows are in ascending min_count
    return out[COLUMNS]


def chosen_min_count(table: pd.DataFrame, name: str | None = None) -> int:
    """The chosen threshold of :func:`choose`'s ``table`` (of set ``name`` where it holds several)."""
    rows = table if name is None else table[table["set"] == name]
    chosen = rows.loc[rows["chosen"].astype(bool), "min_count"]
    if len(chosen) != 1:
        raise ValueError(f"the vocabulary choice table has {len(chosen)} chosen thresholds"
                         f"{'' if name is None else f' for set {name!r}'}, expected 1")
    return int(chosen.iloc[0])


def same_vocabulary(task: Task, settings, min_counts) -> dict[int, int]:
    """{min_count: the smallest of ``min_counts`` whose vocabulary of ``task`` is the same} (itself where
    no smaller one's is)."""
    size = kd_module.vocabulary_size(task.n_classes, settings)
    first: dict[tuple, int] = {}
    return {m: first.setdefault(fit_vocabulary(task.train.texts, size, settings.max_words, m).tokens, m)
            for m in sorted(min_counts)}


def candidate_runs(models: "StudentsAndANN", name: str) -> pd.DataFrame:
    """One row per candidate student of set ``name`` (trained side by side where the cache lacks it; a
    candidate whose vocabulary a smaller one has reads that one's students): set, min_count, seed,
    val_accuracy, vocab_size."""
    requests = models.plan.vocabulary_candidates(name)
    same = same_vocabulary(models.sets[name], models.kd, {r.min_count for r in requests})
    models.train_students(name, [r for r in requests if same[r.min_count] == r.min_count])
    rows = []
    for r in requests:
        info = models.cached_student(name, replace(r, min_count=same[r.min_count])).info
        rows.append({"set": name, "min_count": r.min_count, "seed": r.seed, "val_accuracy": info["val_accuracy"],
                     "vocab_size": info["vocab_size"]})
    return pd.DataFrame(rows)


def choice(models: "StudentsAndANN", name: str) -> pd.DataFrame:
    """:func:`choose` on set ``name``'s candidate students, cached (keyed by the candidate students' own
    keys: the set's data, the student settings, the seeds and thresholds, the code)."""
    students = [models.cache.key(models.student_inputs(name, r)) for r in models.plan.vocabulary_candidates(name)]
    inputs = {"set": name, "students": students, "code": code_version(choose, candidate_runs, same_vocabulary)}

    def produce(folder: Path):
        runs = candidate_runs(models, name)
        runs.to_csv(folder / "runs.csv", index=False)
        choose(runs).to_csv(folder / "choice.csv", index=False)

    table, _ = models.cache.get_or_compute(CHOICE_KIND, inputs, produce,
                                           lambda art: pd.read_csv(art.file("choice.csv")))
    table["chosen"] = table["chosen"].astype(bool)
    return table


def choice_table(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Every set's :func:`choice`, one table (the chapter's)."""
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
