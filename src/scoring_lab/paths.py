"""Where the project's folders are: the project root, the results root.

Kept below every other module (it imports none of them), so that ``cache``,
``run`` and ``chapters`` can all ask where things live.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS_ENV = "SCORING_LAB_RESULTS"


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: cwd) holding ``_toc.yml``, or None."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file() and (d / "src" / "scoring_lab").is_dir():
            return d
    return None


def results_root() -> Path:
    """``$SCORING_LAB_RESULTS``, else ``results/`` at the project root, else ``./results``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    root = project_root()
    return (root if root is not None else Path.cwd()) / "results"


def results_tag(profile_name: str, source: str, profile_source: str, options: dict | None = None) -> str:
    """The results folder of a run: the profile's name, or ``<profile>-<source>`` when the data
    source is not the profile's own (so real-data results never overwrite the book's), then
    ``-<key>-<value>`` per loader option (``default-view-holistic``), or a short hash of them
    when that would be long."""
    tag = profile_name if source == profile_source else f"{profile_name}-{source}"
    if not options:
        return tag
    suffix = "-".join(f"{k}-{v}" for k, v in sorted(options.items()))
    suffix = re.sub(r"[^A-Za-z0-9_.=-]+", "_", suffix)
    if len(suffix) > 40:
        suffix = "options-" + hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()[:8]
    return f"{tag}-{suffix}"


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block (kernels started inside inherit
    them), then restore each to its previous value or absence."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
