"""Where a book build's time goes, per chapter: its last cold and last warm wall time, and what starting
its kernel's imports costs.

    .venv/bin/python benchmarks/bench_book.py [--profile default] [--repeats 3]

* cold and warm seconds, from ``results/<profile>/timing.csv`` (the executor keeps each chapter's last
  run of both kinds; run ``make book`` twice, from an empty cache and then again, to fill both);
* import seconds: a fresh Python process running the chapter's own import lines (those of its code
  cells, Colab's install cell aside), the median of ``--repeats``; beside it, a bare interpreter's
  start, which every kernel pays too.

Not part of the tests: the figures are printed.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import pandas as pd

from scoring_lab.book import chapters


def import_lines(source) -> list[str]:
    """The ``import`` / ``from ... import`` lines of a chapter's code cells (top level, one line each)."""
    nb = chapters.to_notebook(source)
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "google.colab" in cell.source:
            continue
        lines += [ln for ln in cell.source.splitlines() if ln.startswith(("import ", "from ")) and "(" not in ln]
    return list(dict.fromkeys(lines))


def seconds_to_run(code: str, repeats: int) -> float:
    """Median wall seconds of a fresh interpreter running ``code``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = chapters.timing_path(args.profile)
    timing = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=chapters.TIMING_COLUMNS)
    if len(timing) and "run" not in timing:
        timing = timing.assign(run=timing["cache_misses"].map(chapters.run_kind))
    bare = seconds_to_run("pass", args.repeats)
    print(f"profile {args.profile}, {path}; a bare interpreter starts in {bare:.2f} s")
    print(f"{'chapter':<22}{'cold s':>9}{'warm s':>9}{'imports s':>11}")
    for source in chapters.chapter_sources():
        rows = timing[timing["chapter"] == source.stem].set_index("run")["seconds"] if len(timing) else {}
        cold, warm = (f"{rows[k]:.1f}" if k in rows else "-" for k in (chapters.COLD, chapters.WARM))
        imports = seconds_to_run("\n".join(import_lines(source)) or "pass", args.repeats)
        print(f"{source.stem:<22}{cold:>9}{warm:>9}{imports:>11.2f}")


if __name__ == "__main__":
    main()
