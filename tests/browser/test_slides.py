"""The slide decks (``make slides``) and the live slides in JupyterLab, in headless Chromium.

Every deck is served from ``127.0.0.1`` with every request to another host refused (a deck works
with the network off); the test steps through every slide, finds the formulas typeset and every image
loaded, and opens the speaker view on a slide with speaker notes. The decks are built from the
executed notebooks the JupyterLab test saved (``build/browser/executed``), or fresh FAST runs; set
``CIRLIB_SLIDES_DIR`` to check already built decks (``build/slides`` after ``make slides``).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
from conftest import offline_context
from test_site import EXECUTED, RAW_MATH, _execute_fast, _fresh_executed, _QuietHandler

from cirlib.tools.notebooks import list_notebooks
from cirlib.tools.slides import build_decks

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = list_notebooks(REPO_ROOT / "notebooks")
#: The text of a deck's slides outside code, outputs and typeset math.
SLIDE_PROSE = """() => {
  const clone = document.querySelector('.reveal .slides').cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style, aside, .jp-OutputArea, .jp-InputArea')
       .forEach(e => e.remove());
  return clone.textContent;
}"""


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> Path:
    given = os.environ.get("CIRLIB_SLIDES_DIR")
    if given:
        path = Path(given).resolve()
        assert (path / "index.html").is_file(), f"CIRLIB_SLIDES_DIR={given}: no index.html; run `make slides` first"
        return path
    source = EXECUTED if _fresh_executed(NOTEBOOKS) else _execute_fast(NOTEBOOKS, tmp_path_factory.mktemp("fast"))
    out = REPO_ROOT / "build" / "browser" / "slides"
    build_decks(source, out)
    return out


@pytest.fixture(scope="module")
def server(decks):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(decks)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _has_formulas(notebook: Path) -> bool:
    cells = json.loads(notebook.read_text())["cells"]
    return any("$" in "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
               and c.get("metadata", {}).get("slideshow", {}).get("slide_type") != "skip")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_deck_steps_through_every_slide_offline(notebook, decks, server, browser, artifacts_dir):
    problems: list[str] = []
    context = offline_context(browser, server, problems, (1280, 860))
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught {e}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
    try:
        page.goto(f"{server}/{notebook.stem}.slides.html", wait_until="networkidle")
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=30_000)
        page.evaluate("() => MathJax.startup.promise")
        total = page.evaluate("() => Reveal.getTotalSlides()")
        visited = 1
        while not page.evaluate("() => Reveal.isLastSlide()") and visited <= total:
            page.evaluate("() => Reveal.next()")
            visited += 1
        assert total > 3 and visited == total, f"{notebook.name}: {visited} slides stepped through, {total} in the deck"
        page.screenshot(path=str(artifacts_dir / f"slides-{notebook.stem}-last.png"))
        if _has_formulas(notebook):
            assert page.locator("mjx-container").count() > 0, f"{notebook.name}: no typeset formula"
        raw = RAW_MATH.findall(page.evaluate(SLIDE_PROSE))
        problems += [f"formula left raw: {text[:60]!r}" for text in raw[:5]]
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        assert images and all(images), f"{notebook.name}: {images.count(False)} of {len(images)} images did not load"
    finally:
        context.close()
    assert not problems, f"{notebook.name}: " + "\n".join(problems[:20])


def test_speaker_view_shows_the_notes(decks, server, browser, artifacts_dir):
    deck = next(p for p in sorted(decks.glob("*.slides.html")) if '<aside class="notes">' in p.read_text())
    problems: list[str] = []
    context = offline_context(browser, server, problems, (1280, 860))
    page = context.new_page()
    try:
        page.goto(f"{server}/{deck.name}", wait_until="networkidle")
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=30_000)
        notes = page.evaluate("""() => {
            const aside = document.querySelector('aside.notes');
            const at = Reveal.getIndices(aside.closest('section'));
            Reveal.slide(at.h, at.v);
            return aside.textContent.trim();
        }""")
        with context.expect_page() as popup:
            page.keyboard.press("s")
        speaker = popup.value
        speaker.wait_for_selector(".speaker-controls-notes", timeout=30_000)
        speaker.wait_for_function("() => document.querySelector('.speaker-controls-notes .value')"
                                  " && document.querySelector('.speaker-controls-notes .value').textContent.trim()")
        shown = speaker.inner_text(".speaker-controls-notes .value")
        speaker.screenshot(path=str(artifacts_dir / "slides-speaker-view.png"))
        assert notes[:40].split()[0] in shown and shown.strip()[:20] in notes, (notes[:80], shown[:80])
    finally:
        context.close()
    assert not problems, "\n".join(problems)
