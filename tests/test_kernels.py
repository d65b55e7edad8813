"""Chapters executed in one shared kernel (the real-data shapes' runs): each starts from what a kernel of its own
would give it (no names, no figures, its working folder, this process's SCORING_LAB_* variables), its cache
lookups are counted as its own, and a chapter that kills the kernel does not take the next one with it."""
import os

import nbformat
import pytest
from nbclient.exceptions import DeadKernelError

from scoring_lab.book import chapters
from scoring_lab.book.kernels import SharedKernel, preamble
from test_chapter_execution import _chapter

PARAMETERS = """
```{code-cell} ipython3
:tags: [parameters]

profile = "default"
```
"""

LEAVES_TRACES = PARAMETERS + """
```{code-cell} ipython3
import os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
left_behind = 1
plt.figure()
os.environ["SCORING_LAB_LEFT_BEHIND"] = "yes"
os.chdir("/")
from scoring_lab.models.cache import ArtifactCache
ArtifactCache().get_or_compute("demo", {"x": 1}, lambda d: (d / "v.txt").write_text("1"), lambda a: 1)
print("pid", os.getpid())
```
"""

FINDS_A_FRESH_KERNEL = PARAMETERS + """
```{code-cell} ipython3
import os, sys
assert "left_behind" not in globals(), "a name from the previous chapter"
assert "SCORING_LAB_LEFT_BEHIND" not in os.environ, "a variable from the previous chapter"
assert os.environ["SCORING_LAB_SET_HERE"] == "set after the kernel started"
assert os.getcwd() == EXPECTED_CWD, os.getcwd()
assert "matplotlib.pyplot" not in sys.modules or sys.modules["matplotlib.pyplot"].get_fignums() == [], "a figure"
print("pid", os.getpid())
```
"""

KILLS_THE_KERNEL = PARAMETERS + """
```{code-cell} ipython3
import os
os._exit(1)
```
"""


def _pid(notebook) -> str:
    nb = nbformat.read(notebook, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    return text.split("pid", 1)[1].split()[0]


@pytest.mark.slow
def test_each_chapter_finds_the_shared_kernel_as_a_new_one_would_be(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCORING_LAB_CACHE", str(tmp_path / "cache"))
    first = _chapter(tmp_path / "notebooks", "07_first", LEAVES_TRACES)
    second = _chapter(tmp_path / "notebooks", "08_second",
                      FINDS_A_FRESH_KERNEL.replace("EXPECTED_CWD", repr(str(tmp_path.resolve()))))
    with SharedKernel() as kernel:
        out1 = chapters.execute_chapter(first, tmp_path / "out", profile="smoke", progress=False, cwd=tmp_path,
                                        kernel=kernel)
        monkeypatch.setenv("SCORING_LAB_SET_HERE", "set after the kernel started")
        out2 = chapters.execute_chapter(second, tmp_path / "out", profile="smoke", progress=False, cwd=tmp_path,
                                        kernel=kernel)
        assert kernel.chapters == 2 and not kernel.km.lent       # every client's channels closed
        km = kernel.km
    assert _pid(out1) == _pid(out2)                               # one kernel for both
    assert not km.has_kernel                                      # shut down on leaving the block
    timing = pd_read(tmp_path / "results" / "smoke" / "timing.csv")
    assert timing.set_index("chapter")["cache_misses"].to_dict() == {"07_first": 1, "08_second": 0}


@pytest.mark.slow
def test_a_chapter_that_kills_the_shared_kernel_fails_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCORING_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SCORING_LAB_SET_HERE", "set after the kernel started")
    killer = _chapter(tmp_path / "notebooks", "07_killer", KILLS_THE_KERNEL)
    after = _chapter(tmp_path / "notebooks", "08_after",
                     FINDS_A_FRESH_KERNEL.replace("EXPECTED_CWD", repr(str(tmp_path.resolve()))))
    with SharedKernel() as kernel:
        with pytest.raises(DeadKernelError):
            chapters.execute_chapter(killer, tmp_path / "out", profile="smoke", progress=False, cwd=tmp_path,
                                     kernel=kernel)
        out = chapters.execute_chapter(after, tmp_path / "out", profile="smoke", progress=False, cwd=tmp_path,
                                       kernel=kernel)
    assert _pid(out).isdigit() and kernel.chapters == 2
    timing = pd_read(tmp_path / "results" / "smoke" / "timing.csv")
    assert timing.set_index("chapter")["status"].to_dict() == {"07_killer": "failed", "08_after": "ok"}


def test_the_preamble_sets_this_process_variables_and_removes_the_rest(monkeypatch):
    code = preamble("/some/folder", {"SCORING_LAB_RESULTS": "/r", "HOME": "/elsewhere"})
    resets = []
    namespace = {"get_ipython": lambda: type("Shell", (), {"run_line_magic": lambda self, *a: resets.append(a)})()}
    monkeypatch.setenv("SCORING_LAB_STALE", "x")
    monkeypatch.setenv("SCORING_LAB_RESULTS", "/before")
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setattr(os, "chdir", lambda path: namespace.setdefault("cwd", path))
    exec(code, namespace)
    assert namespace["cwd"] == "/some/folder" and resets == [("reset", "-f")] * 2
    assert os.environ["SCORING_LAB_RESULTS"] == "/r" and "SCORING_LAB_STALE" not in os.environ
    assert os.environ["HOME"] == "/root"          # only the project's variables are touched


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)
