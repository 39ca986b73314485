"""The reading-group site (``make site``), opened page by page in headless Chromium.

The site is built from executed FAST notebooks: the copies the JupyterLab test saved in
``build/browser/executed/`` when it ran in this session (so nothing is executed twice), otherwise
fresh papermill FAST runs. Set ``CIRLIB_SITE_DIR`` to check an already built site instead (``make
site-check`` checks ``build/site``, the one ``make site`` builds from ``make demo``'s notebooks).

Every page is served from ``127.0.0.1`` and must load with no failed request, no request to any
other host (the site works with the network off), no console error; every image loads, no formula
is left as raw ``$...$`` or ``\\(...\\)`` text after MathJax ran, and every internal link (page and
anchor) resolves.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
from conftest import offline_context

from cirlib.tools.notebooks import FAST_PARAMETERS, declared_parameters, list_notebooks, run_notebook
from cirlib.tools.site import build

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "build" / "browser"
EXECUTED = ARTIFACTS / "executed"
#: Text that is a formula MathJax did not typeset: ``$x$``, ``$$x$$``, ``\(x\)``, ``\[x\]``.
RAW_MATH = re.compile(r"\$\$?[^$\n]+?\$\$?|\\\(|\\\)|\\\[|\\\]")
#: Page text outside code, outputs and typeset math (where a dollar sign may legitimately appear).
VISIBLE_PROSE = """() => {
  const root = document.querySelector('main') || document.body;
  const clone = root.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style, .cell_output, .output')
       .forEach(e => e.remove());
  return clone.innerText;
}"""


def _fresh_executed(notebooks: list[Path]) -> bool:
    """The JupyterLab test saved every notebook in this checkout, after its last edit."""
    saved = [EXECUTED / n.name for n in notebooks]
    return all(p.is_file() and p.stat().st_mtime >= n.stat().st_mtime for p, n in zip(saved, notebooks))


def _execute_fast(notebooks: list[Path], out: Path) -> Path:
    for notebook in notebooks:
        params = dict(FAST_PARAMETERS, OUTPUT_DIR=str(out / "runs"))
        params = {k: v for k, v in params.items() if k in declared_parameters(notebook)}
        run_notebook(notebook, out / notebook.name, params)
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    given = os.environ.get("CIRLIB_SITE_DIR")
    if given:
        path = Path(given).resolve()
        assert (path / "index.html").is_file(), f"CIRLIB_SITE_DIR={given}: no index.html; run `make site` first"
        return path
    notebooks = list_notebooks(REPO_ROOT / "notebooks")
    source = EXECUTED if _fresh_executed(notebooks) else _execute_fast(notebooks, tmp_path_factory.mktemp("fast"))
    out = ARTIFACTS / "site"
    start = time.perf_counter()
    build(source, out)
    print(f"site built from {source} in {time.perf_counter() - start:.0f} s")
    return out


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pages(site: Path) -> list[str]:
    # The slide decks under slides/ are reveal.js pages, checked by test_slides.py.
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if "_static" not in p.parts and "slides" not in p.parts)


def test_site_has_the_landing_page_every_notebook_and_every_doc(site):
    pages = set(_pages(site))
    expected = {"index.html"} | {f"notebooks/{n.stem}.html" for n in list_notebooks(REPO_ROOT / "notebooks")}
    expected |= {f"docs/{d.stem}.html" for d in (REPO_ROOT / "docs").glob("*.md")}
    assert expected <= pages, f"missing pages: {sorted(expected - pages)}"
    index = (site / "index.html").read_text()
    order = [index.find(f'notebooks/{n.stem}.html"') for n in list_notebooks(REPO_ROOT / "notebooks")]
    assert -1 not in order and order == sorted(order), "the notebooks are not listed in teaching order"


def test_every_page_loads_offline_with_formulas_images_and_links(site, server, browser, artifacts_dir):
    pages = _pages(site)
    problems: list[str] = []
    anchors: dict[str, set[str]] = {}
    links: list[tuple[str, str]] = []
    context = offline_context(browser, server, problems)  # the site must not need the internet
    page = context.new_page()
    current = {"page": ""}
    page.on("console", lambda m: problems.append(f"{current['page']}: console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{current['page']}: uncaught {e}"))
    page.on("requestfailed", lambda r: problems.append(f"{current['page']}: failed request {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"{current['page']}: HTTP {r.status} for {r.url}")
            if r.status >= 400 else None)
    try:
        for name in pages:
            current["page"] = name
            page.goto(f"{server}/{name}", wait_until="networkidle")
            if page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
                page.evaluate("() => MathJax.startup.promise")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
            problems += [f"{name}: image {src} did not load" for src, ok in images if not ok]
            raw = RAW_MATH.findall(page.evaluate(VISIBLE_PROSE))
            problems += [f"{name}: formula left raw: {text[:60]!r}" for text in raw[:5]]
            anchors[name] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
                links.append((name, href))
            if name == "index.html":
                page.screenshot(path=str(artifacts_dir / "site-index.png"))
            elif name.startswith("notebooks/01_"):
                page.screenshot(path=str(artifacts_dir / "site-notebook-01.png"))
                formulas = page.locator("mjx-container")
                if formulas.count():
                    formulas.nth(min(2, formulas.count() - 1)).scroll_into_view_if_needed()
                    page.screenshot(path=str(artifacts_dir / "site-notebook-01-formula.png"))
    finally:
        context.close()

    for name, href in links:
        if urlparse(href).scheme in ("http", "https", "mailto", "javascript"):
            continue  # an external link is not part of the site (nothing loads from it)
        target, fragment = urldefrag(urljoin(f"{server}/{name}", href))
        relative = unquote(urlparse(target).path).lstrip("/") or "index.html"
        if relative.endswith("/"):
            relative += "index.html"
        if not (site / relative).is_file():
            problems.append(f"{name}: broken link {href!r} (no {relative})")
        elif fragment and relative in anchors and fragment not in anchors[relative]:
            problems.append(f"{name}: link {href!r}: {relative} has no anchor #{fragment}")
    assert not problems, f"{len(problems)} problems on the site:\n" + "\n".join(problems[:40])


def test_a_solution_is_hidden_behind_a_toggle_that_opens(site, server, browser, artifacts_dir):
    problems: list[str] = []
    context = offline_context(browser, server, problems)
    page = context.new_page()
    try:
        name = next(n for n in list_notebooks(REPO_ROOT / "notebooks") if "solution" in n.read_text())
        page.goto(f"{server}/notebooks/{name.stem}.html", wait_until="networkidle")
        assert page.locator(".tag_injected-parameters details:not([open])").count() == 1, "papermill's cell shown"
        toggle = page.locator(".cell.tag_solution details").first
        code = toggle.locator(".cell_input")
        assert toggle.count() and not code.is_visible(), f"{name.stem}: a solution is in plain view"
        toggle.locator("summary").click()
        code.wait_for(state="visible", timeout=5_000)
        assert "answer_" in code.inner_text()
        code.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / "site-solution-opened.png"))
    finally:
        context.close()
    assert not problems, problems
