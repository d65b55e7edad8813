"""The executor: progress lines per cell, the kernel's output streamed, timing and cache counts
recorded, the Colab badge added as a local image, and a failed chapter still timed."""
import io
import textwrap

import nbformat
import pandas as pd
import pytest

from scoring_lab.book import chapters
from scoring_lab.cli import main, parameter_value

HEADER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
{extra}---
"""


def _chapter(folder, name, body, extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(HEADER.format(extra=extra) + textwrap.dedent(body))
    return path


TINY = """
# A tiny chapter

Some prose.

```{code-cell} ipython3
:tags: [parameters]

profile = "default"
seed = 0
```

```{code-cell} ipython3
from scoring_lab.models.cache import ArtifactCache
cache = ArtifactCache()
for _ in range(2):
    value, hit = cache.get_or_compute("demo", {"x": seed}, lambda d: (d / "v.txt").write_text("42"),
                                      lambda a: a.file("v.txt").read_text())
print("value from the kernel:", value)
```

```{code-cell} ipython3
import time
time.sleep(1.2)
```
"""


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCORING_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "results"


@pytest.mark.slow
def test_progress_timing_cache_counts_and_badge(tmp_path, results, monkeypatch):
    monkeypatch.setattr(chapters, "HEARTBEAT_SECONDS", 0.5)
    src = _chapter(tmp_path / "notebooks", "07_tiny", TINY)
    stream = io.StringIO()
    out = chapters.execute_chapter(src, tmp_path / "out", profile="smoke", stream=stream)
    log = stream.getvalue()
    assert "[07_tiny] cell 1/4 started: profile = \"default\"" in log      # 4 code cells with papermill's injected one
    assert "[07_tiny] cell 3/4 done in" in log and "value from the kernel: 42" in log
    assert "[07_tiny] cell 4/4 still running" in log                        # the silent sleep gets a heartbeat
    assert "(cache: 1 hits, 1 misses)" in log

    timing = pd.read_csv(results / "smoke" / "timing.csv")
    row = timing.set_index("chapter").loc["07_tiny"]
    assert (row["status"], row["cache_hits"], row["cache_misses"]) == ("ok", 1, 1)
    assert row["seconds"] >= 1.2 and row["device"].startswith(("cpu", "cuda"))

    nb = nbformat.read(out, as_version=4)
    title = nb.cells[0].source
    assert title.startswith("# A tiny chapter\n\n[![Open in Colab](../images/colab-badge.svg)]"
                            "(https://colab.research.google.com/github/")
    assert title.rstrip().endswith("Some prose.") and "notebooks/07_tiny.ipynb" in title
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]

    # a rerun finds both lookups in the cache: a warm row beside the cold one, which stays on record
    chapters.execute_chapter(src, tmp_path / "out", profile="smoke", progress=False)
    timing = pd.read_csv(results / "smoke" / "timing.csv")
    assert timing["chapter"].tolist() == ["07_tiny", "07_tiny"] and timing["run"].tolist() == ["cold", "warm"]
    assert timing[["cache_hits", "cache_misses"]].values.tolist() == [[1, 1], [2, 0]]
    chapters.execute_chapter(src, tmp_path / "out", profile="smoke", progress=False)   # a warm rerun replaces warm
    assert pd.read_csv(results / "smoke" / "timing.csv")["run"].tolist() == ["cold", "warm"]


@pytest.mark.slow
def test_generated_pages_take_no_badge(tmp_path, results):
    src = _chapter(tmp_path / "notebooks", "95_page", "# A page\n", extra="scoring_lab:\n  colab: false\n")
    out = chapters.execute_chapter(src, tmp_path / "out", profile="smoke", progress=False)
    markdown = [c.source for c in nbformat.read(out, as_version=4).cells if c.cell_type == "markdown"]
    assert markdown == ["# A page"]


@pytest.mark.slow
def test_a_failing_chapter_is_timed_as_failed_and_raises(tmp_path, results):
    import papermill

    body = "# Broken\n\n```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n"
    src = _chapter(tmp_path / "notebooks", "08_broken", body)
    stream = io.StringIO()
    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        chapters.execute_chapter(src, tmp_path / "out", profile="smoke", stream=stream)
    assert "[08_broken] cell 1/2 FAILED" in stream.getvalue() or "[08_broken] cell 2/2 FAILED" in stream.getvalue()
    rows = pd.read_csv(results / "smoke" / "timing.csv").set_index("chapter").loc[["08_broken"]]
    assert rows["status"].tolist() == ["failed"]


def test_select_chapters_by_stem_short_name_or_all(tmp_path):
    for name in ("00_data", "01_scorers", "90_claims"):
        _chapter(tmp_path, name, "# x\n")
    stems = lambda names: [p.stem for p in chapters.select_chapters(names, tmp_path)]  # noqa: E731
    assert stems(["scorers"]) == ["01_scorers"]
    assert stems(["90_claims", "data"]) == ["00_data", "90_claims"]
    assert stems(["all"]) == stems(None) == ["00_data", "01_scorers", "90_claims"]
    with pytest.raises(ValueError, match=r"unknown chapter\(s\) \['nope'\]"):
        chapters.select_chapters(["nope"], tmp_path)


def test_regenerate_commands_name_every_chapter(tmp_path):
    for name in ("00_data", "01_scorers"):
        _chapter(tmp_path, name, "# x\n")
    table = chapters.regenerate_commands(tmp_path, profile="default", seed=3)
    assert table["papermill"].tolist()[1] == ("papermill notebooks/01_scorers.ipynb book/chapters/01_scorers.ipynb "
                                              "-p profile default -p seed 3")
    assert table["scoring-lab"].tolist()[0] == "scoring-lab run 00_data --profile default -p seed 3"


@pytest.mark.parametrize("text, value", [("3", 3), ("0.5", 0.5), ("None", None), ("True", True),
                                         ("false", False), ("asap-sas", "asap-sas"), ("/data/x", "/data/x")])
def test_parameter_values_read_as_papermill_reads_them(text, value):
    assert parameter_value(text) == value and type(parameter_value(text)) is type(value)


@pytest.mark.slow
def test_cli_run_executes_one_chapter_with_parameters(tmp_path, results, capsys):
    body = TINY.replace("seed = 0", "seed = 0\nlabel = 'x'").replace("import time\ntime.sleep(1.2)",
                                                                      "print('label is', label, seed)")
    _chapter(tmp_path / "notebooks", "07_tiny", body)
    argv = ["run", "tiny", "--profile", "smoke", "-p", "seed", "5", "-p", "label", "hello",
            "--notebooks", str(tmp_path / "notebooks"), "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "== [1/1] 07_tiny (profile smoke)" in out and "label is hello 5" in out
    assert main(["run", "nope", "--notebooks", str(tmp_path / "notebooks")]) == 2
    assert "unknown chapter(s) ['nope']" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_names_a_failing_chapter_and_exits_1(tmp_path, results, capsys):
    _chapter(tmp_path / "notebooks", "08_broken", "# Broken\n\n```{code-cell} ipython3\n1 / 0\n```\n")
    argv = ["run", "all", "--profile", "smoke", "--notebooks", str(tmp_path / "notebooks"),
            "--output", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "a chapter failed in cell" in err and "ZeroDivisionError" in err and str(tmp_path / "out") in err


def test_timing_keeps_the_last_cold_and_the_last_warm_run_of_each_chapter(tmp_path):
    path = tmp_path / "timing.csv"
    base = {"profile": "default", "source": "", "status": "ok", "device": "cpu", "finished_utc": "now"}
    pd.DataFrame([{**base, "chapter": "a", "seconds": 90.0, "cache_hits": 0, "cache_misses": 4}],
                 columns=[c for c in chapters.TIMING_COLUMNS if c != "run"]).to_csv(path, index=False)  # an old table
    chapters.record_timing({**base, "chapter": "a", "seconds": 2.0, "cache_hits": 4, "cache_misses": 0}, path)
    chapters.record_timing({**base, "chapter": "b", "seconds": 30.0, "cache_hits": 1, "cache_misses": 2}, path)
    t = chapters.record_timing({**base, "chapter": "a", "seconds": 1.5, "cache_hits": 4, "cache_misses": 0}, path)
    assert t[["chapter", "run", "seconds"]].values.tolist() == [["a", "cold", 90.0], ["a", "warm", 1.5],
                                                               ["b", "cold", 30.0]]
    assert chapters.timing_totals(t) == {"cold": 120.0, "warm": 1.5}
    assert chapters.run_kind(0) == "warm" and chapters.run_kind(3) == "cold"
