"""Executing the book's chapters: jupytext source -> papermill -> executed notebook.

``notebooks/<name>.md`` (MyST, the source of truth) is paired with
``notebooks/<name>.ipynb`` (unexecuted, for Colab and for papermill by hand).
:func:`execute_chapter` runs one chapter with papermill parameters into
``book/chapters/<name>.ipynb``, which ``jupyter-book build`` renders without
re-executing.
"""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat


def chapter_sources(notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """The chapters' MyST sources, in book order (their file names start with a number)."""
    return sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.md"))


def to_notebook(source: str | Path) -> nbformat.NotebookNode:
    """Read a MyST markdown chapter as an (unexecuted) notebook."""
    nb = jupytext.read(source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def sync_notebook(source: str | Path) -> Path:
    """Write the paired ``.ipynb`` of a MyST chapter; returns its path."""
    source = Path(source)
    target = source.with_suffix(".ipynb")
    jupytext.write(to_notebook(source), target)
    return target


def execute_chapter(source: str | Path, output_dir: str | Path = "book/chapters", *,
                    profile: str = "default", cwd: str | Path | None = None, progress: bool = True,
                    **parameters) -> Path:
    """Execute one chapter with papermill on ``profile``; returns the executed notebook's path."""
    import papermill as pm

    source = Path(source)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    unexecuted = output_dir / f".{source.stem}.input.ipynb"
    nbformat.write(to_notebook(source), unexecuted)
    out = output_dir / f"{source.stem}.ipynb"
    try:
        pm.execute_notebook(str(unexecuted), str(out), parameters={"profile": profile, **parameters},
                            cwd=str(cwd) if cwd else None, progress_bar=progress, kernel_name="python3")
    finally:
        unexecuted.unlink(missing_ok=True)
    _hide_injected_parameters(out)
    return out


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the book shows the parameters
    cell itself, and the run's profile and seed in the prose."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def execute_all(notebooks_dir: str | Path = "notebooks", output_dir: str | Path = "book/chapters", *,
                profile: str = "default", cwd: str | Path | None = None, only: list[str] | None = None) -> list[Path]:
    """Execute every chapter (or those whose stem is in ``only``) in book order."""
    sources = chapter_sources(notebooks_dir)
    if only:
        wanted = set(only)
        unknown = wanted - {s.stem for s in sources}
        if unknown:
            raise ValueError(f"unknown chapter(s) {sorted(unknown)}; known: {[s.stem for s in sources]}")
        sources = [s for s in sources if s.stem in wanted]
    outs = []
    for i, s in enumerate(sources, 1):
        print(f"[{i}/{len(sources)}] {s.stem} ({profile})", flush=True)
        outs.append(execute_chapter(s, output_dir, profile=profile, cwd=cwd, progress=True))
    return outs
