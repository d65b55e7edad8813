"""The strictly built book (conftest.py `built_book`) in a real browser, offline.

Every .html page of the build is served from 127.0.0.1 and loaded in headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright's sync API; Playwright downloads no
browser). On every page: each image loads, each internal link reaches an existing page
and anchor, the console shows no errors, and nothing is requested from another host
(such requests are aborted and listed). On pages with formulas, MathJax (served from the
book's own _static) has typeset them. At the 1280 px wide window every rendered table fits its
content column: none is wider than its scroll container or runs past the column (a constructed
too-wide table shows that this check fails). With $SCORING_LAB_SCREENSHOTS set, a full-page screenshot of
each page is saved there to look at (no check reads them, and they cost 11.5 s for the default book's 12 pages).

Without Chromium the module is skipped (one reason line), except under CI=true, where a
missing browser fails. $SCORING_LAB_CHROMIUM overrides the browser's path.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

try:
    from playwright.sync_api import sync_playwright
    PLAYWRIGHT_MISSING = None
except ImportError as exc:  # a broken install, never a reason to skip
    sync_playwright = None
    PLAYWRIGHT_MISSING = (f"the playwright package is not importable ({exc}); it is pinned in "
                          "requirements.lock: run `make install`")

CHROMIUM = Path(os.environ.get("SCORING_LAB_CHROMIUM", "/usr/bin/chromium"))
ON_CI = os.environ.get("CI", "").strip().lower() == "true"
HAVE_CHROMIUM = CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)
NO_CHROMIUM = (f"no Chromium at {CHROMIUM}: `apt-get install chromium` (or set SCORING_LAB_CHROMIUM); "
               "under CI=true this is a failure")
if PLAYWRIGHT_MISSING is None and not HAVE_CHROMIUM and not ON_CI:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

# Flags that work on a closed network: without the background-networking ones Chromium's
# own connections (updates, sync, field trials) show up as refused requests.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOST = "127.0.0.1"
_REFRESH = re.compile(r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']\s*\d+\s*;\s*url=([^"']+)""", re.I)
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 900}

# In the page: make lazy images load, wait for every image, then report what did not load.
_BROKEN_IMAGES_JS = """async () => {
  for (const img of document.images) if (img.loading === 'lazy') img.loading = 'eager';
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  return [...document.images].filter(img => !(img.complete && img.naturalWidth > 0))
                             .map(img => img.getAttribute('src'));
}"""
_LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => [a.getAttribute('href'), a.href])"
_ANCHORS_JS = """() => [...document.querySelectorAll('[id]')].map(e => e.id)
                  .concat([...document.querySelectorAll('a[name]')].map(a => a.name))"""
