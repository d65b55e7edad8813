"""The determinism check: run chapters twice from two empty caches and compare every results CSV.

Two runs of the same profile and seed must write the same tables, bit for bit,
except where a column is a wall-clock measurement, which no rerun repeats:
columns named in :data:`WALL_CLOCK_COLUMNS` or with ``seconds`` or ``latency`` among the words
of their name (``seconds``, ``train_seconds``, ``seconds_per_epoch``, ``latency_ms_batch1``), the value and
verdict of a claim measured in wall-clock time (its note starts with
:data:`WALL_CLOCK_NOTE`), and the timing table ``timing.csv``. The check says what
it left out.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..claims import WALL_CLOCK_NOTE
from ..paths import RESULTS_ENV, environment

WALL_CLOCK_COLUMNS = frozenset({"seconds", "device", "finished_utc", "train_minutes", "models_per_hour"})
WALL_CLOCK_FILES = frozenset({"timing.csv"})
TIMED_CLAIM_COLUMNS = ("our_value", "verdict", "effect", "ci_low", "ci_high")


def is_wall_clock(column: str) -> bool:
    """Whether a results column holds a measured time (excluded from the comparison)."""
    words = str(column).split("_")
    return column in WALL_CLOCK_COLUMNS or "seconds" in words or "latency" in words


def results_csvs(root: str | Path) -> dict[str, Path]:
    """Every results CSV under ``root``, by its path relative to ``root`` (timing tables excepted)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.csv"))
            if p.name not in WALL_CLOCK_FILES}


def compare_results(a: str | Path, b: str | Path) -> tuple[list[str], list[str]]:
    """(differences, ignored): each difference names the file, row and column where two results
    trees disagree; ``ignored`` lists the wall-clock columns left out, as ``file:column``."""
    left, right = results_csvs(a), results_csvs(b)
    differences = [f"{name}: only in {a}" for name in sorted(left.keys() - right.keys())]
    differences += [f"{name}: only in {b}" for name in sorted(right.keys() - left.keys())]
    ignored = []
    for name in sorted(left.keys() & right.keys()):
        x = pd.read_csv(left[name], dtype=str, keep_default_na=False)
        y = pd.read_csv(right[name], dtype=str, keep_default_na=False)
        if list(x.columns) != list(y.columns):
            differences.append(f"{name}: columns differ: {list(x.columns)} vs {list(y.columns)}")
            continue
        if len(x) != len(y):
            differences.append(f"{name}: {len(x)} rows vs {len(y)} rows")
            continue
        timed = (x["note"].str.startswith(WALL_CLOCK_NOTE) & y["note"].str.startswith(WALL_CLOCK_NOTE)).to_numpy() \
            if {"note", "our_value", "verdict"} <= set(x.columns) else np.zeros(len(x), dtype=bool)
        if timed.any():
            ignored.append(f"{name}: our_value, verdict, effect and interval of {int(timed.sum())} wall-clock "
                           "claim(s)")
        for col in x.columns:
            if is_wall_clock(col):
                ignored.append(f"{name}:{col}")
                continue
            differs = (x[col] != y[col]).to_numpy()
            if col in TIMED_CLAIM_COLUMNS:
                differs &= ~timed
            unequal = differs.nonzero()[0]
            if len(unequal):
                r = int(unequal[0])
                differences.append(f"{name}, row {r + 1}, column {col!r}: {x[col].iloc[r]!r} vs {y[col].iloc[r]!r}"
                                   + (f" (and {len(unequal) - 1} more rows)" if len(unequal) > 1 else ""))
    return differences, ignored


def run_once(profile: str, results: Path, cache: Path, only: list[str] | None, notebooks_dir: str | Path,
             output_dir: Path, progress: bool) -> None:
    """Execute the chapters with ``results`` and ``cache`` as the results and cache roots."""
    from ..models.cache import CACHE_ENV
    from .chapters import execute_all

    with environment(**{RESULTS_ENV: str(results), CACHE_ENV: str(cache)}):
        execute_all(notebooks_dir, output_dir, profile=profile, only=only, progress=progress)


def reproduce_check(profile: str = "smoke", only: list[str] | None = None, notebooks_dir: str | Path = "notebooks",
                    workdir: str | Path | None = None, progress: bool = True) -> list[str]:
    """Run the chapters twice, each from an empty cache, and compare their results; returns the
    differences (empty: bit-identical) after printing a verdict."""
    with tempfile.TemporaryDirectory(prefix="scoring-lab-reproduce-") as tmp:
        base = Path(workdir) if workdir else Path(tmp)
        for run in ("a", "b"):
            if progress:
                print(f"== reproduce-check: run {run} of {profile} from an empty cache", flush=True)
            run_once(profile, base / run / "results", base / run / "cache", only, notebooks_dir,
                     base / run / "executed", progress)
        return compare_trees(base / "a" / "results", base / "b" / "results", f"two cold runs of {profile}")


def compare_trees(a: str | Path, b: str | Path, what: str | None = None) -> list[str]:
    """Compare two results trees (``results/`` folders, or one profile's or chapter's folder in each),
    print a verdict naming every difference and the wall-clock columns left out, and return the
    differences (empty: every results CSV identical)."""
    what = what or f"{a} and {b}"
    differences, ignored = compare_results(a, b)
    n_files = len(results_csvs(a))
    if ignored:
        print(f"left out, as wall-clock measurements: {', '.join(ignored)}")
    if differences:
        print(f"NOT REPRODUCED: {len(differences)} difference(s) between {what}:")
        for d in differences:
            print(f"  {d}")
    elif n_files == 0:
        differences = [f"no results CSV under {a}"]
        print(f"NOT REPRODUCED: {differences[0]}")
    else:
        print(f"reproduced: {n_files} results CSVs identical across {what}")
    return differences
