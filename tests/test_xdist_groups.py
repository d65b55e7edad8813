"""`make test` runs the suite in pytest-xdist workers (``--dist loadgroup``): the tests that share one set of chapter
executions must land in one worker, or every worker executes the chapters again. These tests hold the grouping
(``conftest.xdist_group_of``) and the guard that fails a run whose groups were lost (``conftest.ungrouped``), and
run the two in real workers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ungrouped, worker_threads, xdist_group_of

ROOT = Path(__file__).resolve().parents[1]


class _Item(SimpleNamespace):
    def get_closest_marker(self, name):
        return name if name in self.marks else None


def test_each_chapter_set_is_one_group():
    shape = SimpleNamespace(fixturenames=["shape_run", "chapter"], callspec=SimpleNamespace(params={"shape_run": "csv"}))
    assert xdist_group_of(shape) == "shape-csv"
    assert xdist_group_of(SimpleNamespace(fixturenames=["executed"])) == "book"
    assert xdist_group_of(SimpleNamespace(fixturenames=["built_book", "tmp_path"])) == "book"
    assert xdist_group_of(SimpleNamespace(fixturenames=["tmp_path"])) is None


def test_each_worker_gets_its_share_of_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    worker = lambda n: SimpleNamespace(workerinput={"workercount": n})   # noqa: E731
    assert worker_threads(worker(2), cores=2) == 1 and worker_threads(worker(2), cores=8) == 4
    assert worker_threads(worker(3), cores=2) == 1                        # never none
    assert worker_threads(SimpleNamespace(), cores=2) is None             # not a worker: torch's own default
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_threads(worker(2), cores=8) is None                     # the caller's setting stands


def test_the_guard_names_a_grouped_test_without_its_suffix():
    kept = _Item(nodeid="tests/t.py::test_a[x@y]@book", marks=["xdist_group"])
    lost = _Item(nodeid="tests/t.py::test_b[x@y]", marks=["xdist_group"])   # the '@' inside the brackets is a param
    free = _Item(nodeid="tests/t.py::test_c", marks=[])
    assert ungrouped([kept, lost, free]) == ["tests/t.py::test_b[x@y]"]
    assert ungrouped([kept, free]) == []


def test_grouped_tests_share_a_worker_under_the_pinned_pytest(tmp_path):
    """Three groups of three tests in two real workers: each group's tests report one worker, and a module
    fixture per group is set up once in all (as ``shape_run`` is)."""
    pytest.importorskip("xdist")
    (tmp_path / "conftest.py").write_text(
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        f"spec = importlib.util.spec_from_file_location('book_conftest', {str(ROOT / 'tests' / 'conftest.py')!r})\n"
        "book = sys.modules['book_conftest'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(book)\n"
        "pytest_collection_modifyitems = book.pytest_collection_modifyitems\n"
        "pytest_collection_finish, pytest_runtest_setup = book.pytest_collection_finish, book.pytest_runtest_setup\n")
    (tmp_path / "test_groups.py").write_text(
        "import os, pytest\n"
        "@pytest.fixture(scope='module', params=['a', 'b', 'c'])\n"
        "def shape_run(request):\n"
        "    with open(os.path.join(os.path.dirname(__file__), 'setups.txt'), 'a') as f:\n"
        "        f.write(request.param + '\\n')\n"
        "    return request.param\n"
        "@pytest.mark.parametrize('i', range(3))\n"
        "def test_x(shape_run, i):\n"
        "    with open(os.path.join(os.path.dirname(__file__), 'ran.txt'), 'a') as f:\n"
        "        f.write(f\"{shape_run} {os.environ['PYTEST_XDIST_WORKER']}\\n\")\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ran = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    workers = {}
    for group, worker in ran:
        workers.setdefault(group, set()).add(worker)
    assert len(ran) == 9 and all(len(w) == 1 for w in workers.values()), workers
    assert sorted((tmp_path / "setups.txt").read_text().split()) == ["a", "b", "c"]
