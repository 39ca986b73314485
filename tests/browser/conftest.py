"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, a throw-away JupyterLab.

The tests need ``/usr/bin/chromium`` (Debian package ``chromium``; ``make browser`` and ``.ci/run``
install it when they run as root) and the ``playwright`` Python package (the ``test`` extra).
Playwright's own ``playwright install`` downloads browsers and cannot work here, so Playwright is
pointed at the Debian binary. Set ``CIRLIB_CHROMIUM`` to use another Chromium.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Screenshots, executed notebooks, server logs: what a person looks at after a run.
ARTIFACTS = REPO_ROOT / "build" / "browser"
CHROMIUM = os.environ.get("CIRLIB_CHROMIUM", "/usr/bin/chromium")
#: Without the background-networking flags Chromium's own connections (updates, sync, field trials)
#: are refused on a machine with no internet and show up as failed requests.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium (`apt-get install -y chromium`, what "
                    "`make browser` does as root) or set CIRLIB_CHROMIUM to a Chromium binary.", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make install` installs the test extra "
                    "(pip install -e '.[test]').", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class JupyterLab:
    """A JupyterLab server on a random port with a random token, in its own process group.

    Its config, data, runtime and settings folders are temporary, so nothing of the user's own
    Jupyter set-up (extensions, kernels, workspaces) leaks into the test, and the notebooks are
    copies: the repository's are never touched.
    """

    def __init__(self, root: Path, home: Path, extra_env: dict[str, str] | None = None):
        self.root, self.home = root, home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = ARTIFACTS / "jupyterlab-server.log"
        self.runtime = home / "runtime"
        settings = home / "settings"
        for folder in (self.runtime, settings, home / "config", home / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        # Every cell in the DOM (no virtual scrolling), so the test sees every output; no news or
        # update checks, which would ask the internet.
        _write_setting(settings, "@jupyterlab/notebook-extension", "tracker", {"windowingMode": "none"})
        _write_setting(settings, "@jupyterlab/apputils-extension", "notification",
                       {"fetchNews": "false", "checkForUpdates": False})
        self.env = dict(os.environ)
        self.env.update({
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.runtime),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "MPLCONFIGDIR": str(home / "mpl"),
            "IPYTHONDIR": str(home / "ipython"),
            **(extra_env or {}),
        })
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--ServerApp.terminals_enabled=False", "--ServerApp.allow_root=True",
            "--LabApp.extension_manager=readonly",  # the default asks PyPI for extensions
        ]
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}; log: {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s; log: {self.log_path}")

    def api(self, path: str) -> object:
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}", timeout=10) as reply:
            return json.loads(reply.read())

    def kernel_pids(self) -> list[int]:
        """Processes started with a connection file of this server's runtime folder (its kernels)."""
        pids = []
        marker = str(self.runtime).encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        """Stop the server and its kernels, whatever state the test left them in."""
        if self.process is None:
            return
        kernels = self.kernel_pids()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        for pid in kernels + self.kernel_pids():  # kernels run in sessions of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        self.process = None

    def server_log(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


def _write_setting(settings: Path, package: str, plugin: str, values: dict) -> None:
    path = settings / package / f"{plugin}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory) -> Iterator:
    """Start JupyterLab servers on demand; every one is stopped at the end, even after a failure."""
    started: list[JupyterLab] = []
    # A SIGTERM (a CI time-out, `timeout`) would end pytest without teardown and leave the server and
    # its kernels running: turn it into KeyboardInterrupt, which runs the finalizers below.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def start(root: Path, extra_env: dict[str, str] | None = None) -> JupyterLab:
        lab = JupyterLab(root, tmp_path_factory.mktemp("jupyter-home"), extra_env)
        started.append(lab)
        lab.start()
        return lab

    try:
        yield start
    finally:
        for lab in started:
            lab.stop()
        signal.signal(signal.SIGTERM, previous)


def copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)


def offline_context(browser, server: str, problems: list[str], viewport: tuple[int, int] = (1280, 900)):
    """A browser context that refuses every request not to ``server`` (a page must work with the network
    off) and records each refused URL in ``problems``."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})

    def route(r):
        if r.request.url.startswith((server, "data:", "about:")):
            r.continue_()
        else:
            problems.append(f"request to another host: {r.request.url}")
            r.abort()

    context.route("**/*", route)
    return context
