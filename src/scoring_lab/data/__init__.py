"""Data: the synthetic benchmark (the embedded default) and real-data loaders.

Every source returns ``dict[str, Task]`` (task name -> :class:`Task`), so a chapter
works the same on the synthetic benchmark, the PASTA CSV files, ASAP-SAS or a plain
scored CSV/TSV file.
"""
from __future__ import annotations

import inspect
from pathlib import Path

from ..errors import DataError
from .task import Split, Task

__all__ = ["DataError", "Split", "Task", "load_tasks", "SOURCES"]

SOURCES = ("synthetic", "pasta-csv", "asap-sas", "csv")


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
    csv:       ``path`` is ONE CSV or TSV file, one row per response; ``options`` go to
               :func:`scoring_lab.data.scored_csv.load_scored_csv` (e.g.
               ``load_tasks("csv", f, text_column="answer", prompt_column="question")``).

    ``seed``, ``val_fraction`` and ``tasks`` reach every loader (``tasks`` as ASAP-SAS's
    ``sets``); ``scale`` and ``difficulty`` are the synthetic benchmark's only. An option the
    source's loader does not take is a DataError listing the options it does take.
    """
    if source == "synthetic":
        if path is not None:
            raise DataError(f"the synthetic source takes no path (got {path}); "
                            "use pasta-csv, asap-sas or csv for files")
        from .synthetic import generate_benchmark

        _check_options(source, generate_benchmark, options, ("seed", "scale", "difficulty", "val_fraction", "tasks"))
        return generate_benchmark(seed=seed, scale=scale, difficulty=difficulty, val_fraction=val_fraction,
                                  tasks=tasks, **options)
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")
    if path is None:
        what = "the data file (CSV or TSV)" if source == "csv" else "the data directory"
        raise DataError(f"the {source} source needs a path to {what}")
    if source == "pasta-csv":
        from .pasta_csv import load_pasta_csv

        _check_options(source, load_pasta_csv, options, ("path", "tasks", "val_fraction", "seed"))
        return load_pasta_csv(path, tasks=tasks, val_fraction=val_fraction, seed=seed, **options)
    if source == "csv":
        from .scored_csv import load_scored_csv

        _check_options(source, load_scored_csv, options, ("path", "tasks", "val_fraction", "seed"))
        return load_scored_csv(path, tasks=tasks, val_fraction=val_fraction, seed=seed, **options)
    from .asap_sas import load_asap_sas

    _check_options(source, load_asap_sas, options, ("path", "sets", "val_fraction", "seed"))
    return load_asap_sas(path, sets=tasks, val_fraction=val_fraction, seed=seed, **options)


def _check_options(source: str, loader, options: dict, given: tuple[str, ...]) -> None:
    """A DataError naming every key of ``options`` that ``loader`` does not take (``given`` are
    the arguments load_tasks itself passes)."""
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in given]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise DataError(f"unknown option(s) {unknown} for the {source} source; its options are {accepted}")
