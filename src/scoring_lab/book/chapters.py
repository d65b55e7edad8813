"""Executing the book's chapters: jupytext source -> papermill -> executed notebook.

``notebooks/<name>.md`` (MyST, the source of truth) is paired with
``notebooks/<name>.ipynb`` (unexecuted, for Colab and for papermill by hand).
:func:`execute_chapter` runs one chapter with papermill parameters into
``book/chapters/<name>.ipynb``, which ``jupyter-book build`` renders without
re-executing. On the way it

* shows progress a person can follow: a line as each code cell starts and ends,
  with its elapsed time, the kernel's own output (progress bars, prints) streamed
  to the terminal, and a "still running" line when a cell is silent for a minute;
* adds the page's "Open in Colab" badge (a local image; the link opens Colab);
* records the chapter's wall time, cache hits and misses and device in
  ``results/<profile>/timing.csv`` (per chapter, its last cold run, which computed something, and its
  last warm run, which only read the cache back: each replaced by the next of its kind).

Pages whose MyST header carries ``scoring_lab: {colab: false}`` (the generated
appendix pages) get no badge.

The project's home is written in one place, ``repository.url`` in the book's ``_config.yml``: the
badge links to it, and the chapters' Colab install cells say :data:`REPOSITORY_PLACEHOLDER`, which
:func:`to_notebook` replaces with it (so the paired ``.ipynb`` that Colab opens, written by
``scoring-lab book sync``, installs from there; on Colab the package is not installed yet, so that
cell cannot read the address itself).
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import yaml

from ..models.cache import CACHE_LOG_ENV, lookup_counts
from . import freshness
from .kernels import SharedKernel
from ..models.latency import device_description
from ..paths import environment, project_root, results_root, results_tag

PAGE_METADATA = "scoring_lab"
BADGE_IMAGE = "../images/colab-badge.svg"   # relative to book/chapters/
REPOSITORY_PLACEHOLDER = "{repository.url}"   # in a code cell: replaced by _config.yml's repository.url
TIMING_FILE = "timing.csv"
TIMING_COLUMNS = ["chapter", "run", "profile", "source", "status", "seconds", "cache_hits", "cache_misses", "device",
                  "finished_utc"]
COLD, WARM = "cold", "warm"   # a run with cache misses (it computed), one without (it only read back)
HEARTBEAT_SECONDS = 60.0


# ----------------------------------------------------------------------------- sources
def chapter_sources(notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """The chapters' MyST sources, in book order (their file names start with a number)."""
    return sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.md"))


