"""Strict reading of delimited text files (CSV and TSV) for the real-data loaders.

Both :mod:`scoring_lab.data.pasta_csv` and :mod:`scoring_lab.data.asap_sas` read
their files through :func:`read_table`, which never guesses and never drops a row
silently. Every problem is a :class:`~scoring_lab.data.task.DataError` naming the
file, the row and, where one applies, the column.

Conventions
-----------
- Row numbers: the header is row 0 and data rows are numbered from 1, in file
  order (for a CSV with quoted multi-line fields a row is a record, not a line).
  With one record per line a row ``r`` sits on line ``r + 1`` of the file.
- Encoding: UTF-8, strictly (a leading byte-order mark is allowed and removed).
  Bytes that are not UTF-8 raise a DataError naming the row and column of the
  field that holds them; nothing is re-decoded with a guessed encoding. Re-encode
  such a file first, e.g. ``iconv -f latin1 -t utf-8 in.tsv > out.tsv``.
- CSV (``delimiter=","``): RFC 4180 quoting, parsed in the csv module's strict
  mode (a stray quote inside an unquoted field is an error, not a guess).
- TSV (``delimiter="\\t"``): plain tab-separated lines (IANA text/tab-separated-values):
  no quoting, quote characters are ordinary text, fields hold no tabs or newlines.
- Header: names are stripped of surrounding whitespace; an empty header cell or
  a name used twice is an error (the message gives both positions, 1-based).
- Every data row must have exactly as many fields as the header. Blank lines at
  the end of the file are ignored; a blank line before the last row is an error.
- Cell values are returned as they are in the file (not stripped).
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from ..errors import DataError

OnEmpty = Literal["error", "drop"]

_SURROGATE = re.compile("[\udc80-\udcff]")
_BOM = b"\xef\xbb\xbf"


class DroppedRowsWarning(UserWarning):
    """Rows were dropped on request (``on_empty="drop"``); they are listed in ``meta["dropped"]``."""


@dataclass
class Table:
    """A delimited file, read and checked.

    path:   the file
    header: column names (stripped), in file order
    rows:   data rows, each a list of ``len(header)`` raw strings; ``rows[i]`` is data row ``i + 1``
    """

    path: Path
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def error(self, reason: str, row: int | None = None, column: str | None = None) -> DataError:
        """A DataError located in this file (``row`` 1-based, 0 for the header)."""
        return DataError(reason, file=self.path, row=row, column=column)

    def has(self, name: str) -> bool:
        return name in self.header

    def index(self, name: str) -> int:
        """Position of column ``name``; a DataError (row 0) listing the header if absent."""
        if name not in self.header:
            raise self.error(f"missing column {name!r}; the header has {self.header}", row=0, column=name)
        return self.header.index(name)

    def require(self, names: Iterable[str]) -> None:
        """Raise a DataError (row 0) naming every column of ``names`` missing from the header."""
        missing = [n for n in names if n not in self.header]
        if missing:
            raise self.error(
                f"missing column(s) {missing}; the header has {self.header}", row=0, column=missing[0]
            )

    def column(self, name: str) -> list[str]:
        """All data values of column ``name``, in row order."""
        j = self.index(name)
        return [r[j] for r in self.rows]


def read_table(path, *, delimiter: str = ",", require_rows: bool = True) -> Table:
    """Read ``path`` as a strict UTF-8 delimited file (see the module notes).

    delimiter:    "," for CSV (quoted fields), "\\t" for TSV (no quoting)
    require_rows: a file with a header but no data rows is a DataError
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if not path.is_file():
        raise DataError("not a regular file", file=path)
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
        suspect = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
        suspect = True

    if delimiter == "\t":
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    records: list[list[str]] = []
    try:
        for rec in reader:
            records.append(rec)
    except csv.Error as exc:
        raise DataError(
            f"cannot parse line {reader.line_num} as {'CSV' if delimiter == ',' else 'delimited text'}: {exc}",
            file=path,
            row=len(records),  # the record being read: header is 0, data rows from 1
        ) from None

    if not records or all(len(r) == 0 for r in records):
        raise DataError("the file is empty: expected a header line", file=path)
    while records and len(records[-1]) == 0:
        records.pop()

    header = [h.strip() for h in records[0]]
    if suspect:
        for j, cell in enumerate(records[0]):
            _check_utf8(cell, path, 0, f"#{j + 1}")
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if name == "":
            raise DataError(
                f"header cell {j + 1} (of {len(header)}) is empty; every column needs a name",
                file=path, row=0,
            )
        if name in seen:
            raise DataError(
                f"column name {name!r} is used twice in the header: at positions {seen[name] + 1} and {j + 1}",
                file=path, row=0, column=name,
            )
        seen[name] = j

    rows = records[1:]
    width = len(header)
    for i, rec in enumerate(rows, start=1):
        if len(rec) != width:
            if len(rec) == 0:
                raise DataError("blank line between data rows", file=path, row=i)
            if len(rec) < width:
                raise DataError(
                    f"row has {len(rec)} fields but the header has {width}: "
                    f"columns {header[len(rec):]} are missing",
                    file=path, row=i, column=header[len(rec)],
                )
            raise DataError(
                f"row has {len(rec)} fields but the header has {width}: "
                f"{len(rec) - width} extra field(s) after column {header[-1]!r}"
                + (" (an unquoted delimiter inside the text?)" if delimiter == "," else ""),
                file=path, row=i,
            )
        if suspect:
            for j, cell in enumerate(rec):
                _check_utf8(cell, path, i, header[j])

    if require_rows and not rows:
        raise DataError("the file has a header but no data rows", file=path, row=1)
    return Table(path=path, header=header, rows=rows)


