"""The teaching pages of the site (``docs/teaching/``): listed, offline, typeset, and printable.

The site is the one ``test_site.py`` builds (its fixtures; ``CIRLIB_SITE_DIR`` checks an already built
site). ``test_site.py`` opens every page of the site, these included; here, in addition:

* the landing page lists every teaching page under "For teachers";
* every teaching page loads with no request to another host and no MathJax error, and the method sheet
  shows every numbered equation of ``docs/teaching/method_sheet.md`` typeset with its number; the
  notebook pages typeset the numbers they tag (each at most once, each one of the sheet's) without error;
* printed by headless Chromium (print media, ``page.pdf``) on A4 and on Letter, the method sheet and the
  results one-pager are one page each, the site's navigation is hidden, and the PDFs are kept in
  ``build/browser/print/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import offline_context
from test_site import RAW_MATH, VISIBLE_PROSE, server, site  # noqa: F401 - the site's fixtures


REPO_ROOT = Path(__file__).resolve().parents[2]
TEACHING = sorted((REPO_ROOT / "docs" / "teaching").glob("*.md"))
METHOD_SHEET = "docs/teaching/method_sheet.html"
#: Chromium writes one ``/Type /Page`` dictionary per page (and one ``/Type /Pages`` tree).
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
PAPERS = ("A4", "Letter")
#: What the site shows around the content on screen; printing hides all of it.
NAVIGATION = (".bd-header", ".bd-sidebar-primary", ".bd-sidebar-secondary", ".prev-next-area", "#jb-print-toc")


def pdf_pages(pdf: bytes) -> int:
    return len(_PDF_PAGE.findall(pdf))


def _offline_page(browser, server: str, problems: list[str]):
    context = offline_context(browser, server, problems)
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"uncaught {e}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
    return context, page


def _open(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")


def test_the_landing_page_lists_every_teaching_page(site):
    assert TEACHING, "docs/teaching/ has no page"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "For teachers" in index
    for doc in TEACHING:
        assert (site / "docs" / "teaching" / f"{doc.stem}.html").is_file(), doc.name
        assert f'href="docs/teaching/{doc.stem}.html"' in index, f"index.html does not link {doc.name}"


def test_teaching_pages_load_offline_with_every_formula_typeset(site, server, browser):
    problems: list[str] = []
    context, page = _offline_page(browser, server, problems)
    try:
        for doc in TEACHING:
            name = f"docs/teaching/{doc.stem}.html"
            _open(page, f"{server}/{name}")
            problems += [f"{name}: MathJax error" for _ in range(page.locator("mjx-merror").count())]
            raw = RAW_MATH.findall(page.evaluate(VISIBLE_PROSE))
            problems += [f"{name}: formula left raw: {text[:60]!r}" for text in raw]
            images = page.eval_on_selector_all("img",
                                               "els => els.map(e => [e.getAttribute('src'), e.naturalWidth > 0])")
            problems += [f"{name}: image {src} did not load" for src, ok in images if not ok]
            if name == METHOD_SHEET:
                tags = [f"({k})" for k in re.findall(r"\\tag\{(\d+)\}", doc.read_text(encoding="utf-8"))]
                shown = _typeset_tags(page)
                if shown != tags:
                    problems.append(f"{name}: the typeset equation numbers are {shown}, the sheet's {tags}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def _typeset_tags(page) -> list[str]:
    """The equation numbers MathJax typeset on the page, in order (from its assistive MathML)."""
    return page.eval_on_selector_all("mjx-assistive-mml mlabeledtr > mtd:first-child",
                                     "els => els.map(e => e.textContent.trim())")


def test_notebook_pages_typeset_the_sheets_equation_numbers_without_error(site, server, browser):
    """Every \\tag of a page typeset as a number, each at most once over the notebooks, every one a number
    of the sheet, no MathJax error."""
    sheet = [f"({k})" for k in re.findall(r"\\tag\{(\d+)\}", (REPO_ROOT / "docs/teaching/method_sheet.md").read_text())]
    problems: list[str] = []
    context, page = _offline_page(browser, server, problems)
    seen: list[str] = []
    try:
        for notebook in sorted((site / "notebooks").glob("*.html")):
            name = f"notebooks/{notebook.name}"
            _open(page, f"{server}/{name}")
            problems += [f"{name}: MathJax error" for _ in range(page.locator("mjx-merror").count())]
            tags = _typeset_tags(page)
            written = [f"({k})" for k in re.findall(r"\\tag\{(\d+)\}", notebook.read_text(encoding="utf-8"))]
            if tags != written:  # a tag in inline math is dropped silently
                problems.append(f"{name}: the page's formulas tag {written}, MathJax typeset the numbers {tags}")
            problems += [f"{name}: equation number {t} is not on the method sheet" for t in tags if t not in sheet]
            seen += tags
    finally:
        context.close()
    problems += [f"equation number {t} typeset {seen.count(t)} times in the notebooks"
                 for t in set(seen) if seen.count(t) > 1]
    assert not problems, "\n".join(problems)


def test_printed_sheet_and_one_pager_are_one_page_on_a4_and_letter_without_navigation(site, server, browser,
                                                                                     artifacts_dir):
    out = artifacts_dir / "print"
    out.mkdir(exist_ok=True)
    problems: list[str] = []
    context, page = _offline_page(browser, server, problems)
    pages: dict[tuple[str, str], int] = {}
    try:
        for doc in TEACHING:
            _open(page, f"{server}/docs/teaching/{doc.stem}.html")
            page.emulate_media(media="print")
            shown = page.evaluate("sels => sels.filter(s => [...document.querySelectorAll(s)].some("
                                  "e => getComputedStyle(e).display !== 'none'))", list(NAVIGATION))
            problems += [f"{doc.stem}: {s} printed" for s in shown]
            for paper in PAPERS:
                pdf = page.pdf(format=paper)
                (out / f"{doc.stem}-{paper}.pdf").write_bytes(pdf)
                pages[doc.stem, paper] = pdf_pages(pdf)
            page.emulate_media(media="screen")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    for stem in ("method_sheet", "results"):  # the sheet and the results one-pager
        for paper in PAPERS:
            assert pages[stem, paper] == 1, f"{stem} prints on {pages[stem, paper]} {paper} pages, not one"
    # The counter sees more than one page where there is more: the session plan is several pages long.
    assert pages["session_plan", "A4"] > 1, pages
