"""Loader for a plain scored table: one CSV or TSV file, one row per response (``source="csv"``).

Layout: ONE UTF-8 file, one row per response, a header naming the columns::

    id,task,split,question,response,score
    s1,photosynthesis,train,What do plants need?,Sunlight and water.,2
    s2,photosynthesis,test,What do plants need?,Soil.,0
    s3,density,train,Why does ice float?,It is less dense than water.,1

Columns (every name can be changed by an argument; the defaults are shown):

- ``response`` (``text_column``, required): the response text.
- ``task`` (``task_column``, required): the task (assessment item) of the row;
  the stripped value names the task, an empty one is an error. Tasks are
  returned in order of first appearance; ``tasks=`` (a name or a list) selects
  some, an unknown name is an error listing the available ones.
- ``id`` (``id_column``, optional): the response's id, stripped, non-empty and
  unique over the whole file. Without it a response's id is
  ``f"{task}-row{row:05d}"`` with ``row`` its 1-based data row (header = row 0),
  so an id points back to its row.
- ``split`` (``split_column``, optional): ``train``; ``val``, ``valid``,
  ``validation`` or ``dev``; ``test`` (case-insensitive, stripped); anything else
  is an error.
- ``prompt_column`` (optional, default None: no prompt): the question. When it is
  given, the model's text for a row is ``f"Question: {prompt} Answer: {response}"``
  (prompt and response stripped; the SciEntsBank layout, for tasks whose
  correctness depends on the question); a row whose prompt cell is empty keeps
  its response alone, as it is in the file.
- ``score`` (``score_column``): the holistic score (multi-class), or 0/1 label
  columns (multi-label), decided as below.
- ``ignore_columns`` (a list or a comma-separated string): read and ignored,
  listed in ``meta["ignored_columns"]``. Every listed column must exist.

The optional columns are used when the header has them. A name passed
explicitly that differs from its default (``id_column="Id"``,
``split_column="fold"``, ``score_column="grade"``, any ``prompt_column``) must be
in the header; pass ``id_column=None`` (or ``split_column=None``,
``score_column=None``) to not use a column of the default name.

Kind:

- ``label_columns`` given (a list, or a comma-separated string): multi-label with
  exactly those columns, in that order.
- else, the header has ``score_column``: multi-class.
- else: multi-label with every remaining column as a 0/1 label ("auto"); a
  table with no remaining column is an error.

Nothing is ignored silently: with a score column or explicit ``label_columns``,
any other column that is not text, task, id, split, prompt or in
``ignore_columns`` is an error (row 0, that column).

Multi-class: a score is an integer (``2``, ``2.0``, surrounding spaces allowed);
empty, non-integer or negative is an error at that row and column. Per task, the
class of a response is its score minus the lowest score of the task's rows in
the file (all splits), and ``n_classes = highest - lowest + 1``;
``meta["lowest_score"]`` keeps the offset and ``meta["score_range"]`` is
``(lowest, highest)``. The Task has ``kind="multiclass"``, ``label_names=[]``,
``Split.scores`` (n,) int64 (classes 0..K-1) and ``labels=None``.

Multi-label: a cell is ``0``, ``1``, ``0.0`` or ``1.0``, with surrounding spaces.
One table may hold tasks with different rubrics: for each task, a label column
whose cells are ALL empty over that task's rows is not part of that task's rubric
(left out of its ``label_names``, listed in ``meta["unused_label_columns"]``); a
column empty for some rows of a task and filled for others is an error at the
first empty row, as is any other cell that is not 0/1. A task left with no label
column is an error.

Splits: with a split column, each task needs test and train rows; a task with no
val rows gets val carved from its train rows with
:func:`~scoring_lab.data.splits.carve_validation` (``val_fraction``, ``seed``).
Without a split column, per task, test is carved from all its rows
(``test_fraction``) and then val from the rest (``val_fraction``), with the same
seeded, stratified carve (by class, or by label combination). ``meta["splits_from"]``
says "column" or "carved", ``meta["val_from"]`` the same for val, and
``meta["test_fraction"]`` / ``meta["val_fraction"]`` the fractions that were
applied (None when that split came from the column).

Delimiter: ``delimiter`` if given (``"tab"`` or ``"\\t"`` for a tab), else by
extension: ``.tsv`` / ``.tab`` is TSV (plain tab-separated lines, no quoting),
``.csv`` is CSV (RFC 4180 quoting); any other extension is an error asking for
``delimiter``. Reading rules (encoding, quoting, row numbers) are those of
:mod:`scoring_lab.data.tabular`.

Checks: the task, id and split cells are checked over the whole file; text,
score and label cells over the rows of the selected tasks (dropped rows
included). Every problem is a :class:`~scoring_lab.data.task.DataError` naming
file, row (1-based data row, header = row 0) and column.

meta: source="csv", file, delimiter, rows (data rows of this task in the file),
text_column, task_column, id_column, split_column, prompt_column, kind_from
("score_column", "label_columns" or "auto"), score_column, label_columns (the
candidate label columns; [] for multi-class), unused_label_columns,
ignored_columns, splits_from, val_from, test_fraction, val_fraction, seed,
dropped; multi-class also lowest_score and score_range.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .splits import carve_validation
from .tabular import OnEmpty, Table, check_on_empty, empty_text_rows, parse_int, read_table, unique_ids
from ..errors import DataError
from .task import Split, Task

SOURCE = "csv"
DEFAULT_ID_COLUMN = "id"
DEFAULT_SPLIT_COLUMN = "split"
DEFAULT_SCORE_COLUMN = "score"
EXTENSIONS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
SPLIT_VALUES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val",
                "test": "test"}
_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


def load_scored_csv(
    path,
    *,
    text_column: str = "response",
    task_column: str = "task",
    score_column: str | None = DEFAULT_SCORE_COLUMN,
    label_columns: Iterable[str] | str | None = None,
    id_column: str | None = DEFAULT_ID_COLUMN,
    split_column: str | None = DEFAULT_SPLIT_COLUMN,
    prompt_column: str | None = None,
    ignore_columns: Iterable[str] | str = (),
    delimiter: str | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    tasks: Iterable[str] | str | None = None,
    on_empty: OnEmpty = "error",
) -> dict[str, Task]:
    """Load the tasks of one scored CSV/TSV file (see the module docstring for the layout).

    Returns ``{name: Task}`` in order of first appearance in the file.

    test_fraction: share of each task's rows carved as test when there is no split
                   column, in (0, 1)
    val_fraction:  share of train carved as validation when the split column has no
                   val rows for a task (or there is no split column), in [0, 1)
    on_empty:      "error" (default) raises at an empty or whitespace-only response;
                   "drop" drops those rows, lists them in ``meta["dropped"]`` as
                   ``{"file", "row", "column", "reason": "empty text"}`` and warns with
                   the count. Nothing else is ever dropped.
    """
    check_on_empty(on_empty)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    text_column = _column_arg("text_column", text_column, required=True)
    task_column = _column_arg("task_column", task_column, required=True)
    score_column = _column_arg("score_column", score_column)
    id_column = _column_arg("id_column", id_column)
    split_column = _column_arg("split_column", split_column)
    prompt_column = _column_arg("prompt_column", prompt_column)
    labels_arg = None if label_columns is None else _names("label_columns", label_columns)
    if labels_arg is not None and not labels_arg:
        raise ValueError("label_columns is empty: name at least one column, or leave it None")
    ignored = _names("ignore_columns", ignore_columns)
    if labels_arg is not None and score_column not in (None, DEFAULT_SCORE_COLUMN):
        raise ValueError(f"give score_column ({score_column!r}) or label_columns ({labels_arg}), not both")

    path = Path(path)
    if not path.exists():
        raise DataError("file not found (expected one CSV or TSV file)", file=path)
    if path.is_dir():
        raise DataError("expected one CSV or TSV file, got a directory", file=path)
    sep = _delimiter(path, delimiter)
    table = read_table(path, delimiter=sep)
    table.require([text_column, task_column])
    id_col = _optional(table, "id_column", id_column, DEFAULT_ID_COLUMN)
    split_col = _optional(table, "split_column", split_column, DEFAULT_SPLIT_COLUMN)
    prompt_col = _optional(table, "prompt_column", prompt_column, None)
    table.require(ignored)

    # --- kind, and the role of every column
    roles: dict[str, str] = {}
    for role, name in (("text_column", text_column), ("task_column", task_column), ("id_column", id_col),
                       ("split_column", split_col), ("prompt_column", prompt_col)):
        if name is not None:
            _assign(table, roles, name, role)
    for name in ignored:
        _assign(table, roles, name, "ignore_columns")
    if labels_arg is not None:
        kind, kind_from, score_col = "multilabel", "label_columns", None
        table.require(labels_arg)
        for name in labels_arg:
            _assign(table, roles, name, "label_columns")
        candidates = labels_arg
    elif score_column is not None and table.has(score_column):
        kind, kind_from, score_col = "multiclass", "score_column", score_column
        _assign(table, roles, score_col, "score_column")
        candidates = []
    elif score_column not in (None, DEFAULT_SCORE_COLUMN):
        raise table.error(f"score_column={score_column!r} is not in the header; the header has {table.header}",
                          row=0, column=score_column)
    else:
        kind, kind_from, score_col = "multilabel", "auto", None
        candidates = [c for c in table.header if c not in roles]
        if not candidates:
            raise table.error(
                f"no label columns: the header has only {table.header}. Expected a score column "
                f"{score_column!r} (multi-class), or 0/1 label columns (every column that is not "
                "text, task, id, split, prompt or ignored)",
                row=0,
            )
    extra = [c for c in table.header if c not in roles and c not in candidates]
    if extra:
        why = (f"the table is read as multi-class (it has the score column {score_col!r})" if kind == "multiclass"
               else f"label_columns is given ({labels_arg})")
        raise table.error(
            f"column not used: {why}, so every other column must be the text, task, id, split or prompt "
            f"column; list it in ignore_columns to ignore it, or in label_columns to read it as a 0/1 label "
            f"(unused columns: {extra})",
            row=0, column=extra[0],
        )

    # --- file-wide cells: task, id, split
    task_of = _task_names(table, task_column)
    ids = unique_ids(table, id_col) if id_col is not None else [f"{t}-row{r:05d}" for r, t in enumerate(task_of, 1)]
    part_of = _splits(table, split_col) if split_col is not None else None

    available = list(dict.fromkeys(task_of))
    if tasks is None:
        selected = available
    else:
        wanted = [tasks] if isinstance(tasks, str) else [str(t) for t in tasks]
        wanted = [t.strip() for t in wanted]
        unknown = [t for t in wanted if t not in available]
        if unknown:
            raise DataError(f"unknown task(s) {unknown}; available: {available}", file=path)
        selected = [t for t in available if t in set(wanted)]

    common = {
        "source": SOURCE,
        "file": str(path),
        "delimiter": sep,
        "text_column": text_column,
        "task_column": task_column,
        "id_column": id_col,
        "split_column": split_col,
        "prompt_column": prompt_col,
        "kind_from": kind_from,
        "score_column": score_col,
        "label_columns": list(candidates),
        "ignored_columns": list(ignored),
        "seed": seed,
    }
    out: dict[str, Task] = {}
    for name in selected:
        rows = [r for r, t in enumerate(task_of, start=1) if t == name]
        out[name] = _load_task(table, name, rows, kind, score_col, candidates, ids, part_of, split_col,
                               text_column, prompt_col, task_column, test_fraction, val_fraction, seed,
                               on_empty, common)
    return out


# ----------------------------------------------------------------------------- arguments and header


def _column_arg(arg: str, value, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{arg} is required (a column name), got None")
        return None
    name = str(value).strip()
    if not name:
        raise ValueError(f"{arg} must be a column name, got {value!r}")
    return name


def _names(arg: str, value) -> list[str]:
    """A list of column names from a list or a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    names = [s.strip() for s in items]
    if isinstance(value, str):
        names = [s for s in names if s]
    if any(s == "" for s in names):
        raise ValueError(f"{arg} holds an empty column name: {value!r}")
    twice = sorted({s for s in names if names.count(s) > 1})
    if twice:
        raise ValueError(f"{arg} names {twice} more than once")
    return names


