"""Shared fixtures. Tests never write into the developer's cache or results folders.

``executed``: every chapter executed once on the smoke profile (session-wide).
``built_book``: those chapters rendered by Jupyter Book 1.x in a temporary copy of the
book, strictly (``-W -n --keep-going``: warnings are errors, nitpicky references).

The ``slow`` marker: tests that execute chapters, build the book, load it in the browser or train
for more than a few seconds. ``pytest -m "not slow"`` runs the unit tests alone (about a minute);
a bare ``pytest`` runs everything in one process; ``make test`` runs it in one pytest-xdist worker per physical
core (``-n auto --dist loadgroup``), each worker's computations in its share of the cores (:func:`worker_threads`).
A test that uses ``executed``, ``built_book`` or ``shape_run`` (directly or through another fixture) is marked slow
here, and put in its fixture's xdist group (:func:`xdist_group_of`), so a new chapter test needs no marker.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    threads = worker_threads(config)
    if threads:                     # before torch (or any OpenMP library) loads here or in a kernel started here
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
    config.addinivalue_line("markers", "slow: executes chapters, builds the book, runs the browser or trains "
                                       "for more than a few seconds; deselect with -m \"not slow\"")


@pytest.hookimpl(tryfirst=True)   # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = xdist_group_of(item)   # a test that needs a chapter set is slow, and runs where that set runs
        if group:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(group))


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_threads(config, cores: int | None = None) -> int | None:
    """The threads each pytest-xdist worker's computations may use: the cores shared out among the workers
    (``None`` outside a worker, or where the caller set ``OMP_NUM_THREADS`` itself). Measured on 2 cores: two
    real-data shapes executed side by side take 92 s with one thread each and 182 s with torch's default two
    each, against 90 s for one alone: OpenMP threads that outnumber the cores spin and wait on each other."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or "OMP_NUM_THREADS" in os.environ:
        return None
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, cores // int(workerinput["workercount"]))


_LOST_GROUPS = pytest.StashKey[str]()


def pytest_collection_finish(session):
    """Under ``--dist loadgroup``, every grouped test must carry its group to the scheduler (pytest-xdist reads it
    from the suffix it appends to the node id). With pytest 9.2 the suffix is silently lost (pytest-xdist#1386):
    each worker then executes every chapter set itself, and ``make test`` takes twice as long. Each grouped test
    then fails at set-up (:func:`pytest_runtest_setup`), saying why, before any chapter executes."""
    if getattr(session.config.option, "loadgroup", False) and hasattr(session.config, "workerinput"):
        lost = ungrouped(session.items)
        if lost:
            session.config.stash[_LOST_GROUPS] = (
                f"--dist loadgroup lost the xdist_group of {len(lost)} tests (first: {lost[0]}): pytest-xdist cannot "
                "group them under this pytest (pytest-xdist#1386); install requirements.lock's pytest")


def pytest_runtest_setup(item):
    if item.config.stash.get(_LOST_GROUPS, None) and item.get_closest_marker("xdist_group"):
        pytest.fail(item.config.stash[_LOST_GROUPS], pytrace=False)


def ungrouped(items) -> list[str]:
    """The node ids of ``items`` that have an ``xdist_group`` marker but not its ``@group`` suffix."""
    return [item.nodeid for item in items
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid.rsplit("]", 1)[-1]]


def xdist_group_of(item) -> str | None:
    """The pytest-xdist group of a test (``make test`` runs ``--dist loadgroup``): the tests that share one
    session's chapter executions run in the same worker, so each set is executed once: ``book`` (the
    smoke-executed chapters, their strict build and the browser check) and one group per real-data shape
    (``shape_run``: every chapter on that shape); ``None`` for a test that needs no chapter set."""
    names = getattr(item, "fixturenames", ())
    if "shape_run" in names:
        return f"shape-{item.callspec.params['shape_run']}"
    if "executed" in names or "built_book" in names:
        return "book"
    return None


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_and_results(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("SCORING_LAB_RESULTS", str(tmp_path_factory.mktemp("results")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """Every chapter executed once on the smoke profile: ({stem: executed notebook path}, results root)."""
    from scoring_lab.book.chapters import chapter_sources, execute_chapter

    results = tmp_path_factory.mktemp("executed-results")
    out_dir = tmp_path_factory.mktemp("executed")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_LAB_RESULTS", str(results))
    try:
        outs = {src.stem: execute_chapter(src, out_dir, profile="smoke", cwd=ROOT, progress=False)
                for src in chapter_sources(ROOT / "notebooks")}
    finally:
        mp.undo()
    return outs, results


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROBLEM = re.compile(r"WARNING|ERROR|CRITICAL|SEVERE|Traceback|Exception|[Ee]rror:")


@dataclass
class BuiltBook:
    """A strict ``jupyter-book build`` of the smoke-executed chapters in a temporary copy."""
    source: Path      # the temporary copy: _config.yml, _toc.yml, book/ (+ executed chapters)
    html: Path        # source/_build/html
    returncode: int
    output: str       # stdout + stderr, colour codes removed
    seconds: float

    @property
    def problems(self) -> list[str]:
        """The build's warning and error lines."""
        return [line for line in self.output.splitlines() if _PROBLEM.search(line)]

    def failure_message(self) -> str:
        lines = self.problems or self.output.splitlines()[-40:]
        return (f"`jupyter-book build -W -n --keep-going` exited {self.returncode} "
                f"with {len(self.problems)} warning/error line(s):\n" + "\n".join(lines))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.problems


@pytest.fixture(scope="session")
def built_book(executed, tmp_path_factory) -> BuiltBook:
    """The book as `make book` renders it (same _config.yml, _toc.yml and book/ pages), with the
    smoke-executed chapters in book/chapters/. Does not fail by itself: tests check ``.ok``."""
    outs, _ = executed
    site = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, site / name)
    shutil.copytree(ROOT / "book", site / "book", ignore=shutil.ignore_patterns("chapters", "_build"))
    (site / "book" / "chapters").mkdir()
    for stem, nb in outs.items():
        shutil.copy(nb, site / "book" / "chapters" / f"{stem}.ipynb")
    jb = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    proc = subprocess.run([str(jb), "build", str(site), "-W", "-n", "--keep-going", "--quiet"],
                          capture_output=True, text=True, cwd=site)
    seconds = time.perf_counter() - start
    output = _ANSI.sub("", proc.stdout + "\n" + proc.stderr)
    return BuiltBook(site, site / "_build" / "html", proc.returncode, output, seconds)