_MATHS_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-assistive-mml').forEach(e => e.remove());
  return {
    formulas: document.querySelectorAll('.math').length,
    rendered: document.querySelectorAll('mjx-container').length,
    untypeset: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
                   .map(e => e.textContent.trim().slice(0, 80)),
    tex_errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
    raw_tex: (body.textContent.match(/\\\\[(\\[][^]{0,60}/g) || []),
  };
}"""
# In the page: every rendered table that does not fit. The content column is the theme's
# article.bd-article; a table's scroll container is its nearest ancestor that clips or scrolls
# sideways (myst-nb's output box, pydata's .pst-scrollable-table-container). Too wide: the
# container scrolls (scrollWidth > clientWidth), or the table ends past the right edge of the
# column's content box (inside its padding).
_WIDE_TABLES_JS = """() => {
  const column = document.querySelector('article.bd-article') || document.body;
  const edge = column.getBoundingClientRect().right - parseFloat(getComputedStyle(column).paddingRight);
  const tables = [...document.querySelectorAll('table')].filter(t => t.getClientRects().length);
  const wide = tables.map((t, i) => {
    let box = t.parentElement;
    while (box && box !== column && !['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(box).overflowX))
      box = box.parentElement;
    const rect = t.getBoundingClientRect(), problems = [];
    if (box && box !== column && box.scrollWidth > box.clientWidth + 1)
      problems.push(`${box.scrollWidth}px of content in a ${box.clientWidth}px box that scrolls sideways`);
    if (rect.right > edge + 1)
      problems.push(`${Math.round(rect.width)}px wide, ${Math.round(rect.right - edge)}px past the content column`);
    const head = t.rows.length ? [...t.rows[0].cells].slice(0, 4).map(c => c.textContent.trim()) : [];
    return problems.length ? `table ${i + 1} of ${tables.length} (${head.join(' | ')}): ${problems.join('; ')}` : null;
  }).filter(Boolean);
  return {tables: tables.length, wide};
}"""


@dataclass
class PageReport:
    path: str                                             # relative to the html folder
    broken_images: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)   # (href as written, resolved URL)
    anchors: set[str] = field(default_factory=set)
    console_errors: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)        # 4xx/5xx or failed requests to us
    maths: dict | None = None
    tables: int = 0                                              # rendered tables
    wide_tables: list[str] = field(default_factory=list)         # those that do not fit the column


@dataclass
class Crawl:
    html: Path
    origin: str
    pages: dict[str, PageReport]
    external: dict[str, list[str]]                        # page -> aborted off-machine requests
    screenshots: Path | None                              # $SCORING_LAB_SCREENSHOTS, when set


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="session")  # session: pytest sets up wider fixtures (built_book) first
def chromium() -> Path:
    """The browser, checked before anything is built: a missing one fails here (CI=true, or
    playwright not installed)."""
    if PLAYWRIGHT_MISSING:
        pytest.fail(PLAYWRIGHT_MISSING, pytrace=False)
    if not HAVE_CHROMIUM:
        pytest.fail(NO_CHROMIUM, pytrace=False)
    return CHROMIUM


@contextmanager
def _serve(folder: Path):
    """``folder`` on http://127.0.0.1:<free port>/, in a thread, while the block runs."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(chromium, built_book):
    """The built HTML folder on http://127.0.0.1:<free port>/, in a thread, for this module."""
    if not (built_book.html / "index.html").is_file():
        pytest.fail("the book did not build, so there is nothing to load:\n" + built_book.failure_message(),
                    pytrace=False)
    with _serve(built_book.html) as origin:
        yield origin


@pytest.fixture(scope="module")
def crawl(chromium, built_book, server) -> Crawl:
    """Every page of the build loaded once in headless Chromium; what each page showed."""
    shots = Path(os.environ["SCORING_LAB_SCREENSHOTS"]) if os.environ.get("SCORING_LAB_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    html = built_book.html
    # every page; _static/ holds the themes' Jinja macro files (webpack-macros.html), not pages
    pages = sorted(rel for p in html.rglob("*.html")
                   if not (rel := p.relative_to(html).as_posix()).startswith("_static/"))
    external: dict[str, list[str]] = {}
    reports: dict[str, PageReport] = {}
    current = {"page": None}

    def route(r):
        url = r.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname == HOST:
            r.continue_()
        else:
            external.setdefault(current["page"], []).append(url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            context.route("**/*", route)
            for rel in pages:
                current["page"] = rel
                report = reports[rel] = PageReport(rel)
                page = context.new_page()
                page.on("console", lambda m, r=report: m.type == "error" and r.console_errors.append(
                    f"{m.text} ({m.location.get('url', '')}:{m.location.get('lineNumber', '')})"))
                page.on("pageerror", lambda e, r=report: r.console_errors.append(f"uncaught: {e}"))
                page.on("response", lambda resp, r=report: resp.status >= 400 and urlsplit(resp.url).hostname == HOST
                        and r.failed_local.append(f"{resp.status} {resp.url}"))
                page.on("requestfailed", lambda req, r=report: urlsplit(req.url).hostname == HOST
                        and r.failed_local.append(f"{req.failure} {req.url}"))
                url = f"{server}/{rel}"
                # "load": every script (defer included), style sheet and eager image is in
                page.goto(url, wait_until="load")
                redirect = _REFRESH.search((html / rel).read_text(errors="replace"))
                if redirect:  # e.g. index.html -> book/intro.html: a link; the target is crawled itself
                    target = urljoin(url, redirect.group(1))
                    report.links = [(redirect.group(1), target)]
                    page.wait_for_url(target, wait_until="load")
                else:
                    page.evaluate("document.fonts.ready.then(() => true)")
                    report.broken_images = page.evaluate(_BROKEN_IMAGES_JS)
                    report.maths = page.evaluate(_MATHS_JS)   # waits for MathJax: the layout is final
                    measured = page.evaluate(_WIDE_TABLES_JS)
                    report.tables, report.wide_tables = measured["tables"], measured["wide"]
                    report.links = page.evaluate(_LINKS_JS)
                    report.anchors = set(page.evaluate(_ANCHORS_JS))
                if shots:
                    page.screenshot(path=str(shots / (rel.replace("/", "__")[:-5] + ".png")), full_page=True)
                page.close()
            context.close()
        finally:
            browser.close()
    return Crawl(html, server, reports, external, shots)


def _problems(crawl: Crawl, attr: str) -> dict[str, list]:
    return {rel: getattr(r, attr) for rel, r in crawl.pages.items() if getattr(r, attr)}


def _listing(problems: dict[str, list]) -> str:
    return "\n".join(f"  {page}: {item}" for page, items in problems.items() for item in dict.fromkeys(items))


def test_every_page_of_the_build_was_loaded(crawl):
    assert "index.html" in crawl.pages and len(crawl.pages) >= 3
    chapters = [p for p in crawl.pages if p.startswith("book/chapters/")]
    assert chapters, f"no chapter pages in the build: {sorted(crawl.pages)}"


def test_nothing_is_requested_from_another_host(crawl):
    """The book is complete offline: every script, style sheet, font and image is its own."""
    assert not crawl.external, "requests that would leave the machine (aborted):\n" + _listing(crawl.external)


def test_every_image_loads(crawl):
    broken = _problems(crawl, "broken_images")
    assert not broken, "images that did not load (complete && naturalWidth > 0):\n" + _listing(broken)


def test_no_console_errors_and_no_failed_local_requests(crawl):
    errors = _problems(crawl, "console_errors")
    failed = _problems(crawl, "failed_local")
    assert not errors and not failed, "\n".join(
        [f"console errors:\n{_listing(errors)}"] * bool(errors)
        + [f"failed requests to the book's own server:\n{_listing(failed)}"] * bool(failed))


def test_internal_links_reach_existing_pages_and_anchors(crawl):
    host = urlsplit(crawl.origin).netloc
    broken: dict[str, list[str]] = {}
    checked = 0
    for rel, report in crawl.pages.items():
        for written, resolved in report.links:
            parts = urlsplit(resolved)
            if parts.scheme not in ("http", "https") or parts.netloc != host:
                continue  # links to other sites, mailto:, javascript:
            checked += 1
            target = unquote(parts.path).lstrip("/")
            if target == "" or target.endswith("/"):
                target += "index.html"
            if not (crawl.html / target).is_file():
                broken.setdefault(rel, []).append(f"{written!r}: no file {target}")
            elif parts.fragment and target.endswith(".html"):
                anchor = unquote(parts.fragment)
                anchors = crawl.pages[target].anchors if target in crawl.pages else set()
                if anchor not in anchors:
                    broken.setdefault(rel, []).append(f"{written!r}: no id or name {anchor!r} on {target}")
    assert checked, "no internal links found at all"
    assert not broken, "broken internal links:\n" + _listing(broken)


def test_formulas_are_typeset_by_the_local_mathjax(crawl):
    with_maths = {rel: r.maths for rel, r in crawl.pages.items() if r.maths and r.maths["formulas"]}
    assert with_maths, "no page with a formula: expected inline maths such as $p$ in a chapter"
    scorers = "book/chapters/01_scorers.html"
    assert scorers not in crawl.pages or scorers in with_maths, f"{scorers}: its inline maths ($p$) is missing"
    bad = {}
    for rel, m in with_maths.items():
        problems = []
        if not m["rendered"]:
            problems.append("no <mjx-container>: MathJax did not run")
        problems += [f"not typeset: {t!r}" for t in m["untypeset"]]
        problems += [f"TeX error: {t!r}" for t in m["tex_errors"]]
        problems += [f"raw TeX left in the text: {t!r}" for t in m["raw_tex"]]
        if problems:
            bad[rel] = problems
    assert not bad, "maths not rendered:\n" + _listing(bad)
    for rel in with_maths:
        page = (crawl.html / rel).read_text()
        scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, flags=re.I)
        assert scripts and all("_static/mathjax/" in s and "//" not in s for s in scripts), scripts


def test_every_table_fits_its_column(crawl):
    """At 1280 px no table hides part of itself behind a sideways scroll or under the sidebar: long
    text wraps and numbers stay narrow (scoring_lab.book.styling), so a later chapter is held to it."""
    assert sum(r.tables for r in crawl.pages.values()) >= 8, "hardly any tables measured: is the build complete?"
    wide = _problems(crawl, "wide_tables")
    assert not wide, (f"tables wider than their content column at {VIEWPORT['width']} px "
                      "(see scoring_lab.book.styling):\n" + _listing(wide))


# A page shaped like the book's: the content column (article.bd-article, as wide as a chapter's
# output box at 1280 px) holding cell outputs that scroll sideways, as myst-nb's do.
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0 0 0 280px; font-family: sans-serif; }}
article.bd-article {{ width: 688px; }}
.output {{ overflow-x: auto; }}
</style></head><body><article class="bd-article">{body}</article></body></html>"""


def _hard_tables() -> dict[str, str]:
    """The book's own stylers on tables built to be hard to fit: many numeric columns with long
    unbreakable headers, a long explanation, a ten-column claims table."""
    import pandas as pd

    from scoring_lab.book.styling import styled_table
    from scoring_lab.claims import styled_claims

    # as the widest the chapters show (UniMoE's variants): 16 columns, 13 of them numbers
    numbers = pd.DataFrame({"variant": ["tokens", "pooled"], "model": ["UniMoE-Guided, experts on every token"] * 2,
                            "experts_on": ["tokens", "pooled"], "max_epochs": [1, 12], "epochs": [1, 12]})
    for i in range(11):
        numbers[f"{i}: breaking_down_hydrogen_peroxide"] = [-0.123456 * i, 12.5]
    settings = pd.DataFrame({"setting": ["kd.teacher.weight_decay", "train.warmup_ratio"], "smoke": [0.01, 0.05],
                             "paper": [0.01, 0.1], "why": ["why " * 60, "the_paper_does_not_say_" * 5]})
    claim = {"claim": "the student is within two points of the teacher on every data set " * 2,
             "verdict": "inconclusive", "basis": "by construction", "paper_value": "0.93 accuracy",
             "our_value": "0.912 (0.880 to 0.941)", "ci_low": "-0.0412", "ci_high": "0.0123", "n": "1,234",
             "test": "paired bootstrap over test responses, Holm over 7 sets", "chapter": "05_irt_merging",
             "note": "wall_clock_seconds_depend_on_the_machine " * 4}
    return {"numbers": styled_table(numbers, wide=("model",)).to_html(),
            "settings": styled_table(settings, wide=("why",)).to_html(),
            "claims": styled_claims(pd.DataFrame([claim] * 2)).to_html()}


@pytest.mark.slow
def test_the_table_check_fails_on_a_too_wide_table_and_passes_the_books_styles(chromium, tmp_path):
    """The check above catches a table that scrolls inside its output box and one that runs past the
    column, naming it; the book's own stylers keep hard tables inside the same column."""
    unbreakable = "x" * 300
    pages = {"scrolls": f'<div class="output"><table><tr><th>note</th></tr><tr><td>{unbreakable}</td></tr></table>'
                        "</div>",
             "overflows": f"<table><tr><th>why</th><th>n</th></tr><tr><td>{unbreakable}</td><td>1</td></tr></table>",
             **{name: f'<div class="output">{html}</div>' for name, html in _hard_tables().items()}}
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_text(_PAGE.format(body=body))
    found = {}
    with _serve(tmp_path) as origin, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            for name in pages:
                page.goto(f"{origin}/{name}.html", wait_until="load")
                found[name] = page.evaluate(_WIDE_TABLES_JS)
        finally:
            browser.close()
    assert found["scrolls"]["tables"] == 1 and len(found["scrolls"]["wide"]) == 1
    assert found["scrolls"]["wide"][0].startswith("table 1 of 1 (note): ")
    assert "in a 688px box that scrolls sideways" in found["scrolls"]["wide"][0]
    assert len(found["overflows"]["wide"]) == 1 and "(why | n)" in found["overflows"]["wide"][0]
    assert "px past the content column" in found["overflows"]["wide"][0]
    for name in ("numbers", "settings", "claims"):
        assert found[name]["tables"] == 1 and found[name]["wide"] == [], (name, found[name])