def _delimiter(path: Path, delimiter: str | None) -> str:
    if delimiter is not None:
        sep = "\t" if delimiter in ("\\t", "tab", "TAB") else delimiter
        if len(sep) != 1 or sep in ('"', "\n", "\r"):
            raise ValueError(f"delimiter must be one character (or 'tab'), got {delimiter!r}")
        return sep
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(
            f"cannot tell the delimiter from the extension {ext or '(none)'!r}: name the file .csv "
            "(comma, RFC 4180 quoting) or .tsv/.tab (tab), or pass delimiter (e.g. delimiter=',' "
            "or delimiter='tab')",
            file=path,
        )
    return EXTENSIONS[ext]


def _optional(table: Table, arg: str, name: str | None, default: str | None) -> str | None:
    """The optional column ``name`` when the header has it; an error when a non-default name is absent."""
    if name is None:
        return None
    if table.has(name):
        return name
    if name != default:
        raise table.error(f"{arg}={name!r} is not in the header; the header has {table.header}",
                          row=0, column=name)
    return None


def _assign(table: Table, roles: dict[str, str], name: str, role: str) -> None:
    if name in roles:
        raise table.error(f"column {name!r} is given both as {roles[name]} and as {role}", row=0, column=name)
    roles[name] = role


# ----------------------------------------------------------------------------- file-wide cells


