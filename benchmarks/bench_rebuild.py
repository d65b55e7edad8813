"""A warm `make book`, phase by phase: executing the chapters (each current one skipped) and rendering.

    .venv/bin/python benchmarks/bench_rebuild.py [--profile default] [--repeats 3] [--touch CHAPTER]

Runs what `make book` runs, ``scoring-lab book execute`` then ``jupyter-book build .``, ``--repeats`` times
on the book as it is (run `make book` once first, so that the cache and the pages exist), and prints each
phase's median wall seconds and how many chapters were executed rather than skipped. ``--touch CHAPTER``
first executes that chapter again (``--force``), as after an edited caption, so that the render has a
changed page to read.

Not part of the tests: the figures are printed.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(command: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of a command that must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--touch", default=None, help="a chapter to execute again (--force) before each repeat")
    args = ap.parse_args()
    execute = [str(BIN / "scoring-lab"), "book", "execute", "--profile", args.profile]
    render = [str(BIN / "jupyter-book"), "build", ".", "--quiet"]
    rows = []
    for _ in range(args.repeats):
        touched = timed([*execute, "--force", "--chapter", args.touch])[0] if args.touch else 0.0
        run_s, log = timed(execute)
        executed = sum(1 for line in log.splitlines() if line.startswith("== ") and "not executed" not in line)
        render_s, _ = timed(render)
        rows.append((touched, run_s, executed, render_s))
    med = {name: statistics.median(r[i] for r in rows) for i, name in enumerate(("touch", "execute", "n", "render"))}
    print(f"profile {args.profile}, {args.repeats} repeats (medians)")
    if args.touch:
        print(f"  {args.touch} executed again first: {med['touch']:.1f} s")
    print(f"  scoring-lab book execute: {med['execute']:.1f} s ({med['n']:.0f} chapters executed, the rest current)")
    print(f"  jupyter-book build:       {med['render']:.1f} s")
    print(f"  warm make book:           {med['execute'] + med['render']:.1f} s")


if __name__ == "__main__":
    main()
