"""The project's error for bad input: it says where the input was bad (file, row, column).

At the ground floor so that every layer can raise it: the loaders, the claims reader, the
student's CSV scorer. ``scoring_lab.data`` exports it beside the tasks it guards.
"""
from __future__ import annotations


class DataError(ValueError):
    """Bad input, with the place it was found: file, row and column.

    ``row`` is the 1-based data row (the header is row 0), so a spreadsheet
    user finds it at line ``row + 1``; ``column`` is the header name.
    """

    def __init__(self, message: str, *, file=None, row: int | None = None, column: str | None = None):
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        self.reason = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
