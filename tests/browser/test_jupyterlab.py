"""Every notebook, run in JupyterLab in a real browser, the way a student meets it.

A throw-away JupyterLab (random port and token, temporary Jupyter folders) serves copies of the
notebooks with the FAST parameters and ``INTERACTIVE = True`` injected (as ``make test``'s nbval copies
are, plus the widgets). For each notebook the test opens it in headless Chromium, runs all cells from
the Run menu, waits for the kernel to go idle, saves it, and asserts:

* no cell shows an error, and every cell ran;
* every figure cell (one that calls ``plt.show()``) drew an image, and every image in the page loaded;
* the kernel the notebook names is the project's environment (a last cell imports ``cirlib`` and
  prints ``sys.prefix``);
* every widget rendered, and moving each slider by one step changes the image it draws;
* no error in the browser console and none in the server log.

A screenshot of each notebook goes to ``build/browser/``, the saved executed copies to
``build/browser/executed/`` (the site test reuses them rather than executing the notebooks twice).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from cirlib.tools.notebooks import (BROWSER_CHECK_TAG, FAST_PARAMETERS, WIDGET_VIEW_MIME, declared_parameters,
                                    list_notebooks, run_notebook)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "build" / "browser"

NOTEBOOKS = list_notebooks(REPO_ROOT / "notebooks")
EXECUTED = ARTIFACTS / "executed"
#: Seconds one notebook may take to run all its cells in FAST mode (they take 10-60 s on 2 cores).
RUN_TIMEOUT = float(os.environ.get("CIRLIB_BROWSER_RUN_TIMEOUT", "600"))
#: Seconds a widget may take to redraw after a slider moved.
WIDGET_TIMEOUT = 60.0
KERNEL_CHECK = (
    "# browser test: the kernel this notebook names is the project's environment\n"
    "import sys\n"
    "import cirlib\n"
    "print('KERNEL_CHECK', sys.prefix, cirlib.__file__)\n"
)
#: Server log lines that are errors (tornado/jupyter_server write "[E <time> ...]").
SERVER_ERROR = re.compile(r"^\[E |Traceback \(most recent call last\)", re.MULTILINE)


def _kernel_specs(env: dict[str, str]) -> dict[str, dict]:
    out = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
                         capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out)["kernelspecs"]


def _isolated_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The Jupyter environment of the test's JupyterLab: no user folders, only the venv's and ours."""
    env = dict(os.environ, JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_CONFIG_DIR=str(home / "config"))
    env.pop("JUPYTER_PATH", None)
    env.update(extra or {})
    return env


def _register_kernels(names: set[str], home: Path) -> dict[str, str]:
    """Make every kernel the notebooks name available to the test's JupyterLab.

    ``python3`` is the environment's own ipykernel. Any other name (the project's named kernel) is
    used as the environment registers it (``--sys-prefix``, in ``.venv``); only where it is missing
    is it registered here, in a temporary prefix put on ``JUPYTER_PATH``, pointing at this
    environment's Python. The user's own kernels (``~/.local/share/jupyter``) are never used.
    """
    missing = names - set(_kernel_specs(_isolated_env(home))) - {"python3"}
    if not missing:
        return {}
    prefix = home / "kernels-prefix"
    for name in sorted(missing):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", name,
                        "--display-name", f"Python ({name})"], check=True, capture_output=True)
    return {"JUPYTER_PATH": str(prefix / "share" / "jupyter")}


def test_a_named_kernel_missing_from_the_environment_is_registered_for_the_test(tmp_path):
    extra = _register_kernels({"python3", "cirlib-test-kernel"}, tmp_path)
    specs = _kernel_specs(_isolated_env(tmp_path, extra))
    argv = specs["cirlib-test-kernel"]["spec"]["argv"]
    assert Path(argv[0]).resolve() == Path(sys.executable).resolve()
    assert _register_kernels({"python3"}, tmp_path) == {}


def _prepare(source: Path, target: Path, output_dir: Path) -> None:
    """The FAST copy with widgets on, the notebook's own kernel name, and the kernel check last."""
    params = dict(FAST_PARAMETERS, INTERACTIVE=True, OUTPUT_DIR=str(output_dir))
    params = {k: v for k, v in params.items() if k in declared_parameters(source)}
    run_notebook(source, target, params, prepare_only=True)
    original = nbformat.read(str(source), as_version=4)
    nb = nbformat.read(str(target), as_version=4)
    nb.metadata["kernelspec"] = original.metadata["kernelspec"]
    check = nbformat.v4.new_code_cell(KERNEL_CHECK)
    check.metadata["tags"] = [BROWSER_CHECK_TAG]
    nb.cells.append(check)
    for cell in nb.cells:  # committed checked outputs would confuse "did this cell run?"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, str(target))