def select_chapters(names: list[str] | None, notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """The sources named by ``names`` (file stems like ``01_scorers``, or ``scorers``; ``all`` or
    None for every chapter), in book order."""
    sources = chapter_sources(notebooks_dir)
    if not names or "all" in names:
        return sources
    by_name = {s.stem: s for s in sources} | {s.stem.split("_", 1)[1]: s for s in sources}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown chapter(s) {sorted(unknown)}; known: {[s.stem for s in sources]}")
    wanted = {by_name[n] for n in names}
    return [s for s in sources if s in wanted]


def to_notebook(source: str | Path) -> nbformat.NotebookNode:
    """Read a MyST markdown chapter as an (unexecuted) notebook, with :data:`REPOSITORY_PLACEHOLDER` in its
    code cells replaced by the repository URL of the book (the ``_config.yml`` above ``source``)."""
    nb = jupytext.read(source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    cells = [c for c in nb.cells if c.cell_type == "code" and REPOSITORY_PLACEHOLDER in c.source]
    if cells:
        repo = repository(_book_root(Path(source)))
        if repo is None:
            raise ValueError(f"{source}: a cell installs from {REPOSITORY_PLACEHOLDER}, but no _config.yml above "
                             "it has a repository.url")
        for cell in cells:
            cell.source = cell.source.replace(REPOSITORY_PLACEHOLDER, repo[0])
    return nb


def _book_root(source: Path) -> Path | None:
    """The nearest folder above ``source`` holding a ``_config.yml``, else the project root."""
    for folder in source.resolve().parents:
        if (folder / "_config.yml").is_file():
            return folder
    return project_root()


def sync_notebook(source: str | Path) -> Path:
    """Write the paired ``.ipynb`` of a MyST chapter; returns its path."""
    source = Path(source)
    target = source.with_suffix(".ipynb")
    nb = to_notebook(source)
    for i, cell in enumerate(nb.cells):   # ids by position: a sync of an unchanged chapter changes nothing
        cell["id"] = f"{source.stem}-{i}"
    jupytext.write(nb, target)
    return target


# ----------------------------------------------------------------------------- progress
def format_seconds(seconds: float) -> str:
    """``4.2s``, ``3m12s`` or ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _cell_summary(cell, width: int = 70) -> str:
    lines = [ln.strip() for ln in cell.source.splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")] or [ln for ln in lines if ln] or ["(empty)"]
    text = code[0]
    return text if len(text) <= width else text[: width - 3] + "..."


class _ActivityStream:
    """A text stream that forwards to ``target`` and notes when it was last written to."""

    def __init__(self, target, progress: "CellProgress"):
        self.target, self.progress = target, progress

    def write(self, text: str) -> int:
        with self.progress.lock:
            self.progress.last_activity = time.monotonic()
            n = self.target.write(text)
            self.target.flush()
        return n

    def flush(self) -> None:
        self.target.flush()


class CellProgress:
    """Terminal progress of one chapter's execution: a line per code cell start and end with
    elapsed times, the kernel's streams passed through, a heartbeat when a cell is silent."""

    def __init__(self, chapter: str, stream=None, heartbeat: float | None = None):
        self.chapter = chapter
        self.stream = stream or sys.stdout
        self.heartbeat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.last_activity = self.started
        self.cell_t0: float | None = None
        self.current = ""
        self.positions: dict[int, int] = {}
        self.stdout = _ActivityStream(sys.stdout if stream is None else stream, self)
        self.stderr = _ActivityStream(sys.stderr if stream is None else stream, self)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def say(self, text: str) -> None:
        """Print one progress line."""
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last_activity = time.monotonic()

    def begin(self, cells) -> None:
        code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
        self.positions = {i: k for k, i in enumerate(code, 1)}
        self._thread.start()

    def cell_started(self, cell, index: int) -> None:
        if cell.cell_type != "code":
            return
        self.cell_t0 = time.monotonic()
        self.current = f"[{self.chapter}] cell {self.positions.get(index, '?')}/{len(self.positions)}"
        self.say(f"{self.current} started: {_cell_summary(cell)}")

    def cell_finished(self, cell, index: int) -> None:
        if cell.cell_type != "code" or self.cell_t0 is None:
            return
        now = time.monotonic()
        failed = cell.metadata.get("papermill", {}).get("exception")
        self.say(f"{self.current} {'FAILED' if failed else 'done'} in {format_seconds(now - self.cell_t0)} "
                   f"(chapter {format_seconds(now - self.started)})")
        self.cell_t0 = None

    def _beat(self) -> None:
        while not self._stop.wait(min(5.0, self.heartbeat / 2)):
            now = time.monotonic()
            if self.cell_t0 is not None and now - self.last_activity >= self.heartbeat:
                self.say(f"{self.current} still running ({format_seconds(now - self.cell_t0)}; "
                           f"chapter {format_seconds(now - self.started)})")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)


def _reporting_engine():
    """papermill's nbclient engine, with the cell start/end hooks reporting to a :class:`CellProgress`."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ReportingEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, progress: CellProgress | None = None, **kwargs):
            if progress is not None:
                start, complete = nb_man.cell_start, nb_man.cell_complete

                def cell_start(cell, cell_index=None, **kw):
                    progress.cell_started(cell, cell_index)
                    return start(cell, cell_index, **kw)

                def cell_complete(cell, cell_index=None, **kw):
                    out = complete(cell, cell_index, **kw)
                    progress.cell_finished(cell, cell_index)
                    return out

                nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
                progress.begin(nb_man.nb.cells)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("scoring-lab", ReportingEngine)
    return "scoring-lab"


# ----------------------------------------------------------------------------- the page
def repository(root: Path | None = None) -> tuple[str, str] | None:
    """(repository URL, branch) from ``repository`` in the book's ``_config.yml`` (``root``, default the
    project's), the one place the project's home is written; None when there is none."""
    root = root or project_root()
    config = {}
    if root is not None and (root / "_config.yml").is_file():
        config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    repo = config.get("repository") or {}
    if not repo.get("url"):
        return None
    return str(repo["url"]).rstrip("/"), str(repo.get("branch") or "main")


def colab_url(chapter: str, repo_url: str, branch: str = "main") -> str:
    """The Colab address that opens ``notebooks/<chapter>.ipynb`` of a GitHub repository."""
    path = repo_url.split("github.com/", 1)[-1]
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{chapter}.ipynb"


def add_colab_badge(nb: nbformat.NotebookNode, chapter: str, repo_url: str, branch: str = "main") -> bool:
    """Put the "Open in Colab" badge (a local image) under the page title; False if the page takes none."""
    if (nb.metadata.get(PAGE_METADATA) or {}).get("colab", True) is False:
        return False
    badge = f"[![Open in Colab]({BADGE_IMAGE})]({colab_url(chapter, repo_url, branch)})"
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("# "):
                cell.source = "\n".join(lines[: i + 1] + ["", badge] + lines[i + 1:])
                return True
    return False


def _finish_page(path: Path, chapter: str, root: Path | None) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` (the book shows the parameters
    cell itself, and the run's profile and seed in the prose) and add the Colab badge."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    repo = repository(root)
    if repo is not None:   # no _config.yml with a repository (a chapter run outside a book): no badge
        add_colab_badge(nb, chapter, *repo)
    nbformat.write(nb, path)


# ----------------------------------------------------------------------------- timing


def run_kind(cache_misses: int) -> str:
    """``cold`` for a run that computed something (a cache miss), ``warm`` for one that only read back."""
    return COLD if int(cache_misses) > 0 else WARM


def record_timing(row: dict, path: str | Path) -> pd.DataFrame:
    """Write ``row`` into the timing table at ``path``, replacing the chapter's previous row of the same kind
    (``run``: cold or warm, from its cache misses when not given), so a warm rebuild keeps the cold cost on
    record. A table written before the column existed gets each row's kind from its misses."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {**row, "run": row.get("run") or run_kind(row["cache_misses"])}
    rows = pd.read_csv(path, keep_default_na=False).to_dict("records") if path.is_file() else []
    for r in rows:
        r["run"] = r.get("run") or run_kind(r["cache_misses"])
    rows = [r for r in rows if (r["chapter"], r["run"]) != (row["chapter"], row["run"])] + [row]
    table = pd.DataFrame(rows, columns=TIMING_COLUMNS)
    table = table.sort_values(["chapter", "run"], kind="stable").reset_index(drop=True)
    table.to_csv(path, index=False)
    return table


def timing_totals(timing: pd.DataFrame) -> dict[str, float]:
    """{cold, warm: seconds summed over the chapters that have a run of that kind}."""
    kinds = timing["run"] if "run" in timing else timing["cache_misses"].map(run_kind)
    return {k: float(timing.loc[kinds == k, "seconds"].sum()) for k in (COLD, WARM)}


def timing_path(profile: str | Path = "default", source: str | None = None, options: dict | None = None) -> Path:
    """``results/<profile>[-<source>][-<options>]/timing.csv``: beside the chapters' own results."""
    from ..profiles import load_profile

    prof = load_profile(profile)
    return results_root() / results_tag(prof.name, source or prof.data.source, prof.data.source, options) / TIMING_FILE


# ----------------------------------------------------------------------------- execution
def execute_chapter(notebook: str | Path, output_dir: str | Path = "book/chapters", *,
                    profile: str = "default", cwd: str | Path | None = None, progress: bool = True,
                    stream=None, kernel: SharedKernel | None = None, **parameters) -> Path:
    """Execute one chapter with papermill on ``profile``; returns the executed notebook's path.

    With ``progress``, cell-by-cell progress and the kernel's output go to ``stream``
    (default: the terminal). The run's wall time, cache hits and misses and device are
    recorded in ``results/<profile>/timing.csv`` whether it succeeds or fails. With ``kernel``, the chapter
    runs in that :class:`~scoring_lab.book.kernels.SharedKernel`, cleared first, instead of a kernel of its own.
    """
    import papermill as pm

    notebook = Path(notebook)
    chapter = notebook.stem
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    unexecuted = output_dir / f".{chapter}.input.ipynb"
    source_nb = to_notebook(notebook)
    nbformat.write(source_nb, unexecuted)
    out = output_dir / f"{chapter}.ipynb"
    results_dir = timing_path(profile, parameters.get("source"), parameters.get("data_options")).parent
    inputs = chapter_inputs(notebook, source_nb, profile, parameters, results_dir)
    freshness.remove_stamp(results_dir, chapter)
    before = freshness.snapshot(results_dir)
    reporter = CellProgress(chapter, stream) if progress else None
    log = Path(tempfile.mkstemp(prefix="scoring-lab-cache-", suffix=".jsonl")[1])
    started, status = time.monotonic(), "failed"
    try:
        with environment(**{CACHE_LOG_ENV: str(log)}):   # the kernel inherits it and logs every cache lookup
            if kernel is not None:
                kernel.prepare(cwd)
            pm.execute_notebook(str(unexecuted), str(out), parameters={"profile": profile, **parameters},
                                cwd=str(cwd) if cwd else None, progress_bar=False, kernel_name="python3",
                                request_save_on_cell_execute=False,   # written once, at the end or on failure
                                engine_name=_reporting_engine(), progress=reporter,
                                stdout_file=reporter.stdout if reporter else None,
                                stderr_file=reporter.stderr if reporter else None,
                                **({"km": kernel.km} if kernel is not None else {}))
        status = "ok"
    finally:
        if kernel is not None:
            kernel.close_clients()
        seconds = time.monotonic() - started
        if reporter:
            reporter.close()
        counts = lookup_counts(log)
        log.unlink(missing_ok=True)
        unexecuted.unlink(missing_ok=True)
        record_timing({"chapter": chapter, "profile": str(profile), "source": parameters.get("source") or "",
                       "status": status, "seconds": round(seconds, 1), "cache_hits": counts["hits"],
                       "cache_misses": counts["misses"], "device": device_description(),
                       "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")},
                      timing_path(profile, parameters.get("source"), parameters.get("data_options")))
    _finish_page(out, chapter, Path(cwd) if cwd else None)
    freshness.write_stamp(results_dir, chapter, inputs, out, freshness.written_since(results_dir, before))
    if reporter:
        reporter.say(f"[{chapter}] finished in {format_seconds(seconds)} "
                       f"(cache: {counts['hits']} hits, {counts['misses']} misses) -> {out}")
    return out


