"""Loader for the PASTA / UniMoE CSV layout (multi-label analytic rubrics).

Layout: a directory holding, for each task ``T``, two UTF-8 CSV files::

    data/
      T_train.csv      text,<label 1>,<label 2>,...,<label L>[,Group]
      T_test.csv       same columns (the text header may differ)

- the first column is the response text, whatever its header says;
- every other column is a 0/1 rubric label named by its header; a cell may be
  ``0``, ``1``, ``0.0`` or ``1.0``, with surrounding spaces; anything else
  (empty, ``2``, ``yes``, ``0.5``) is an error;
- a column named exactly ``Group`` (case-sensitive) is ignored, but only as the
  LAST column; anywhere else it is read as a label;
- the test file's label columns must equal the train file's, in the same order.

Task names come from the file names (``T``). There is no id column in this
layout: a response's id is ``f"{T}-train-{row:05d}"`` or ``f"{T}-test-{row:05d}"``
with ``row`` its 1-based data row in the file (header = row 0), so an id points
back to its row. The validation split is carved from train with
:func:`~scoring_lab.data.splits.carve_validation` (seeded, stratified by label
combination). Reading rules (encoding, quoting, row numbers) are those of
:mod:`scoring_lab.data.tabular`; every problem is a
:class:`~scoring_lab.data.task.DataError` naming file, row and column.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .splits import carve_validation
from .tabular import OnEmpty, Table, check_on_empty, empty_text_rows, read_table
from ..errors import DataError
from .task import Split, Task

SOURCE = "pasta-csv"
IGNORED_LAST_COLUMN = "Group"
TRAIN_SUFFIX = "_train.csv"
TEST_SUFFIX = "_test.csv"
_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


def available_pasta_tasks(path) -> list[str]:
    """Sorted task names with a ``{task}_train.csv`` or ``{task}_test.csv`` file in directory ``path``."""
    train, test = _scan(_check_dir(path))
    return sorted(train | test)


def load_pasta_csv(
    path,
    tasks: Iterable[str] | str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_empty: OnEmpty = "error",
) -> dict[str, Task]:
    """Load every task (or those named in ``tasks``) from a PASTA CSV directory.

    Returns ``{name: Task}`` in sorted name order; each Task has kind="multilabel",
    label_names = the label headers, labels (n, L) int8, scores=None, n_classes=None,
    and meta with source="pasta-csv", files {"train", "test"}, rows {"train", "test"}
    (data rows read), text_column {"train", "test"}, ignored_columns and dropped.

    on_empty: "error" (default) raises at an empty or whitespace-only text;
              "drop" drops those rows, lists them in ``meta["dropped"]`` as
              ``{"file", "row", "column", "reason": "empty text"}`` and warns with
              the count per file. Nothing else is ever dropped.
    """
    check_on_empty(on_empty)
    root = _check_dir(path)
    train_names, test_names = _scan(root)
    available = sorted(train_names | test_names)
    if not train_names:
        raise DataError(
            f"no '*{TRAIN_SUFFIX}' file found. Expected a directory with '{{task}}{TRAIN_SUFFIX}' and "
            f"'{{task}}{TEST_SUFFIX}' for each task: first column the response text, every other column a "
            f"0/1 label named by its header, an optional last column '{IGNORED_LAST_COLUMN}' (ignored)",
            file=root,
        )
    if tasks is None:
        selected = available
    else:
        selected = [tasks] if isinstance(tasks, str) else list(tasks)
        unknown = [t for t in selected if t not in available]
        if unknown:
            raise DataError(f"unknown task(s) {unknown}; available: {available}", file=root)
    out: dict[str, Task] = {}
    for name in selected:
        train_file, test_file = root / f"{name}{TRAIN_SUFFIX}", root / f"{name}{TEST_SUFFIX}"
        for have, missing in ((train_file, test_file), (test_file, train_file)):
            if have.exists() and not missing.exists():
                raise DataError(
                    f"task {name!r} has {have.name} but not {missing.name}; each task needs both files",
                    file=missing,
                )
        out[name] = _load_task(name, train_file, test_file, val_fraction, seed, on_empty)
    return out


def _check_dir(path) -> Path:
    root = Path(path)
    if not root.exists():
        raise DataError("no such directory (expected a PASTA CSV directory)", file=root)
    if not root.is_dir():
        raise DataError(
            f"expected a directory holding '{{task}}{TRAIN_SUFFIX}' and '{{task}}{TEST_SUFFIX}' files, "
            "got a file",
            file=root,
        )
    return root


def _scan(root: Path) -> tuple[set[str], set[str]]:
    names = [p.name for p in root.iterdir() if p.is_file()]
    train = {n[: -len(TRAIN_SUFFIX)] for n in names if n.endswith(TRAIN_SUFFIX) and len(n) > len(TRAIN_SUFFIX)}
    test = {n[: -len(TEST_SUFFIX)] for n in names if n.endswith(TEST_SUFFIX) and len(n) > len(TEST_SUFFIX)}
    return train, test


def _label_columns(table: Table) -> tuple[list[str], list[str]]:
    """(label columns, ignored columns) of a PASTA table."""
    cols = table.header[1:]
    ignored = []
    if cols and cols[-1] == IGNORED_LAST_COLUMN:
        ignored = [cols[-1]]
        cols = cols[:-1]
    if not cols:
        raise table.error(
            "no label columns: expected the response text first, then one 0/1 column per label "
            f"(a last column '{IGNORED_LAST_COLUMN}' is ignored)",
            row=0,
        )
    return cols, ignored


def _parse_labels(table: Table, label_names: list[str], rows: list[int]) -> np.ndarray:
    """(len(rows), L) int8 labels of data rows ``rows`` (1-based)."""
    idx = [table.header.index(c) for c in label_names]
    out = np.zeros((len(rows), len(idx)), dtype=np.int8)
    for k, r in enumerate(rows):
        rec = table.rows[r - 1]
        for m, j in enumerate(idx):
            v = _BINARY.get(rec[j].strip())
            if v is None:
                hint = ""
                if table.header[j] == IGNORED_LAST_COLUMN:
                    hint = f" ('{IGNORED_LAST_COLUMN}' is ignored only as the last column)"
                raise table.error(
                    f"label must be 0 or 1 (also accepted: 0.0, 1.0), got {rec[j]!r}{hint}",
                    row=r, column=table.header[j],
                )
            out[k, m] = v
    return out


def _load_task(name: str, train_file: Path, test_file: Path, val_fraction: float, seed: int,
               on_empty: OnEmpty) -> Task:
    train_t = read_table(train_file, delimiter=",")
    test_t = read_table(test_file, delimiter=",")
    label_names, ignored = _label_columns(train_t)
    test_labels, test_ignored = _label_columns(test_t)
    if test_labels != label_names:
        missing = [c for c in label_names if c not in test_labels]
        extra = [c for c in test_labels if c not in label_names]
        if missing or extra:
            diff = "; ".join(
                s for s in (f"missing {missing}" if missing else "", f"extra {extra}" if extra else "") if s
            )
            first = missing[0] if missing else extra[0]
        else:
            diff = "same columns in a different order"
            first = next(b for a, b in zip(label_names, test_labels) if a != b)
        raise test_t.error(
            f"test label columns differ from {train_file.name}: {diff}; "
            f"train has {label_names}, test has {test_labels}",
            row=0, column=first,
        )

    dropped: list[dict] = []
    splits = {}
    for part, table in (("train", train_t), ("test", test_t)):
        text_col = table.header[0]
        gone = empty_text_rows(table, text_col, on_empty)
        dropped += gone
        gone_rows = {d["row"] for d in gone}
        rows = [r for r in range(1, len(table) + 1) if r not in gone_rows]
        labels = _parse_labels(table, label_names, list(range(1, len(table) + 1)))
        keep = np.array([r - 1 for r in rows], dtype=int)
        splits[part] = Split(
            ids=np.array([f"{name}-{part}-{r:05d}" for r in rows], dtype=object),
            texts=[table.rows[r - 1][0] for r in rows],
            labels=labels[keep] if len(keep) else np.zeros((0, len(label_names)), dtype=np.int8),
        )
    for part, table in (("train", train_t), ("test", test_t)):
        if len(splits[part]) == 0:
            raise table.error(f"no {part} rows left after dropping {len(table)} empty text(s)")

    train, val = carve_validation(splits["train"], val_fraction, seed)
    return Task(
        name=name,
        kind="multilabel",
        train=train,
        val=val,
        test=splits["test"],
        label_names=list(label_names),
        n_classes=None,
        meta={
            "source": SOURCE,
            "files": {"train": str(train_file), "test": str(test_file)},
            "rows": {"train": len(train_t), "test": len(test_t)},
            "text_column": {"train": train_t.header[0], "test": test_t.header[0]},
            "ignored_columns": sorted(set(ignored) | set(test_ignored)),
            "val_fraction": val_fraction,
            "seed": seed,
            "dropped": dropped,
        },
    )
