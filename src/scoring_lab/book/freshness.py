"""Whether a chapter's executed page is current, so that a warm rebuild can skip it: content-addressed, like
the artifact cache.

After each execution, :func:`write_stamp` records under the run's results folder
(``results/<tag>/.stamps/<chapter>.json``) a digest of everything the page was made from, its **inputs**:

* the chapter's MyST source and the parameters it ran with (profile, source, seed, ...), and the profile's
  YAML when the profile is a file outside the package;
* the library's code: every file of the ``scoring_lab`` package (the profiles' YAML among them);
* the environment: the Python version, the pinned ``requirements.lock`` and the book's ``_config.yml`` (whose
  repository address goes into the page's Colab badge);
* for a page made from the chapters before it, what it reads of them, as its MyST header says under
  ``scoring_lab: reads_results``: ``true``, the stamps of those chapters (any of them executed again makes it
  stale: the reproducibility page, which shows their timings); or a glob of results files under the run's
  results folder, those files' bytes (it is stale when one of them changes, appears or goes: the claims
  summary, ``*/claims.csv``, which a chapter executed again with the same verdicts leaves current);

and the digests of what the execution wrote: the executed page and every results file it wrote or rewrote.
:func:`is_current` holds when the inputs' digest is the stamp's and the page and those files are still there,
byte for byte. Anything else (new code, an edited caption, ``make clean-results``, an edited results file, a
page executed elsewhere) executes the chapter again. The artifact cache is not an input: a page made from
cached models is the page those models make.
"""
from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from pathlib import Path

STAMP_FOLDER = ".stamps"
READS_RESULTS = "reads_results"   # the MyST header key (under ``scoring_lab``) of a page made from earlier pages
UNTRACKED = frozenset({"timing.csv"})   # written by the executor for every chapter, not by the chapter


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _tree_digest(folder: str) -> str:
    h = hashlib.sha256()
    root = Path(folder)
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + file_digest(p).encode() + b"\0")
    return h.hexdigest()


def code_digest() -> str:
    """sha256 over every file of the installed ``scoring_lab`` package (path and bytes)."""
    return _tree_digest(str(Path(__file__).resolve().parents[1]))


def _optional_digest(path: Path) -> str:
    return file_digest(path) if path.is_file() else "absent"


def stamp_path(results_dir: Path, chapter: str) -> Path:
    """``results/<tag>/.stamps/<chapter>.json``."""
    return results_dir / STAMP_FOLDER / f"{chapter}.json"


def reads_results(nb) -> bool | str:
    """What a chapter's page reads of the chapters before it (its MyST header's ``reads_results``): ``True``
    (their stamps), a glob of results files (their bytes), or ``False`` (nothing)."""
    value = (nb.metadata.get("scoring_lab") or {}).get(READS_RESULTS, False)
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"the MyST header's scoring_lab.{READS_RESULTS} is an empty glob: give true, false or a "
                         "glob of results files such as '*/claims.csv'")
    return value if isinstance(value, str) else bool(value)


def results_digests(results_dir: Path, pattern: str) -> dict[str, str]:
    """{path relative to ``results_dir``: sha256} of the results files matching ``pattern`` (a glob)."""
    if not results_dir.is_dir():
        return {}
    return {p.relative_to(results_dir).as_posix(): file_digest(p) for p in sorted(results_dir.glob(pattern))
            if p.is_file() and STAMP_FOLDER not in p.relative_to(results_dir).parts}


def inputs_digest(source: Path, parameters: dict, results_dir: Path, book_root: Path | None,
                  earlier: list[str], read: dict[str, str] | None = None) -> str:
    """The digest of what a chapter's page is made from (see the module's docstring). ``parameters``: every
    papermill parameter, the profile among them; ``earlier``: the stems of the chapters before it whose stamps
    count (empty unless it reads their results); ``read``: the :func:`results_digests` of the files it reads
    (when its header names them)."""
    profile = str(parameters.get("profile", ""))
    parts = {
        "source": file_digest(source),
        "parameters": json.dumps(parameters, sort_keys=True, default=str),
        "profile_file": _optional_digest(Path(profile)) if profile.endswith((".yaml", ".yml")) else "packaged",
        "code": code_digest(),
        "python": platform.python_version(),
        "lock": _optional_digest(book_root / "requirements.lock") if book_root else "absent",
        "config": _optional_digest(book_root / "_config.yml") if book_root else "absent",
        "earlier": {c: _optional_digest(stamp_path(results_dir, c)) for c in earlier},
        "read": read or {},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def snapshot(results_dir: Path) -> dict[str, tuple[int, int]]:
    """{path relative to ``results_dir``: (mtime_ns, size)} of every results file (stamps excepted)."""
    if not results_dir.is_dir():
        return {}
    return {p.relative_to(results_dir).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in results_dir.rglob("*") if p.is_file() and STAMP_FOLDER not in p.relative_to(results_dir).parts}


def written_since(results_dir: Path, before: dict[str, tuple[int, int]]) -> list[str]:
    """The results files new or rewritten since ``before`` (a :func:`snapshot`), the executor's own excepted."""
    after = snapshot(results_dir)
    return sorted(k for k, v in after.items() if before.get(k) != v and Path(k).name not in UNTRACKED)


def write_stamp(results_dir: Path, chapter: str, inputs: str, page: Path, written: list[str]) -> Path:
    """Record a finished execution: its inputs' digest, and the digests of its page and of the results files
    it wrote (paths relative to ``results_dir``)."""
    path = stamp_path(results_dir, chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = {"inputs": inputs, "page": str(page.resolve()), "page_digest": file_digest(page),
             "outputs": {k: file_digest(results_dir / k) for k in written}}
    path.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    return path


def remove_stamp(results_dir: Path, chapter: str) -> None:
    """Forget a chapter's execution (it failed, or is running): it is not current."""
    stamp_path(results_dir, chapter).unlink(missing_ok=True)


def is_current(results_dir: Path, chapter: str, inputs: str, page: Path) -> tuple[bool, str]:
    """(current, why): whether the stamp's inputs are ``inputs`` and its page and results files are intact."""
    path = stamp_path(results_dir, chapter)
    if not path.is_file():
        return False, "never executed here"
    try:
        stamp = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False, f"{path}: not readable"
    if stamp.get("inputs") != inputs:
        return False, "its source, parameters, code or environment changed"
    if stamp.get("page") != str(page.resolve()) or not page.is_file() or file_digest(page) != stamp.get("page_digest"):
        return False, f"its executed page {page} is missing or changed"
    for name, digest in stamp.get("outputs", {}).items():
        f = results_dir / name
        if not f.is_file() or file_digest(f) != digest:
            return False, f"its results file {name} is missing or changed"
    return True, "inputs and code unchanged, page and results intact"
