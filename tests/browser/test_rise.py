"""Live slides in JupyterLab: jupyterlab-rise renders a notebook as a reveal.js slideshow.

JupyterLab opens notebook 01 (its committed slide metadata), "View > Render as Reveal Slideshow"
opens the slideshow beside it, and the right arrow advances one slide.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from cirlib.tools.notebooks import list_notebooks

REPO_ROOT = Path(__file__).resolve().parents[2]


def _slideshow(page, timeout: float = 90.0):
    """The RISE frame once its deck is drawn (the panel may load its iframe more than once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "/rise/" in frame.url and not frame.is_detached():
                try:
                    if frame.evaluate("() => document.querySelectorAll('.reveal section').length") > 3:
                        return frame
                except Exception:  # navigated away while we asked: look again
                    pass
        page.wait_for_timeout(500)
    raise AssertionError(f"no RISE slideshow drawn within {timeout:.0f} s; frames: {[f.url for f in page.frames]}")


def test_jupyterlab_presents_a_notebook_as_slides_and_advances(lab_factory, tmp_path, browser, artifacts_dir):
    notebook = list_notebooks(REPO_ROOT / "notebooks")[1]
    shutil.copy2(notebook, tmp_path / notebook.name)
    lab = lab_factory(tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{lab.url}/lab/workspaces/rise/tree/{notebook.name}?reset&token={lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.locator(".lm-MenuBar-item", has_text="View").first.click()
        page.locator(".lm-Menu-item", has_text="Render as Reveal Slideshow").first.click()
        page.wait_for_function("() => [...document.querySelectorAll('iframe')].some(f => f.src.includes('/rise/'))",
                               timeout=60_000)
        frame = _slideshow(page)
        first = frame.evaluate("() => location.hash")
        page.frame_locator("iframe").first.locator(".reveal").click()
        page.keyboard.press("ArrowRight")
        frame.wait_for_function(f"() => location.hash && location.hash !== {first!r}", timeout=20_000)
        shown = frame.evaluate("() => document.querySelector('.reveal section.present').innerText")
        page.screenshot(path=str(artifacts_dir / "rise-slideshow.png"))
        headings = [line for line in notebook.read_text().split('"') if line.startswith("## ")]
        assert headings and headings[0][3:].split("\\n")[0].strip() in shown, (headings[:1], shown[:200])
    finally:
        context.close()
