"""The project's set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def test_environment_yml_installs_the_project_with_its_notebook_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip section"
    assert "pip" in deps
    extras = set(_pyproject()["project"]["optional-dependencies"])
    installs = pip_sections[0]
    assert len(installs) == 1, "environment.yml stays thin: only the project itself"
    match = re.fullmatch(r"-e \.\[([\w,]+)\]", installs[0])
    assert match, f"unexpected pip line {installs[0]!r}"
    requested = set(match.group(1).split(","))
    assert "notebooks" in requested
    assert requested <= extras, f"environment.yml asks for extras {requested - extras} pyproject lacks"


def test_environment_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1
    version = tuple(int(x) for x in pythons[0].split("=")[-1].split("."))
    minimum = _pyproject()["project"]["requires-python"].removeprefix(">=")
    assert version >= tuple(int(x) for x in minimum.split("."))


def test_notebook_stack_is_an_extra_and_the_design_card_packages_are_declared():
    project = _pyproject()["project"]
    names = {re.split(r"[<>=!\[; ]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    notebook = {re.split(r"[<>=!\[; ]", dep, maxsplit=1)[0].lower()
                for dep in project["optional-dependencies"]["notebooks"]}
    assert {"torch", "torchvision", "matplotlib"} <= names
    assert {"jupyterlab", "papermill", "ipywidgets"} <= notebook
    assert "nbval" in {re.split(r"[<>=!\[; ]", d, maxsplit=1)[0] for d in project["optional-dependencies"]["test"]}


def test_pinned_torch_lies_within_the_supported_range():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    deps = {re.split(r"[<>=]", d, maxsplit=1)[0]: d for d in _pyproject()["project"]["dependencies"]}
    torch_major_minor = tuple(int(x) for x in pins["torch"].split(".")[:2])
    low = tuple(int(x) for x in re.search(r">=([\d.]+)", deps["torch"]).group(1).split(".")[:2])
    assert torch_major_minor >= low


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_passing_tests_leave_no_checkpoints_behind():
    """The paper-scale tests write 20.6 GiB of checkpoints when pytest keeps every tmp_path (CI ran out of disk)."""
    assert _pyproject()["tool"]["pytest"]["ini_options"]["tmp_path_retention_policy"] == "failed"