def chapter_inputs(notebook: Path, nb: nbformat.NotebookNode, profile: str, parameters: dict,
                   results_dir: Path) -> str:
    """:func:`freshness.inputs_digest` of a chapter run: its source, parameters, the library's code, the
    environment, and, for a page made from the chapters before it, their stamps or the results files it reads."""
    reads = freshness.reads_results(nb)
    earlier = [s.stem for s in chapter_sources(notebook.parent) if s.stem < notebook.stem] if reads is True else []
    read = freshness.results_digests(results_dir, reads) if isinstance(reads, str) else None
    return freshness.inputs_digest(notebook, {"profile": str(profile), **parameters}, results_dir,
                                   _book_root(notebook), earlier, read)


def current_page(notebook: str | Path, output_dir: str | Path = "book/chapters", *, profile: str = "default",
                 **parameters) -> tuple[bool, str]:
    """(current, why): whether the chapter's executed page in ``output_dir`` and its results are what
    executing it now would make (see :mod:`.freshness`)."""
    notebook = Path(notebook)
    results_dir = timing_path(profile, parameters.get("source"), parameters.get("data_options")).parent
    inputs = chapter_inputs(notebook, to_notebook(notebook), profile, parameters, results_dir)
    return freshness.is_current(results_dir, notebook.stem, inputs, Path(output_dir) / f"{notebook.stem}.ipynb")


