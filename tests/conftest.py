"""Fixtures shared by the test modules."""

from __future__ import annotations

import shutil
import tempfile

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread for the test (CPU timings and reductions as in ``make results``), restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: Peak disk of the unit tests under the temporary folder, measured with passing tests' folders removed
#: (0.9 GiB, the paper-scale module); below this, warn before the first test rather than fail in the middle.
_DISK_NEEDED_GIB = 2.0


def _free_disk() -> tuple[str, float]:
    folder = tempfile.gettempdir()
    return folder, shutil.disk_usage(folder).free / 2**30


def pytest_report_header(config) -> str:
    """Free disk where the tests write, so that a "No space left on device" failure is explained up front."""
    folder, free = _free_disk()
    return (f"disk: {free:.1f} GiB free under {folder}; tmp_path_retention_policy="
            f"{config.getini('tmp_path_retention_policy')}")


def pytest_sessionstart(session) -> None:
    """The header is hidden under ``-q`` (``make unit``): say it there too when the disk is short."""
    folder, free = _free_disk()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if free < _DISK_NEEDED_GIB and reporter is not None:
        reporter.write_line(f"warning: only {free:.1f} GiB free under {folder}; the unit tests need about "
                            f"{_DISK_NEEDED_GIB:.0f} GiB (the paper-scale checkpoints). Free space or set TMPDIR "
                            "to a folder on a larger disk.", yellow=True)
