"""Loader for ASAP-SAS, the Kaggle Automated Student Assessment Prize short-answer data.

Layout: a directory ``path`` holding three UTF-8 files (default names, first
existing one wins; each can be overridden by an argument)::

    train       train_rel_2.tsv | train.tsv
                TSV, header  Id  EssaySet  Score1  Score2  EssayText
    test        public_leaderboard_rel_2.tsv | public_leaderboard.tsv | test.tsv
                TSV, header  Id  EssaySet  EssayText
    solution    public_leaderboard_solution.csv | solution.csv
                CSV, header  id,essay_set,essay_weight,essay_score,Usage

- ``Score1`` is the official score and becomes the label; ``Score2`` (second rater,
  optional column) is only kept in ``meta["score2"]`` as ``{id: score}`` for the
  train and validation responses, e.g. for inter-rater agreement.
- Each test ``Id`` takes its score from the solution row with the same ``id``
  (``essay_score``); ``essay_weight`` and ``Usage`` are not used. Every test Id must
  be in the solution and every solution id in the test file; the solution's
  ``essay_set``, when present, must agree with the test file's ``EssaySet``.
- Ids are the dataset's own ``Id`` strings (stripped); an Id may appear once per
  file and never in both train and test.
- Each ``EssaySet`` ``n`` becomes one task ``f"asap_set_{n:02d}"``, scored in
  ``SCORE_RANGE[n]`` (0..3 for sets 1, 2, 5, 6, 10; 0..2 for sets 3, 4, 7, 8, 9).

TSV files are read as plain tab-separated lines (no quoting), the CSV with RFC 4180
quoting; see :mod:`scoring_lab.data.tabular` for the reading rules and row numbers
(header = row 0, data rows from 1). Every problem is a
:class:`~scoring_lab.data.task.DataError` naming file, row and column.

Encoding: some releases of the Kaggle training file hold a few bytes that are not
UTF-8. The loader does not guess an encoding: it raises a DataError naming the file,
the row and the column (``EssayText``) and showing the bytes. Re-encode the file once,
e.g. ``iconv -f latin1 -t utf-8 train_rel_2.tsv > train_utf8.tsv`` (``-f windows-1252``
when the bytes are in 0x80-0x9F, Windows "smart" quotes and dashes), and pass
``train_file="train_utf8.tsv"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from .splits import carve_validation
from .tabular import OnEmpty, Table, check_on_empty, empty_text_rows, parse_int, read_table, unique_ids
from ..errors import DataError
from .task import Split, Task

SOURCE = "asap-sas"

#: (lowest, highest) score of each essay set.
SCORE_RANGE: dict[int, tuple[int, int]] = {
    1: (0, 3), 2: (0, 3), 3: (0, 2), 4: (0, 2), 5: (0, 3),
    6: (0, 3), 7: (0, 2), 8: (0, 2), 9: (0, 2), 10: (0, 3),
}

TRAIN_NAMES = ("train_rel_2.tsv", "train.tsv")
TEST_NAMES = ("public_leaderboard_rel_2.tsv", "public_leaderboard.tsv", "test.tsv")
SOLUTION_NAMES = ("public_leaderboard_solution.csv", "solution.csv")

TRAIN_COLUMNS = ("Id", "EssaySet", "Score1", "EssayText")  # Score2 optional
TEST_COLUMNS = ("Id", "EssaySet", "EssayText")
SOLUTION_COLUMNS = ("id", "essay_score")  # essay_set checked when present

View = Literal["multiclass", "ordinal"]


def task_name(essay_set: int) -> str:
    """Task name of essay set ``n``: ``asap_set_{n:02d}``."""
    return f"asap_set_{essay_set:02d}"


def ordinal_label_names(essay_set: int) -> list[str]:
    """["score>=1", ..., "score>=max"] for the ordinal view of ``essay_set``."""
    return [f"score>={k}" for k in range(1, SCORE_RANGE[essay_set][1] + 1)]


def ordinal_labels(scores: np.ndarray, max_score: int) -> np.ndarray:
    """(n, max_score) int8: column k-1 is ``score >= k``."""
    scores = np.asarray(scores, dtype=np.int64)
    return (scores[:, None] >= np.arange(1, max_score + 1)[None, :]).astype(np.int8)


def load_asap_sas(
    path,
    sets: Iterable[int | str] | int | str | None = None,
    view: View = "multiclass",
    val_fraction: float = 0.1,
    seed: int = 0,
    on_empty: OnEmpty = "error",
    train_file=None,
    test_file=None,
    solution_file=None,
) -> dict[str, Task]:
    """Load ASAP-SAS essay sets as Tasks, ``{"asap_set_01": Task, ...}`` in set order.

    path:      directory holding the files (see the module docstring)
    sets:      essay sets to load, as numbers (``[1, 2]``) or task names
               (``["asap_set_01"]``); default all sets in the training file
    view:      "multiclass": kind="multiclass", scores = Score1 (n,), labels=None,
               label_names=[]; "ordinal": kind="multilabel", labels (n, max) int8 with
               column k-1 = score >= k, label_names ["score>=1", ...], scores kept too.
               n_classes = max score + 1 in both views.
    train_file, test_file, solution_file: file names overriding the defaults; a
               relative name is taken inside ``path``.
    on_empty:  "error" (default) raises at an empty or whitespace-only EssayText;
               "drop" drops such rows, lists them in ``meta["dropped"]`` and warns.

    The validation split is carved from train with ``carve_validation`` (seeded,
    stratified by score). meta: source="asap-sas", essay_set, files, score_range,
    rows (rows of this set per file), score2, view, dropped.
    """
    check_on_empty(on_empty)
    if view not in ("multiclass", "ordinal"):
        raise ValueError(f"view must be 'multiclass' or 'ordinal', got {view!r}")
    root = Path(path)
    if not root.exists():
        raise DataError("no such directory (expected the ASAP-SAS files)", file=root)
    if not root.is_dir():
        raise DataError("expected a directory holding the ASAP-SAS files, got a file", file=root)
    train_path = _resolve(root, train_file, TRAIN_NAMES, "training TSV")
    test_path = _resolve(root, test_file, TEST_NAMES, "test TSV")
    solution_path = _resolve(root, solution_file, SOLUTION_NAMES, "solution CSV")

    train_t = read_table(train_path, delimiter="\t")
    train_t.require(TRAIN_COLUMNS)
    test_t = read_table(test_path, delimiter="\t")
    test_t.require(TEST_COLUMNS)
    sol_t = read_table(solution_path, delimiter=",")
    sol_t.require(SOLUTION_COLUMNS)

    # --- training file: id, set, scores
    train_ids = unique_ids(train_t, "Id")
    train_sets = _sets(train_t, "EssaySet")
    score1 = _scores(train_t, "Score1", train_sets)
    score2 = _scores(train_t, "Score2", train_sets) if train_t.has("Score2") else None

    # --- test file and its solution
    test_ids = unique_ids(test_t, "Id")
    test_sets = _sets(test_t, "EssaySet")
    known = set(train_sets)
    for r, s in enumerate(test_sets, start=1):
        if s not in known:
            raise test_t.error(
                f"essay set {s} has no responses in the training file {train_path.name}", row=r, column="EssaySet"
            )
    test_row = {i: r for r, i in enumerate(test_ids, start=1)}
    train_row = {i: r for r, i in enumerate(train_ids, start=1)}
    for i, r in test_row.items():
        if i in train_row:
            raise test_t.error(
                f"Id {i!r} is also in the training file {train_path} (row {train_row[i]}); "
                "train and test must not share responses",
                row=r, column="Id",
            )
    sol_ids = unique_ids(sol_t, "id")
    sol_score_raw = sol_t.column("essay_score")
    sol_set_raw = sol_t.column("essay_set") if sol_t.has("essay_set") else None
    test_score = np.zeros(len(test_t), dtype=np.int64)
    for r, i in enumerate(sol_ids, start=1):
        if i not in test_row:
            raise sol_t.error(
                f"id {i!r} is not in the test file {test_path}; solution and test must list the same Ids",
                row=r, column="id",
            )
        tr = test_row[i]
        s = test_sets[tr - 1]
        if sol_set_raw is not None:
            ss = parse_int(sol_t, sol_set_raw[r - 1], r, "essay_set")
            if ss != s:
                raise sol_t.error(
                    f"essay_set {ss} for id {i!r} disagrees with EssaySet {s} in {test_path} (row {tr})",
                    row=r, column="essay_set",
                )
        test_score[tr - 1] = _score(sol_t, sol_score_raw[r - 1], r, "essay_score", s)
    sol_has = set(sol_ids)
    for r, i in enumerate(test_ids, start=1):
        if i not in sol_has:
            raise test_t.error(
                f"Id {i!r} has no score in the solution file {solution_path}", row=r, column="Id"
            )

    # --- selection
    available = sorted(known)
    selected = _select(sets, available, root)

    out: dict[str, Task] = {}
    for s in selected:
        lo, hi = SCORE_RANGE[s]
        tr_rows = [r for r, x in enumerate(train_sets, start=1) if x == s]
        te_rows = [r for r, x in enumerate(test_sets, start=1) if x == s]
        if not te_rows:
            raise test_t.error(f"essay set {s} has no test responses", column="EssaySet")
        dropped = empty_text_rows(train_t, "EssayText", on_empty, tr_rows)
        dropped += empty_text_rows(test_t, "EssayText", on_empty, te_rows)
        gone = {(d["file"], d["row"]) for d in dropped}
        tr_keep = [r for r in tr_rows if (str(train_path), r) not in gone]
        te_keep = [r for r in te_rows if (str(test_path), r) not in gone]
        for part, keep, table in (("train", tr_keep, train_t), ("test", te_keep, test_t)):
            if not keep:
                raise table.error(f"essay set {s}: no {part} rows left after dropping empty texts",
                                  column="EssayText")
        train_split = _split(train_t, tr_keep, train_ids, score1[np.array(tr_keep) - 1], hi, view)
        test_split = _split(test_t, te_keep, test_ids, test_score[np.array(te_keep) - 1], hi, view)
        train, val = carve_validation(train_split, val_fraction, seed)
        meta = {
            "source": SOURCE,
            "essay_set": s,
            "files": {"train": str(train_path), "test": str(test_path), "solution": str(solution_path)},
            "score_range": (lo, hi),
            "rows": {"train": len(tr_rows), "test": len(te_rows)},
            "score2": None if score2 is None else {train_ids[r - 1]: int(score2[r - 1]) for r in tr_keep},
            "view": view,
            "val_fraction": val_fraction,
            "seed": seed,
            "dropped": dropped,
        }
        out[task_name(s)] = Task(
            name=task_name(s),
            kind="multiclass" if view == "multiclass" else "multilabel",
            train=train,
            val=val,
            test=test_split,
            label_names=[] if view == "multiclass" else ordinal_label_names(s),
            n_classes=hi + 1,
            meta=meta,
        )
    return out


def _resolve(root: Path, override, names: tuple[str, ...], what: str) -> Path:
    if override is not None:
        p = Path(override)
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            raise DataError(f"{what} not found", file=p)
        return p
    for n in names:
        if (root / n).is_file():
            return root / n
    raise DataError(f"no {what} found; tried {list(names)} (pass its name explicitly to override)", file=root)


def _sets(table: Table, column: str) -> list[int]:
    out = []
    for r, v in enumerate(table.column(column), start=1):
        s = parse_int(table, v, r, column)
        if s not in SCORE_RANGE:
            raise table.error(f"unknown essay set {s}; ASAP-SAS has sets {sorted(SCORE_RANGE)}", row=r, column=column)
        out.append(s)
    return out


def _score(table: Table, value: str, row: int, column: str, essay_set: int) -> int:
    v = parse_int(table, value, row, column)
    lo, hi = SCORE_RANGE[essay_set]
    if not lo <= v <= hi:
        raise table.error(f"score {v} is outside {lo}..{hi}, the range of essay set {essay_set}",
                          row=row, column=column)
    return v


def _scores(table: Table, column: str, sets: list[int]) -> np.ndarray:
    vals = table.column(column)
    return np.array([_score(table, vals[r - 1], r, column, sets[r - 1]) for r in range(1, len(vals) + 1)],
                    dtype=np.int64)


def _split(table: Table, rows: list[int], ids: list[str], scores: np.ndarray, hi: int, view: View) -> Split:
    j = table.index("EssayText")
    return Split(
        ids=np.array([ids[r - 1] for r in rows], dtype=object),
        texts=[table.rows[r - 1][j] for r in rows],
        labels=ordinal_labels(scores, hi) if view == "ordinal" else None,
        scores=scores,
    )


def _select(sets, available: list[int], root: Path) -> list[int]:
    if sets is None:
        return available
    items = [sets] if isinstance(sets, (int, str)) else list(sets)
    chosen = []
    names = [task_name(s) for s in available]
    for it in items:
        s = None
        if isinstance(it, (int, np.integer)):
            s = int(it)
        elif isinstance(it, str):
            t = it.strip()
            if t.isdigit():
                s = int(t)
            elif t.startswith("asap_set_") and t[len("asap_set_"):].isdigit():
                s = int(t[len("asap_set_"):])
        if s not in available:
            raise DataError(f"unknown essay set {it!r}; available: {available} ({', '.join(names)})", file=root)
        if s not in chosen:
            chosen.append(s)
    return chosen