def _task_names(table: Table, column: str) -> list[str]:
    out = []
    for r, v in enumerate(table.column(column), start=1):
        name = v.strip()
        if not name:
            raise table.error("empty task name; every row needs the name of its task", row=r, column=column)
        out.append(name)
    return out


def _splits(table: Table, column: str) -> list[str]:
    out = []
    for r, v in enumerate(table.column(column), start=1):
        part = SPLIT_VALUES.get(v.strip().lower())
        if part is None:
            raise table.error(
                f"unknown split {v!r}; expected train, val (or valid, validation, dev) or test", row=r, column=column
            )
        out.append(part)
    return out


# ----------------------------------------------------------------------------- one task


def _scores(table: Table, column: str, rows: list[int]) -> dict[int, int]:
    j = table.index(column)
    out = {}
    for r in rows:
        value = table.rows[r - 1][j]
        if value.strip() == "":
            raise table.error("empty score; every row needs a non-negative integer score", row=r, column=column)
        v = parse_int(table, value, r, column)
        if v < 0:
            raise table.error(f"score must be a non-negative integer, got {value!r}", row=r, column=column)
        out[r] = v
    return out


def _labels(table: Table, name: str, candidates: list[str], rows: list[int]) -> tuple[list[str], list[str], dict]:
    """(label names of this task, unused columns, {row: (L,) labels})."""
    used, unused, columns = [], [], []
    for c in candidates:
        j = table.index(c)
        cells = [table.rows[r - 1][j] for r in rows]
        empty = [r for r, v in zip(rows, cells) if v.strip() == ""]
        if len(empty) == len(rows):
            unused.append(c)
            continue
        if empty:
            filled = next(r for r, v in zip(rows, cells) if v.strip() != "")
            raise table.error(
                f"empty label: column {c!r} holds labels for other rows of task {name!r} (e.g. row {filled}), "
                "so every row of the task needs 0 or 1 here (a column left empty for all rows of a task is "
                "not part of that task's rubric)",
                row=empty[0], column=c,
            )
        values = []
        for r, v in zip(rows, cells):
            x = _BINARY.get(v.strip())
            if x is None:
                raise table.error(f"label must be 0 or 1 (also accepted: 0.0, 1.0), got {v!r}", row=r, column=c)
            values.append(x)
        used.append(c)
        columns.append(values)
    if not used:
        raise table.error(
            f"task {name!r} has no label column: every label column {candidates} is empty for all its rows",
            row=rows[0],
        )
    matrix = np.array(columns, dtype=np.int8).T
    return used, unused, {r: matrix[k] for k, r in enumerate(rows)}


