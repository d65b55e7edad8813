"""Every chapter: its sources are in order, and it executes on the smoke profile."""
import json
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest

from scoring_lab.chapters import chapter_sources, execute_chapter, to_notebook

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


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every chapter executed once on the smoke profile: {stem: executed notebook path}, plus the results root."""
    results = tmp_path_factory.mktemp("results")
    out_dir = tmp_path_factory.mktemp("executed")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_LAB_RESULTS", str(results))
    try:
        outs = {src.stem: execute_chapter(src, out_dir, profile="smoke", cwd=ROOT, progress=False) for src in CHAPTERS}
    finally:
        mp.undo()
    return outs, results


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


def test_book_renders_without_warnings(executed, tmp_path):
    """The smoke-executed chapters render with Jupyter Book 1.x, warnings as errors (broken glue, toc, refs)."""
    import shutil
    import subprocess
    import sys

    outs, _ = executed
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("chapters"))
    (tmp_path / "book" / "chapters").mkdir()
    for stem, nb in outs.items():
        shutil.copy(nb, tmp_path / "book" / "chapters" / f"{stem}.ipynb")
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(tmp_path), "--warningiserror", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (tmp_path / "_build" / "html" / "book" / "chapters" / "00_data.html").read_text()
    assert 'id="fig-prevalence"' in page and page.count("<img") >= 2  # both glued figures rendered
    assert "smoke" in page  # the glued profile name made it into the prose
