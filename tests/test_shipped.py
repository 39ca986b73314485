"""The shipped seed-0 checkpoints (cirlib.runs.shipped): current under today's code, and used by
train_or_load only for exactly their run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cirlib.engine
import cirlib.runs.shipped as shipped
from cirlib.config import config_from_dict, config_to_dict, load_yaml
from cirlib.engine.checkpoint import read_checkpoint
from cirlib.paths import RESULTS_DIR
from cirlib.runs.cache import train_or_load
from cirlib.runs.identity import dataset_fingerprint, same_run
from cirlib.runs.experiments import experiment_config

REFRESH = ("refresh them: `rm -rf results/runs && make results && "
           "python -m cirlib.runs.shipped update --from results/runs`")
CONFIGS = shipped.shipped_configs()
KEYS = [str(shipped.run_key(c)) for c in CONFIGS]


def test_the_shipped_runs_are_the_notebooks_default_runs():
    present = {str(p.relative_to(shipped.SHIPPED_DIR)) for p in shipped.SHIPPED_DIR.glob("*/*/*") if p.is_dir()}
    assert present == set(KEYS), f"checkpoints/ holds {sorted(present)}, the notebooks load {sorted(KEYS)}; {REFRESH}"
    for config in CONFIGS:
        folder = shipped.shipped_folder(config)
        assert sorted(p.name for p in folder.iterdir()) == sorted(shipped.SHIPPED_FILES), folder


def test_a_fresh_clone_has_the_shipped_runs():
    """They are committed (not ignored, not left out of git), so a clone and `make install` have them."""
    root = shipped.SHIPPED_DIR.parent
    try:
        tracked = subprocess.run(["git", "ls-files", "checkpoints"], cwd=root, capture_output=True, text=True,
                                 check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    expected = {f"checkpoints/{key}/{name}" for key in KEYS for name in shipped.SHIPPED_FILES}
    assert expected <= set(tracked), f"not committed: {sorted(expected - set(tracked))[:3]}"


@pytest.mark.parametrize("config", CONFIGS, ids=KEYS)
def test_a_shipped_run_is_the_run_experiment_config_builds_today(config):
    folder = shipped.shipped_folder(config)
    checkpoint = read_checkpoint(folder / "final.pt")
    stored = config_from_dict(checkpoint["config"], source=str(folder / "final.pt"))
    same = same_run(stored, config, checkpoint.get("model_options"))
    assert same, f"{folder}: another config than today's; {REFRESH}"
    yaml_config = config_from_dict(load_yaml((folder / "config.yaml").read_text()), source="config.yaml")
    assert config_to_dict(yaml_config) == config_to_dict(stored)
    fingerprint = dataset_fingerprint(config)
    assert (folder / "data_fingerprint.txt").read_text().strip() == fingerprint, f"{folder}: other images; {REFRESH}"
    assert shipped.find_shipped_run(config, fingerprint) == folder
    assert "optimizer" not in checkpoint and "rng" not in checkpoint  # weights only: nothing resumes a finished run


def _flat(metrics: dict) -> dict[str, float]:
    """``{"top1": .., "maxboxacc@30": .., ...}``: one number per key."""
    by_iou = {f"maxboxacc@{k}": v for k, v in metrics["maxboxacc"].items()}
    return {**{k: v for k, v in metrics.items() if k != "maxboxacc"}, **by_iou}


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=KEYS)
def test_a_shipped_run_reproduces_its_recorded_metrics(config):
    # The evaluation runs on one thread (as training's final evaluation did) and scores on a 0.01
    # threshold grid: on the machine that trained the runs it reproduces the recorded numbers bit for
    # bit. Another CPU may round a float differently and flip one image: up to one image's share
    # (100 / images scored, 0.2 points) is allowed. A stale model (other weights, another architecture
    # or map pipeline) moves the numbers by far more, or does not load.
    folder = shipped.shipped_folder(config)
    recorded = shipped.recorded_metrics(folder)
    assert all(value is not None for value in recorded.values()), recorded
    one_image = 100.0 / config.data.eval_limit + 1e-9
    now = _flat(shipped.evaluate_run(folder))
    off = {k: (v, now[k]) for k, v in _flat(recorded).items() if abs(v - now[k]) > one_image}
    assert not off, f"{folder} no longer scores what it recorded (recorded, now): {off}; {REFRESH}"


def test_the_shipped_metrics_are_the_seed0_rows_of_results_json():
    """The shipped runs are make results' seed-0 runs: their metrics are the committed table's."""
    rows = {r["method"]: r for r in json.loads((RESULTS_DIR / "results.json").read_text())["runs"] if r["seed"] == 0}
    compared = 0
    for config in CONFIGS:
        row = rows.get(shipped.run_key(config).parts[1])
        if row is None:  # notebook 06's short ablation runs are not rows of the table
            continue
        test = json.loads((shipped.shipped_folder(config) / "metrics.json").read_text())["test"]
        ours = {"top1": test["top1"], "maxboxacc_v2": test["maxboxacc_v2"], "pxap": test["pxap"],
                **{f"maxboxacc_{iou}": value for iou, value in test["maxboxacc"].items()}}
        assert ours == {key: row[key] for key in ours}, f"{config.model.method}: results.json differs; {REFRESH}"
        compared += 1
    assert compared == 11


class _Trained(Exception):
    """Raised by the stand-in for fit: training started."""


@pytest.fixture
def shipped_cam(tmp_path, monkeypatch):
    """A FAST CAM run trained once and shipped from a temporary checkpoints/ folder."""
    trained = train_or_load(experiment_config("cam", fast=True, output_dir=tmp_path / "trained", device="cpu"),
                            progress=False)
    config = trained.config
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "checkpoints")
    shipped.ship_run(trained.output_dir, shipped.shipped_folder(config))
    return trained


def _no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise _Trained

    monkeypatch.setattr(cirlib.engine, "fit", fit)


def test_an_empty_run_folder_gets_the_shipped_run(shipped_cam, tmp_path, monkeypatch, capsys):
    _no_training(monkeypatch)
    capsys.readouterr()
    student = experiment_config("cam", fast=True, output_dir=tmp_path / "student", device="cpu")
    got = train_or_load(student, progress=False)
    run_dir = student.resolved_output_dir()
    source = shipped.shipped_folder(student)
    said = capsys.readouterr().out
    assert said.startswith(f"[cirlib] loading {run_dir / 'final.pt'}: a copy of the shipped checkpoint {source}")
    assert said.count("\n") == 1
    assert got.reused and got.shipped_from == str(source) and got.output_dir == run_dir
    assert got.metrics == shipped_cam.metrics
    for key, value in shipped_cam.model.state_dict().items():
        assert torch.equal(value, got.model.state_dict()[key]), key
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(shipped.SHIPPED_FILES)  # no last.pt: nothing trained
    assert not list(run_dir.parent.glob(".*"))  # the staging folder is gone
    again = train_or_load(student, progress=False)  # later loads say it too
    assert again.reused and again.shipped_from == str(source)
    assert capsys.readouterr().out.startswith(f"[cirlib] loading {run_dir / 'final.pt'}: a copy of the shipped")
    # a copy is never shipped back as a trained run
    assert "is a copy of the shipped" in shipped.unshippable_reason(student)
    assert shipped.unshippable_reason(shipped_cam.config) is None


def test_another_parameter_trains_its_own_run(shipped_cam, tmp_path, monkeypatch, capsys):
    _no_training(monkeypatch)
    longer = experiment_config("cam", fast=True, epochs=2, output_dir=tmp_path / "student", device="cpu")
    assert shipped.shipped_folder(longer).is_dir()  # the same folder name, another run
    with pytest.raises(_Trained):
        train_or_load(longer, progress=False)
    assert "training it now" in capsys.readouterr().out
    assert not (longer.resolved_output_dir() / "final.pt").exists()


def test_other_images_or_make_results_train(shipped_cam, tmp_path, monkeypatch):
    _no_training(monkeypatch)
    config = experiment_config("cam", fast=True, output_dir=tmp_path / "student", device="cpu")
    with pytest.raises(_Trained):  # make demo and make results train their runs
        train_or_load(config, progress=False, shipped=False)
    (shipped.shipped_folder(config) / "data_fingerprint.txt").write_text("0000000000000000\n")
    assert shipped.find_shipped_run(config, dataset_fingerprint(config)) is None
    with pytest.raises(_Trained):
        train_or_load(config, progress=False)


def test_the_copy_goes_into_a_folder_holding_only_a_stale_lock(shipped_cam, tmp_path):
    run_dir = tmp_path / "student" / "synthetic" / "cam" / "seed0-fast"
    run_dir.mkdir(parents=True)
    (run_dir / "run.lock").write_text("999999\n")
    shipped.copy_shipped_run(shipped.shipped_folder(shipped_cam.config), run_dir)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert {p.name for p in run_dir.iterdir()} == {*shipped.SHIPPED_FILES, "run.lock"}


@pytest.mark.slow
def test_notebooks_05_and_07_run_without_training_from_an_empty_output_dir(tmp_path):
    """benchmarks/class_ready.py: each notebook with its defaults and a new OUTPUT_DIR, as on a fresh clone."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "class_ready.py"
    spec = importlib.util.spec_from_file_location("class_ready", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["class_ready"] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "class_ready.json"
    bench.main(["--notebooks", "05", "07", "--out", str(out)])
    records = json.loads(out.read_text())["notebooks"]
    assert sorted(records) == ["05_spatial_self_attention.ipynb", "07_results.ipynb"]
    for name, record in records.items():
        assert "error" not in record, (name, record)
        assert not record["trained"] and not record["training_announced"], (name, record)
        assert record["copied_from_checkpoints"], name
        # The kernel's CPU time, not the wall time: another job on a shared CI machine inflates the
        # wall time, not this. On an idle 2-core machine the wall time is at most about the CPU time
        # plus the kernel's start (a notebook computes on one or two threads).
        assert record["kernel_cpu_seconds"] < 120, (name, record)