def _check_utf8(cell: str, path: Path, row: int, column: str) -> None:
    m = _SURROGATE.search(cell)
    if m is None:
        return
    codes = [ord(ch) - 0xDC00 for ch in _SURROGATE.findall(cell)]
    bad = [f"0x{c:02X}" for c in codes]
    if any(0x80 <= c <= 0x9F for c in codes):  # C1 range: Windows smart quotes and dashes
        source, why = "windows-1252", " (bytes 0x80-0x9F are usually Windows-1252; else try -f latin1)"
    else:
        source, why = "latin1", " if it is Latin-1"
    start, stop = max(0, m.start() - 20), m.start() + 40
    shown = ("..." if start > 0 else "") + cell[start:stop] + ("..." if stop < len(cell) else "")
    shown = _SURROGATE.sub(lambda c: f"\\x{ord(c.group()) - 0xDC00:02x}", shown)
    shown = shown.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    raise DataError(
        f"bytes that are not valid UTF-8 ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}) "
        f"in \"{shown}\"; the file must be UTF-8 and no encoding is guessed. Re-encode it first, "
        f"e.g. `iconv -f {source} -t utf-8 IN > OUT`{why}",
        file=path, row=row, column=column,
    )


def is_empty_text(value: str) -> bool:
    """True for an empty or whitespace-only response."""
    return value.strip() == ""


def check_on_empty(on_empty: str) -> None:
    if on_empty not in ("error", "drop"):
        raise ValueError(f"on_empty must be 'error' or 'drop', got {on_empty!r}")


def empty_text_rows(table: Table, column: str, on_empty: OnEmpty, rows: Iterable[int] | None = None) -> list[dict]:
    """Apply the empty-text policy to ``column`` over data rows ``rows`` (1-based; default all).

    on_empty="error": a DataError at the first empty text, counting the others.
    on_empty="drop":  returns one record per empty text,
                      ``{"file", "row", "column", "reason": "empty text"}``, and warns
                      (:class:`DroppedRowsWarning`) with the count for this file.
    """
    check_on_empty(on_empty)
    j = table.index(column)
    rows = range(1, len(table) + 1) if rows is None else rows
    empty = [r for r in rows if is_empty_text(table.rows[r - 1][j])]
    if not empty:
        return []
    if on_empty == "error":
        more = f" ({len(empty) - 1} more row(s) in this file have empty text)" if len(empty) > 1 else ""
        raise table.error(
            f"empty response text{more}; pass on_empty='drop' to drop such rows (they are counted "
            "in task.meta['dropped'])",
            row=empty[0], column=column,
        )
    shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
    warnings.warn(
        f"{table.path}: dropped {len(empty)} row(s) with empty text in column {column!r} (rows {shown})",
        DroppedRowsWarning,
        stacklevel=3,
    )
    return [{"file": str(table.path), "row": r, "column": column, "reason": "empty text"} for r in empty]


def parse_int(table: Table, value: str, row: int, column: str) -> int:
    """An integer cell (``"2"``, ``" 2 "`` or ``"2.0"``); anything else is a DataError at (row, column)."""
    s = value.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        f = None
    if f is not None and f.is_integer():
        return int(f)
    raise table.error(f"expected an integer, got {value!r}", row=row, column=column)


def unique_ids(table: Table, column: str) -> list[str]:
    """The stripped ids of ``column``: each non-empty and unique over the whole file (a DataError
    names the row, and for a duplicate the earlier row too)."""
    ids = [v.strip() for v in table.column(column)]
    first: dict[str, int] = {}
    for r, i in enumerate(ids, start=1):
        if i == "":
            raise table.error("empty id", row=r, column=column)
        if i in first:
            raise table.error(f"duplicate id {i!r}: rows {first[i]} and {r}", row=r, column=column)
        first[i] = r
    return ids
