"""The strictly built book (conftest.py `built_book`) in a real browser, offline.

Every .html page of the build is served from 127.0.0.1 and loaded in headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright's sync API; Playwright downloads no
browser). On every page: each image loads, each internal link reaches an existing page
and anchor, the console shows no errors, and nothing is requested from another host
(such requests are aborted and listed). On pages with formulas, MathJax (served from the
book's own _static) has typeset them. A full-page screenshot of each page is saved to
$SCORING_LAB_SCREENSHOTS (default: a folder beside the temporary build).

Without Chromium the module is skipped (one reason line), except under CI=true, where a
missing browser fails. $SCORING_LAB_CHROMIUM overrides the browser's path.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
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


@dataclass
class PageReport:
    path: str                                             # relative to the html folder
    broken_images: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)   # (href as written, resolved URL)
    anchors: set[str] = field(default_factory=set)
    console_errors: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)        # 4xx/5xx or failed requests to us
    maths: dict | None = None


@dataclass
class Crawl:
    html: Path
    origin: str
    pages: dict[str, PageReport]
    external: dict[str, list[str]]                        # page -> aborted off-machine requests
    screenshots: Path


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


@pytest.fixture(scope="module")
def server(chromium, built_book):
    """The built HTML folder on http://127.0.0.1:<free port>/, in a thread, for this module."""
    if not (built_book.html / "index.html").is_file():
        pytest.fail("the book did not build, so there is nothing to load:\n" + built_book.failure_message(),
                    pytrace=False)
    handler = functools.partial(_QuietHandler, directory=str(built_book.html))
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
def crawl(chromium, built_book, server, tmp_path_factory) -> Crawl:
    """Every page of the build loaded once in headless Chromium; what each page showed."""
    shots = Path(os.environ.get("SCORING_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
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
            context = browser.new_context(viewport={"width": 1280, "height": 900})
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
                    report.maths = page.evaluate(_MATHS_JS)
                    report.links = page.evaluate(_LINKS_JS)
                    report.anchors = set(page.evaluate(_ANCHORS_JS))
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