def _load_task(table: Table, name: str, rows: list[int], kind: str, score_col: str | None,
               candidates: list[str], ids: list[str], part_of: list[str] | None, split_col: str | None,
               text_column: str, prompt_col: str | None, task_column: str, test_fraction: float,
               val_fraction: float, seed: int, on_empty: OnEmpty, common: dict) -> Task:
    dropped = empty_text_rows(table, text_column, on_empty, rows)
    gone = {d["row"] for d in dropped}
    keep = [r for r in rows if r not in gone]
    if not keep:
        raise table.error(f"task {name!r}: no rows left after dropping {len(rows)} empty text(s)",
                          column=text_column)

    meta = dict(common, rows=len(rows))
    raw: dict[int, int] = {}
    labels: dict[int, np.ndarray] = {}
    lo = 0
    if kind == "multiclass":
        raw = _scores(table, score_col, rows)
        lo, hi = min(raw.values()), max(raw.values())
        label_names, unused, n_classes = [], [], hi - lo + 1
        meta.update(lowest_score=lo, score_range=(lo, hi))
    else:
        label_names, unused, labels = _labels(table, name, candidates, rows)
        n_classes = None
    meta["unused_label_columns"] = unused

    jt, jp = table.index(text_column), (table.index(prompt_col) if prompt_col is not None else None)

    def split_of(part_rows: list[int]) -> Split:
        texts = []
        for r in part_rows:
            rec = table.rows[r - 1]
            prompt = rec[jp].strip() if jp is not None else ""
            texts.append(f"Question: {prompt} Answer: {rec[jt].strip()}" if prompt else rec[jt])
        return Split(
            ids=np.array([ids[r - 1] for r in part_rows], dtype=object),
            texts=texts,
            labels=None if kind == "multiclass" else (
                np.array([labels[r] for r in part_rows], dtype=np.int8).reshape(len(part_rows), len(label_names))),
            scores=np.array([raw[r] - lo for r in part_rows], dtype=np.int64) if kind == "multiclass" else None,
        )

    if part_of is not None:
        by_part = {p: [r for r in rows if part_of[r - 1] == p] for p in ("train", "val", "test")}
        for p in ("test", "train"):
            if not by_part[p]:
                raise table.error(
                    f"task {name!r} has no {p} rows (its {len(rows)} rows are "
                    f"{_counts(part_of, rows)}); every task needs train and test rows",
                    column=split_col,
                )
        kept = {p: [r for r in rs if r not in gone] for p, rs in by_part.items()}
        for p in ("test", "train"):
            if not kept[p]:
                raise table.error(f"task {name!r}: no {p} rows left after dropping empty texts",
                                  column=text_column)
        test = split_of(kept["test"])
        if kept["val"]:
            train, val = split_of(kept["train"]), split_of(kept["val"])
            meta.update(splits_from="column", val_from="column", test_fraction=None, val_fraction=None)
        else:
            train, val = carve_validation(split_of(kept["train"]), val_fraction, seed)
            meta.update(splits_from="column", val_from="carved", test_fraction=None, val_fraction=val_fraction)
    else:
        if len(keep) < 2:
            raise table.error(
                f"task {name!r} has {len(keep)} row(s); at least 2 are needed to carve a test split "
                "(or give a split column)",
                row=keep[0], column=task_column,
            )
        rest, test = carve_validation(split_of(keep), test_fraction, seed)
        train, val = carve_validation(rest, val_fraction, seed)
        meta.update(splits_from="carved", val_from="carved", test_fraction=test_fraction, val_fraction=val_fraction)
    meta["dropped"] = dropped
    return Task(
        name=name,
        kind=kind,
        train=train,
        val=val,
        test=test,
        label_names=list(label_names),
        n_classes=n_classes,
        meta=meta,
    )


def _counts(part_of: list[str], rows: list[int]) -> str:
    n = {p: sum(part_of[r - 1] == p for r in rows) for p in ("train", "val", "test")}
    return ", ".join(f"{k} {v}" for k, v in n.items())
