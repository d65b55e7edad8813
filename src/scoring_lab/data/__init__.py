"""Data: the synthetic benchmark (the embedded default) and real-data loaders.

Every source returns ``dict[str, Task]`` (task name -> :class:`Task`), so a chapter
works the same on the synthetic benchmark, the PASTA CSV files or ASAP-SAS.
"""
from __future__ import annotations

from pathlib import Path

from .task import DataError, Split, Task

__all__ = ["DataError", "Split", "Task", "load_tasks", "SOURCES"]

SOURCES = ("synthetic", "pasta-csv", "asap-sas")


def load_tasks(
    source: str = "synthetic",
    path: str | Path | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    scale: float = 1.0,
    difficulty: float = 0.5,
    tasks: list[str] | None = None,
    **options,
) -> dict[str, Task]:
    """Load tasks from ``source``.

    synthetic: generated in memory (``scale``, ``difficulty``); ``path`` must be None.
    pasta-csv: ``path`` is a directory of ``{task}_train.csv`` / ``{task}_test.csv``.
    asap-sas:  ``path`` is a directory with the ASAP-SAS TSV files; ``options`` go to
               :func:`scoring_lab.data.asap_sas.load_asap_sas` (e.g. ``view="ordinal"``).
    """
    if source == "synthetic":
        if path is not None:
            raise DataError(f"the synthetic source takes no path (got {path}); use pasta-csv or asap-sas for files")
        from .synthetic import generate_benchmark

        return generate_benchmark(seed=seed, scale=scale, difficulty=difficulty, val_fraction=val_fraction,
                                  tasks=tasks, **options)
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")
    if path is None:
        raise DataError(f"the {source} source needs a path to the data directory")
    if source == "pasta-csv":
        from .pasta_csv import load_pasta_csv

        return load_pasta_csv(path, tasks=tasks, val_fraction=val_fraction, seed=seed, **options)
    from .asap_sas import load_asap_sas

    return load_asap_sas(path, sets=tasks, val_fraction=val_fraction, seed=seed, **options)