def execute_all(notebooks_dir: str | Path = "notebooks", output_dir: str | Path = "book/chapters", *,
                profile: str = "default", cwd: str | Path | None = None, only: list[str] | None = None,
                progress: bool = True, skip_current: bool = False, **parameters) -> list[Path]:
    """Execute every chapter (or those named in ``only``, see :func:`select_chapters`) in book order; with
    ``skip_current``, a chapter whose page and results are current (:func:`current_page`) is not executed."""
    sources = select_chapters(only, notebooks_dir)
    outs = []
    for i, s in enumerate(sources, 1):
        head = f"== [{i}/{len(sources)}] {s.stem} (profile {profile})"
        if skip_current:
            current, why = current_page(s, output_dir, profile=profile, **parameters)
            if current:
                if progress:
                    print(f"{head}: current ({why}); not executed (--force executes it)", flush=True)
                outs.append(Path(output_dir) / f"{s.stem}.ipynb")
                continue
            head += f": {why}"
        if progress:
            print(head, flush=True)
        outs.append(execute_chapter(s, output_dir, profile=profile, cwd=cwd, progress=progress, **parameters))
    return outs


def regenerate_commands(notebooks_dir: str | Path = "notebooks", profile: str = "default",
                        seed: int = 0) -> pd.DataFrame:
    """Per chapter, the one command that regenerates it (and its results) on ``profile``:
    ``scoring-lab run`` (papermill with progress, badge and timing) and plain papermill."""
    rows = []
    for s in chapter_sources(notebooks_dir):
        rows.append({
            "chapter": s.stem,
            "scoring-lab": f"scoring-lab run {s.stem} --profile {profile} -p seed {seed}",
            "papermill": (f"papermill notebooks/{s.stem}.ipynb book/chapters/{s.stem}.ipynb "
                          f"-p profile {profile} -p seed {seed}"),
        })
    return pd.DataFrame(rows)
