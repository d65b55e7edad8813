"""Sphinx extension: the built book loads MathJax from its own ``_static``, never from a CDN,
and each page loads without errors in a browser's console.

``make install`` unpacks MathJax 3's ``es5`` folder (npm ``mathjax@3.2.2``) into
``.venv/share/mathjax/``. At ``config-inited`` this extension adds a static path whose
content lands at ``_build/html/_static/mathjax/`` and points ``mathjax_path`` at the
local ``tex-mml-chtml.js`` (relative to ``_static``, as Sphinx resolves it).

The folder is found at ``sys.prefix/share/mathjax`` (``jupyter-book`` runs from
``.venv/bin``), or wherever ``$SCORING_LAB_MATHJAX`` points.

Registered in ``_config.yml`` under ``sphinx: extra_extensions``. It deliberately does
not use a ``_static`` folder at the book's root: Jupyter Book 1.x would then inject
every ``.js`` file of every static path (all of MathJax's components) into every page.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

ENV_VAR = "SCORING_LAB_MATHJAX"
ENTRY = "tex-mml-chtml.js"  # the component Sphinx's own default (a CDN URL) names
STATIC_NAME = "mathjax"  # -> _build/html/_static/mathjax/


def mathjax_dir() -> Path:
    """Where the offline MathJax ``es5`` folder lives (``$SCORING_LAB_MATHJAX`` overrides)."""
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else Path(sys.prefix) / "share" / "mathjax"


def _stage(app: Sphinx, source: Path) -> Path:
    """A folder holding only a link ``mathjax -> source``: as an html_static_path entry
    its content (the link, followed by Sphinx's copy) lands at ``_static/mathjax/``.
    It lives in the doctree folder (``_build/.doctrees``), outside the HTML output."""
    stage = Path(app.doctreedir) / "scoring_lab_static"
    stage.mkdir(parents=True, exist_ok=True)
    link = stage / STATIC_NAME
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == source:
            return stage
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:  # a stale copy (e.g. a filesystem without links): replace it
            shutil.rmtree(link)
    try:
        link.symlink_to(source, target_is_directory=True)
    except OSError:  # no symlinks here: copy instead
        shutil.copytree(source, link)
    return stage


def use_local_mathjax(app: Sphinx, config: Config) -> None:
    source = mathjax_dir().resolve()
    if not (source / ENTRY).is_file():
        how = (f"${ENV_VAR} points at {os.environ[ENV_VAR]!r}" if os.environ.get(ENV_VAR)
               else f"looked in {source} (sys.prefix/share/mathjax; set ${ENV_VAR} to override)")
        raise ConfigError(
            f"scoring_lab.book.sphinx_offline: offline MathJax not found: no {ENTRY} ({how}). "
            "Run `make install` (it unpacks npm mathjax@3.2.2's es5 folder into .venv/share/mathjax/; "
            "in an already installed .venv, `rm .venv/.installed` first).")
    config.html_static_path = [*config.html_static_path, str(_stage(app, source))]
    config.mathjax_path = f"{STATIC_NAME}/{ENTRY}"


def dedupe_inline_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Each page's scripts once. Sphinx 7.4 writes an inline script that an extension adds after
    the builder started (sphinx-thebe's ``const THEBE_JS_URL``, sphinx-togglebutton's selector)
    twice, as ``_JavaScript(None)`` and again as ``_JavaScript('')``; the second ``const`` is a
    SyntaxError in the browser's console on every page."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", None),
               tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: the builder's own list, restored by Sphinx after each page


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.mathjax")
    # before Sphinx's own validate_html_static_path (priority 800) checks the entries
    app.connect("config-inited", use_local_mathjax, priority=400)
    # after every other extension (and sphinx.ext.mathjax) has added its scripts to the page
    app.connect("html-page-context", dedupe_inline_scripts, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