@pytest.fixture(scope="module")
def lab(lab_factory, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-notebooks")
    runs = root / "runs"
    # Reuse the FAST runs nbval just trained (same parameters, same checkpoints), if asked to:
    # the browser tests then spend their time in the browser, not retraining tiny models.
    reuse = os.environ.get("CIRLIB_BROWSER_REUSE_RUNS")
    if reuse and Path(reuse).is_dir():
        shutil.copytree(reuse, runs, dirs_exist_ok=True)
    for notebook in NOTEBOOKS:
        _prepare(notebook, root / notebook.name, runs)
    kernels = {nbformat.read(str(n), as_version=4).metadata["kernelspec"]["name"] for n in NOTEBOOKS}
    extra_env = _register_kernels(kernels, tmp_path_factory.mktemp("kernels"))
    if EXECUTED.exists():
        shutil.rmtree(EXECUTED)
    EXECUTED.mkdir(parents=True)
    (ARTIFACTS / "jupyterlab.json").unlink(missing_ok=True)
    return lab_factory(root, extra_env)


def _delete_sessions(lab) -> None:
    """Shut down every kernel of the server (one notebook's kernel must not slow the next)."""
    for session in lab.api("/api/sessions"):
        request = urllib.request.Request(f"{lab.url}/api/sessions/{session['id']}", method="DELETE",
                                         headers={"Authorization": f"token {lab.token}"})
        urllib.request.urlopen(request, timeout=30).close()


def _kernel_idle(lab) -> bool:
    # A session is recorded only once its kernel has started; before that, listing the kernels races
    # jupyter_server's start (the kernel is listed before its execution_state is set: a 500).
    if not lab.api("/api/sessions"):
        return False
    kernels = lab.api("/api/kernels")
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


def _prompts(page) -> list[str]:
    return page.eval_on_selector_all(
        ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt", "els => els.map(e => e.textContent.trim())")


def _wait_for_run(page, lab, name: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        prompts = _prompts(page)
        if prompts and not any("*" in p for p in prompts) and any(re.search(r"\d", p) for p in prompts):
            time.sleep(1.0)  # let the last outputs arrive and the kernel report idle
            if _kernel_idle(lab) and not any("*" in p for p in _prompts(page)):
                return
        page.wait_for_timeout(500)
    raise AssertionError(f"{name}: cells still running after {RUN_TIMEOUT:.0f} s (prompts {_prompts(page)})")


def _save(page, lab, name: str) -> nbformat.NotebookNode:
    path = lab.root / name
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before and not page.locator(".jp-mod-dirty").count():
            break
        page.wait_for_timeout(250)
    else:
        raise AssertionError(f"{name}: JupyterLab did not save the notebook within 60 s")
    shutil.copy2(path, EXECUTED / name)
    return nbformat.read(str(path), as_version=4)


def _errors(nb) -> list[str]:
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                found.append(f"cell {index} ({first[:50]!r}...): {output.get('ename')}: {output.get('evalue')}")
    return found


def _cell_tree(cell) -> ast.Module:
    code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return ast.parse(code)


def _is_show(node: ast.AST) -> bool:
    func = getattr(node, "func", None)
    return isinstance(func, ast.Attribute) and func.attr == "show" and getattr(func.value, "id", "") == "plt"


def _plotting_functions(cells) -> set[str]:
    """Names of the functions the notebook defines that end in ``plt.show()``."""
    names = set()
    for cell in cells:
        if cell.cell_type == "code":
            for node in ast.walk(_cell_tree(cell)):
                if isinstance(node, ast.FunctionDef) and any(_is_show(n) for n in ast.walk(node)):
                    names.add(node.name)
    return names


class _DrawingCall(ast.NodeVisitor):
    """Finds a ``plt.show()``, or a call of a plotting function, that the cell itself runs."""

    def __init__(self, plotting: set[str]):
        self.plotting, self.found = plotting, False

    def visit_FunctionDef(self, node):  # a definition draws nothing until it is called
        pass

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node):
        if _is_show(node) or getattr(node.func, "id", None) in self.plotting:
            self.found = True
        self.generic_visit(node)


def _figure_cells(cells) -> list[int]:
    """Cells that draw a figure when they run (docs/design.md#notebook-conventions: every plot ends with ``plt.show()``):
    they call ``plt.show()`` or a plotting function of the notebook, at their top level or in an
    ``if``/``for``/``with`` block. Images drawn inside an interact widget are checked on their own."""
    plotting = _plotting_functions(cells)
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type == "code":
            visitor = _DrawingCall(plotting)
            visitor.visit(_cell_tree(cell))
            if visitor.found:
                found.append(index)
    return found


def _has_image(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def _image_bytes(src: str) -> bytes:
    head, _, data = src.partition(",")
    return base64.b64decode(data) if head.endswith(";base64") else src.encode()


def _settled_image(widget, quiet_ms: int = 1000, timeout: float = WIDGET_TIMEOUT) -> bytes:
    """The widget's image once it stopped changing (the redraws a drag queued are all done)."""
    images = widget.locator(".widget-output img")
    last, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _image_bytes(images.first.get_attribute("src") or "") if images.count() else b""
        if now and now == last:
            return now
        last = now
        widget.page.wait_for_timeout(quiet_ms)
    return last or b""


def _wait_idle(page, lab, timeout: float = WIDGET_TIMEOUT) -> None:
    """Wait until the kernel has drawn every redraw the last drag queued."""
    deadline = time.monotonic() + timeout
    while not _kernel_idle(lab) and time.monotonic() < deadline:
        page.wait_for_timeout(250)


def _check_widgets(page, lab, name: str) -> int:
    """Drag every slider of every interact widget; the image it draws must change."""
    interacts = page.locator(".jp-OutputArea-output .widget-interact")
    moved = 0
    for i in range(interacts.count()):
        widget = interacts.nth(i)
        sliders = widget.locator(".widget-slider")
        assert sliders.count() > 0, f"{name}: interact widget {i} has no slider"
        for j in range(sliders.count()):
            slider = sliders.nth(j)
            label = slider.locator(".widget-label").inner_text().strip() or f"slider {j}"
            _wait_idle(page, lab)  # the previous slider's redraws must not pass for this one's
            before = _settled_image(widget)
            assert before, f"{name}: interact widget {i} drew no image before {label!r} moved"
            handle, readout = slider.locator(".noUi-handle"), slider.locator(".widget-readout")
            value = readout.inner_text().strip()
            now, low, top = (float(handle.get_attribute(a) or 0)
                             for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax"))
            at_top = now >= top
            # Drag the handle as a student would, right (left when it sits at the maximum): 20 px, and
            # for an integer slider at least 0.6 of one step, so a short range (0..1 in FAST mode)
            # moves too; never past the end of the track.
            handle.scroll_into_view_if_needed()
            box, track = handle.bounding_box(), slider.locator(".noUi-base").bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            integer = "." not in value
            distance = max(20.0, 0.6 * track["width"] / max(top - low, 1e-9)) if integer else 20.0
            target = (max(track["x"], x - distance) if at_top
                      else min(track["x"] + track["width"], x + distance))
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(target, y, steps=5)
            page.mouse.up()
            page.wait_for_timeout(300)
            if readout.inner_text().strip() == value:
                # The drag did not catch the handle (the page can shift under the mouse while other
                # outputs settle): move it with the keyboard, the slider's other way in.
                handle.focus()
                page.keyboard.press("ArrowLeft" if at_top else "ArrowRight")
            deadline = time.monotonic() + WIDGET_TIMEOUT
            after = before
            while time.monotonic() < deadline:
                page.wait_for_timeout(300)
                now = widget.locator(".widget-output img")
                if now.count():
                    after = _image_bytes(now.first.get_attribute("src") or "")
                    if after != before:
                        break
            new_value = readout.inner_text().strip()
            assert new_value != value, f"{name}: slider {label!r} of widget {i} did not move (value {value})"
            changed = after != before
            assert changed, (
                f"{name}: moving slider {label!r} of widget {i} from {value} to {new_value} did not change "
                f"the drawn image within {WIDGET_TIMEOUT:.0f} s")
            moved += 1
    return moved


def _record(name: str, values: dict) -> None:
    """Add one notebook's numbers to ``build/browser/jupyterlab.json`` (what the run measured)."""
    path = ARTIFACTS / "jupyterlab.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    record[name] = values
    path.write_text(json.dumps(record, indent=1) + "\n")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(notebook: Path, lab, browser, artifacts_dir):
    name = notebook.name
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
    log_start = len(lab.server_log())
    started = time.monotonic()
    try:
        # A workspace of its own, reset: JupyterLab would otherwise reopen the previous notebook too.
        page.goto(f"{lab.url}/lab/workspaces/{notebook.stem}/tree/{name}?reset&token={lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        dialog = page.locator(".jp-Dialog")
        page.wait_for_timeout(1000)
        assert not dialog.count(), f"{name}: JupyterLab asks: {dialog.first.inner_text()[:300]!r}"
        deadline = time.monotonic() + 120
        while not _kernel_idle(lab):
            assert time.monotonic() < deadline, f"{name}: the kernel did not start within 120 s"
            page.wait_for_timeout(500)

        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.wait_for_timeout(500)
        _wait_for_run(page, lab, name)
        nb = _save(page, lab, name)

        errors = _errors(nb)
        assert not errors, f"{name}: cells raised errors in JupyterLab: {errors}"
        code = [c for c in nb.cells if c.cell_type == "code"]
        unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.get("execution_count")]
        assert not unrun, f"{name}: cells {unrun} did not run"

        missing = [i for i in _figure_cells(nb.cells) if not _has_image(nb.cells[i])]
        assert not missing, f"{name}: figure cells {missing} rendered no image"
        png_outputs = sum(_has_image(c) for c in code)
        assert png_outputs > 0, f"{name}: no figure at all"
        images = page.eval_on_selector_all(
            ".jp-OutputArea-output img", "els => els.map(e => [e.complete && e.naturalWidth > 0, e.src.length])")
        broken = [i for i, (ok, _) in enumerate(images) if not ok]
        assert not broken, f"{name}: images {broken} in the page did not load"
        assert len(images) >= png_outputs, f"{name}: {png_outputs} figures saved but {len(images)} shown"

        check = [c for c in nb.cells if BROWSER_CHECK_TAG in c.metadata.get("tags", [])][0]
        text = "".join(o.get("text", "") for o in check.outputs if o.get("output_type") == "stream")
        assert text.startswith("KERNEL_CHECK "), f"{name}: the kernel check printed {text!r}"
        prefix, module = text.split()[1:3]
        assert Path(prefix).resolve() == Path(sys.prefix).resolve(), (
            f"{name}: kernel {nb.metadata['kernelspec']['name']!r} runs {prefix}, not the project's {sys.prefix}")
        assert Path(module).resolve().is_relative_to(REPO_ROOT / "cirlib"), f"{name}: cirlib from {module}"

        widget_outputs = sum(WIDGET_VIEW_MIME in o.get("data", {}) for c in code for o in c.get("outputs", []))
        # Each widget output of the notebook must be a drawn widget in the page, not an error or
        # a "Loading widget..." placeholder.
        # (JupyterLab marks a cell's top-level outputs with their mime type, except widget views.)
        rendered = page.eval_on_selector_all(
            ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output:not([data-mime-type])",
            "els => els.map(e => !!e.querySelector('.jupyter-widgets'))")
        failed = page.locator(".jp-OutputArea-output", has_text=re.compile("Error displaying widget|Loading widget"))
        assert not failed.count(), f"{name}: {failed.first.inner_text()[:200]!r}"
        assert len(rendered) == widget_outputs and all(rendered), (
            f"{name}: {widget_outputs} widget outputs in the notebook, {sum(rendered)} of {len(rendered)} drawn"
)
        views = len(rendered)
        sources = [c.source for c in code]
        # Widgets come from ipywidgets.interact, directly or through cirlib.viz.interact_or_static.
        expected_interacts = sum(s.count("widgets.interact(") + s.count("interact_or_static(") for s in sources)
        shown = page.locator(".jp-OutputArea-output .widget-interact").count()
        assert shown == expected_interacts, f"{name}: {expected_interacts} interact widgets expected, {shown} shown"
        moved = _check_widgets(page, lab, name)
        _wait_idle(page, lab)

        # The screenshot shows the first widget (after its sliders moved), else the first figure.
        shown_first = page.locator(".jp-OutputArea-output .widget-interact" if shown else ".jp-OutputArea-output img")
        shown_first.first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / f"{notebook.stem}.png"))
        _record(name, {"seconds": round(time.monotonic() - started, 1), "kernel": nb.metadata["kernelspec"]["name"],
                       "figures": png_outputs, "images_shown": len(images), "widget_views": views,
                       "interact_widgets": shown, "sliders_moved": moved})
        assert not console_errors, f"{name}: browser console errors: {console_errors[:5]}"
        server_errors = SERVER_ERROR.findall(lab.server_log()[log_start:])
        assert not server_errors, f"{name}: errors in the server log {lab.log_path}"
    except Exception:
        page.screenshot(path=str(artifacts_dir / f"{notebook.stem}-failed.png"))
        raise
    finally:
        context.close()
        _delete_sessions(lab)
