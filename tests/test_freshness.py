"""A warm rebuild skips a chapter whose page and results are current (content-addressed), and executes it
again when anything it was made from changed, or its page or results did, or with --force."""
import json
import textwrap

import pandas as pd
import pytest

from scoring_lab.book import chapters, freshness
from scoring_lab.cli import main

HEADER = """\
---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
{extra}---
"""

WRITER = """
# Writes a table

```{code-cell} ipython3
:tags: [parameters]

profile = "default"
seed = 0
```

```{code-cell} ipython3
import pandas as pd
from scoring_lab.book.run import setup
run = setup("writer", profile=profile, seed=seed)
run.save_table("numbers", pd.DataFrame({"x": [seed, 2]}))
```
"""

READER = """
# Reads the tables

```{code-cell} ipython3
:tags: [parameters]

profile = "default"
```

```{code-cell} ipython3
import pandas as pd
from scoring_lab.book.run import setup
run = setup("reader", profile=profile)
print(pd.read_csv(run.results_dir.parent / "writer" / "numbers.csv")["x"].sum())
```
"""


def _write(folder, name, body, extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(HEADER.format(extra=extra) + textwrap.dedent(body))
    return path


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCORING_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "results" / "smoke"


# ----------------------------------------------------------------------------- the stamp, without a kernel
def _stamped(tmp_path):
    results = tmp_path / "results"
    (results / "ch").mkdir(parents=True)
    (results / "timing.csv").write_text("old\n")
    before = freshness.snapshot(results)
    (results / "ch" / "table.csv").write_text("a\n1\n")
    (results / "timing.csv").write_text("new\n")
    page = tmp_path / "out" / "01_ch.ipynb"
    page.parent.mkdir()
    page.write_text("{}")
    written = freshness.written_since(results, before)
    freshness.write_stamp(results, "01_ch", "inputs-1", page, written)
    return results, page, written


def test_the_stamp_records_what_the_run_wrote_and_the_executors_table_is_not_the_chapters(tmp_path):
    results, page, written = _stamped(tmp_path)
    assert written == ["ch/table.csv"]
    stamp = json.loads(freshness.stamp_path(results, "01_ch").read_text())
    assert stamp["outputs"] == {"ch/table.csv": freshness.file_digest(results / "ch" / "table.csv")}
    assert stamp["page_digest"] == freshness.file_digest(page)
    assert freshness.is_current(results, "01_ch", "inputs-1", page) == (
        True, "inputs and code unchanged, page and results intact")
    assert ".stamps/01_ch.json" not in freshness.snapshot(results)   # stamps are not results


@pytest.mark.parametrize("change, why", [
    ("inputs", "its source, parameters, code or environment changed"),
    ("page", "its executed page"),
    ("result edited", "its results file ch/table.csv is missing or changed"),
    ("result removed", "its results file ch/table.csv is missing or changed"),
    ("stamp removed", "never executed here"),
    ("stamp garbled", "not readable"),
])
def test_anything_changed_makes_the_page_stale(tmp_path, change, why):
    results, page, _ = _stamped(tmp_path)
    inputs = "inputs-2" if change == "inputs" else "inputs-1"
    if change == "page":
        page.write_text('{"cells": []}')
    elif change == "result edited":
        (results / "ch" / "table.csv").write_text("a\n2\n")
    elif change == "result removed":
        (results / "ch" / "table.csv").unlink()
    elif change == "stamp removed":
        freshness.remove_stamp(results, "01_ch")
    elif change == "stamp garbled":
        freshness.stamp_path(results, "01_ch").write_text("{")
    current, reason = freshness.is_current(results, "01_ch", inputs, page)
    assert not current and why in reason


def test_the_same_page_elsewhere_is_not_current(tmp_path):
    results, page, _ = _stamped(tmp_path)
    elsewhere = tmp_path / "other" / page.name
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(page.read_bytes())
    assert not freshness.is_current(results, "01_ch", "inputs-1", elsewhere)[0]


def test_the_inputs_digest_follows_source_parameters_environment_and_earlier_stamps(tmp_path):
    source = _write(tmp_path / "nb", "01_a", WRITER)
    book = tmp_path / "book"
    book.mkdir()
    results = tmp_path / "results"

    def digest(params=None, earlier=()):
        return freshness.inputs_digest(source, params or {"profile": "smoke"}, results, book, list(earlier))

    first = digest()
    assert digest() == first and len(first) == 64
    assert digest({"profile": "smoke", "seed": 1}) != first
    assert digest({"profile": "default"}) != first
    (book / "_config.yml").write_text("repository: {url: https://github.com/x/y}\n")
    assert digest() != first
    first = digest()
    (book / "requirements.lock").write_text("torch==2.13.0\n")
    assert digest() != first
    first = digest()
    source.write_text(source.read_text() + "\nMore prose.\n")
    assert digest() != first
    first = digest(earlier=["00_x"])
    freshness.stamp_path(results, "00_x").parent.mkdir(parents=True)
    freshness.stamp_path(results, "00_x").write_text("{}")
    assert digest(earlier=["00_x"]) != first


def test_a_page_that_names_the_files_it_reads_follows_their_bytes_alone(tmp_path):
    results = tmp_path / "results"
    (results / "a").mkdir(parents=True)
    (results / "a" / "claims.csv").write_text("verdict\nheld\n")
    (results / "a" / "other.csv").write_text("x\n1\n")
    read = freshness.results_digests(results, "*/claims.csv")
    assert list(read) == ["a/claims.csv"]
    (results / "a" / "other.csv").write_text("x\n2\n")             # not read: no change
    freshness.stamp_path(results, "a").parent.mkdir(parents=True)
    freshness.stamp_path(results, "a").write_text("{}")             # a stamp is never a results file
    assert freshness.results_digests(results, "*/claims.csv") == read
    (results / "a" / "claims.csv").write_text("verdict\nnot held\n")  # changed
    assert freshness.results_digests(results, "*/claims.csv") != read
    (results / "b").mkdir()
    (results / "b" / "claims.csv").write_text("verdict\nheld\n")     # appeared
    assert list(freshness.results_digests(results, "*/claims.csv")) == ["a/claims.csv", "b/claims.csv"]
    assert freshness.results_digests(tmp_path / "none", "*/claims.csv") == {}
    header = {"scoring_lab": {"reads_results": "*/claims.csv"}}
    assert freshness.reads_results(type("Nb", (), {"metadata": header})) == "*/claims.csv"
    assert freshness.reads_results(type("Nb", (), {"metadata": {"scoring_lab": {"reads_results": True}}})) is True
    assert freshness.reads_results(type("Nb", (), {"metadata": {}})) is False
    with pytest.raises(ValueError, match="reads_results is an empty glob"):
        freshness.reads_results(type("Nb", (), {"metadata": {"scoring_lab": {"reads_results": " "}}}))
    assert freshness.code_digest() == freshness.code_digest() and len(freshness.code_digest()) == 64


# ----------------------------------------------------------------------------- executed
@pytest.mark.slow
def test_a_warm_rebuild_skips_current_chapters_and_executes_what_changed(tmp_path, results, capsys):
    nbs, out = tmp_path / "notebooks", tmp_path / "out"
    writer = _write(nbs, "01_writer", WRITER)
    _write(nbs, "02_reader", READER, extra="scoring_lab:\n  reads_results: true\n")

    def build(*extra):
        assert main(["book", "execute", "--profile", "smoke", "--notebooks", str(nbs), "--output", str(out),
                     *extra]) == 0
        log = capsys.readouterr().out
        return [line for line in log.splitlines() if line.startswith("== ")]

    _write(nbs, "03_table_reader", READER, extra="scoring_lab:\n  reads_results: writer/numbers.csv\n")

    first = build()
    assert first == ["== [1/3] 01_writer (profile smoke): never executed here",
                     "== [2/3] 02_reader (profile smoke): never executed here",
                     "== [3/3] 03_table_reader (profile smoke): never executed here"]
    page, table = out / "01_writer.ipynb", results / "writer" / "numbers.csv"
    stamp = json.loads(freshness.stamp_path(results, "01_writer").read_text())
    assert set(stamp["outputs"]) == {"writer/numbers.csv", "writer/run.json"}
    timing = pd.read_csv(results / "timing.csv")
    page_bytes = page.read_bytes()

    assert build() == [f"== [{i}/3] {c} (profile smoke): current (inputs and code unchanged, page and results "
                       "intact); not executed (--force executes it)"
                       for i, c in ((1, "01_writer"), (2, "02_reader"), (3, "03_table_reader"))]
    assert page.read_bytes() == page_bytes
    pd.testing.assert_frame_equal(pd.read_csv(results / "timing.csv"), timing)   # nothing ran, nothing timed

    # an edited caption executes that chapter, and the page made from it
    writer.write_text(writer.read_text() + "\nA new caption.\n")
    second = build()
    assert second[0].endswith("its source, parameters, code or environment changed")
    assert second[1].endswith("its source, parameters, code or environment changed")   # the writer's stamp changed
    assert second[2].endswith("not executed (--force executes it)")     # the table it reads is byte for byte the same
    assert "A new caption." in page.read_text()
    writer.write_text(writer.read_text().replace("[seed, 2]", "[seed, 3]"))   # a new table: its reader follows
    assert all(line.endswith("its source, parameters, code or environment changed") for line in build())

    # an edited result executes the chapter that wrote it again (the reader's page follows)
    table.write_text("x\n99\n")
    assert build()[0].endswith("its results file writer/numbers.csv is missing or changed")
    assert pd.read_csv(table)["x"].tolist() == [0, 3]

    # new parameters, --force, and a single chapter by name
    assert build("--chapter", "reader")[0].endswith("not executed (--force executes it)")
    assert build("--force", "--chapter", "reader") == ["== [1/1] 02_reader (profile smoke)"]
    assert all(line.endswith("not executed (--force executes it)") for line in build())


@pytest.mark.slow
def test_a_failed_chapter_is_never_current(tmp_path, results):
    import papermill

    nbs = tmp_path / "notebooks"
    broken = _write(nbs, "01_broken", "# Broken\n\n```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n")
    (results).mkdir(parents=True)
    freshness.stamp_path(results, "01_broken").parent.mkdir(parents=True)
    freshness.stamp_path(results, "01_broken").write_text("{}")   # a stamp from an earlier success
    with pytest.raises(papermill.PapermillExecutionError):
        chapters.execute_chapter(broken, tmp_path / "out", profile="smoke", progress=False)
    assert not freshness.stamp_path(results, "01_broken").exists()
    assert chapters.current_page(broken, tmp_path / "out", profile="smoke") == (False, "never executed here")
