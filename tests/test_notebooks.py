"""Every chapter: its sources are in order, and it executes on the smoke profile."""
import json
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest

from scoring_lab.book.chapters import chapter_sources, to_notebook

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_sources(ROOT / "notebooks")
PARAMETERS = {"profile", "source", "data_path", "seed"}


def test_there_are_chapters_and_the_toc_lists_them():
    assert CHAPTERS, "no chapter sources found in notebooks/"
    toc = (ROOT / "_toc.yml").read_text()
    for src in CHAPTERS:
        assert f"book/chapters/{src.stem}" in toc


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_a_parameters_cell(src):
    nb = to_notebook(src)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = {line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line}
    assert PARAMETERS <= names


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_paired_ipynb_matches_its_markdown_source(src):
    """notebooks/X.ipynb (for Colab and papermill) must be regenerated when X.md changes: `make notebooks`."""
    paired = src.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run `make notebooks`"
    want = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in to_notebook(src).cells]
    have = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in jupytext.read(paired).cells]
    assert have == want, f"{paired.name} is out of date: run `make notebooks`"
    raw = json.loads(paired.read_text())
    assert all(not c.get("outputs") for c in raw["cells"] if c["cell_type"] == "code"), "commit it unexecuted"
    assert [c["id"] for c in raw["cells"]] == [f"{src.stem}-{i}" for i in range(len(raw["cells"]))], \
        "cell ids by position (a sync of an unchanged chapter changes nothing): run `make notebooks`"


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_on_smoke_without_errors(src, executed):
    outs, _ = executed
    nb = nbformat.read(outs[src.stem], as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_data_chapter_writes_its_tables(executed):
    _, results = executed
    d = results / "smoke" / "data"
    summary = pd.read_csv(d / "summary.csv")
    assert len(summary) == 9
    assert {"name", "n_labels", "n_train", "n_val", "n_test"} <= set(summary.columns)
    assert summary.set_index("name").loc["layers_in_test_tube", "n_labels"] == 10
    assert (d / "prevalence.png").stat().st_size > 10_000
    prevalence = pd.read_csv(d / "prevalence.csv", index_col=0)
    assert prevalence.shape == (9, 10) and prevalence.isna().sum().sum() == 90 - summary["n_labels"].sum()
    prov = json.loads((d / "run.json").read_text())
    assert prov["profile"]["name"] == "smoke" and prov["seed"] == 0


def test_book_renders_without_warnings(built_book):
    """The smoke-executed chapters render with Jupyter Book 1.x strictly: `-W -n --keep-going`
    (warnings are errors, nitpicky: broken glue, toc, refs) -- the `built_book` fixture, conftest.py."""
    assert built_book.ok, built_book.failure_message()
    page = (built_book.html / "book" / "chapters" / "00_data.html").read_text()
    assert 'id="fig-prevalence"' in page and page.count("<img") >= 2  # both glued figures rendered
    assert "smoke" in page  # the glued profile name made it into the prose


PAPER_CHAPTERS = [s for s in CHAPTERS if int(s.stem[:2]) < 90]   # 90 and above: generated pages


def _results_folder(src) -> str:
    """The chapter's results folder name: the first argument of its `setup(...)` call."""
    import re

    m = re.search(r'setup\("([a-z_]+)"', src.read_text())
    assert m, f"{src.name} has no setup(\"<chapter>\", ...) call"
    return m.group(1)


@pytest.mark.parametrize("src", PAPER_CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_writes_its_claims(src, executed):
    """The convention every chapter follows: results/<profile>/<chapter>/claims.csv, verdicts computed."""
    from scoring_lab.claims import COLUMNS, read_claims

    _, results = executed
    table = read_claims(results / "smoke" / _results_folder(src) / "claims.csv")   # checks every row's fields
    assert list(table.columns) == COLUMNS and len(table) >= 1
    # a measured verdict comes from a test over this run's predictions, with an effect: never from the settings
    judged = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert (judged["effect"].astype(float).notna()).all(), judged
    assert not judged["test"].str.startswith("none").any()


def test_claims_page_gathers_every_chapters_claims_and_timing_is_recorded(executed):
    _, results = executed
    gathered = pd.read_csv(results / "smoke" / "claims" / "all_claims.csv")
    expected = sum(len(pd.read_csv(results / "smoke" / _results_folder(s) / "claims.csv")) for s in PAPER_CHAPTERS)
    assert len(gathered) == expected
    assert set(gathered["chapter"]) == {_results_folder(s) for s in PAPER_CHAPTERS}
    data = gathered[gathered["chapter"] == "data"]
    assert set(data["verdict"]) == {"not tested"}  # smoke shrinks the splits: the shape claim cannot be tested
    timing = pd.read_csv(results / "smoke" / "timing.csv")
    assert set(timing["chapter"]) == {s.stem for s in CHAPTERS}
    assert (timing["status"] == "ok").all() and (timing["seconds"] > 0).all()
    scorers = timing.set_index("chapter").loc["01_scorers"]
    assert scorers["cache_hits"] + scorers["cache_misses"] >= 9   # nine scorers, at least, looked up


def test_generated_pages_show_claims_and_timing(built_book):
    html = built_book.html / "book" / "chapters"
    claims_page = (html / "90_claims.html").read_text()
    assert "not tested" in claims_page and "#e2e3e5" in claims_page   # verdicts spelled out and colour-coded
    assert "GW-SMM" in claims_page and "UniMoE" in claims_page and "mp-IRT" in claims_page
    # <wbr> marks where a long word may wrap (scoring_lab.book.styling): invisible, and not copied with the text
    repro = (html / "91_reproducibility.html").read_text().replace("<wbr>", "")
    assert "01_scorers" in repro and "cache misses" in repro and "papermill notebooks/01_scorers.ipynb" in repro
    assert "colab-badge.svg" not in repro and "colab-badge.svg" in (html / "01_scorers.html").read_text()
