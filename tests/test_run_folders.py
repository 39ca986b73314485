"""Issue 26, items 1, 2, 4 and 5: a run folder holds one run, and a resume continues that run exactly.

1. Two runs in one folder mixed their files; now a running run holds ``run.lock`` (a second
   process is refused, naming the PID) and a folder holding another run is refused.
2. ``--resume`` accepted another config and a completed run's folder; now every key is compared,
   a completed run is left alone and ``final.pt`` without ``last.pt`` is refused.
4. ``metrics.json`` recorded the learning rate of the resume step for the resumed epoch.
5. ``model.num_classes`` below the labels failed after ``config.yaml`` was written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cirlib.engine
from cirlib.cli import main
from cirlib.config import load_config
from cirlib.engine import fit, read_checkpoint
from cirlib.engine.run_folder import LOCK_NAME, RunFolderError, RunLock, lock_holder, plan_run_folder
from cirlib.engine.signals import Interrupted

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "synthetic" / "tiny.yaml"
#: 3 steps per epoch, 16 evaluation images.
FAST = ["data.train_limit=48", "data.eval_limit=16", "eval.val_split=null", "model.options.width=8",
        "train.checkpoint_every_steps=0"]


def _train(out: Path, *settings: str, flags: tuple[str, ...] = ()) -> int:
    return main(["train", "--config", str(TINY), "--no-progress", *flags, "--set", *FAST, f"output_dir={out}",
                 *settings])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture()
def completed(tmp_path):
    """A completed 2-epoch run (lr 0.02, seed 0) and its files."""
    torch.set_num_threads(1)
    out = tmp_path / "run"
    assert _train(out, "train.epochs=2") == 0
    return out


# ----------------------------------------------------------------------------- 1. one run per folder


def test_1_a_second_run_in_a_used_folder_is_refused_and_changes_nothing(completed, capsys):
    capsys.readouterr()
    before = _snapshot(completed)
    assert _train(completed, "seed=1", "train.epochs=1") == 2  # the second command
    line = _error_line(capsys)
    assert "holds another run" in line and "--resume" in line and "--overwrite" in line and "final.pt" in line
    assert _snapshot(completed) == before


def test_1_overwrite_replaces_the_whole_run(completed, capsys):
    assert _train(completed, "seed=1", "train.epochs=1", flags=("--overwrite",)) == 0
    assert "removed the previous run's" in capsys.readouterr().out
    config = load_config(completed / "config.yaml")
    assert config.seed == 1 and config.train.epochs == 1
    for name in ("last.pt", "final.pt"):
        stored = read_checkpoint(completed / name)["config"]
        assert stored["seed"] == 1 and stored["train"]["epochs"] == 1, name
    metrics = json.loads((completed / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 1
    assert not (completed / LOCK_NAME).exists(), "the lock is released when the run ends"


def test_1_a_running_run_holds_the_lock_and_a_second_process_is_refused_naming_its_pid(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cirlib.engine.run_folder import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert lock_holder(out) == holder.pid
        assert _train(out, "train.epochs=1") == 2
        line = _error_line(capsys)
        assert f"PID {holder.pid}" in line and "in use by another run" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME], "nothing written beside the lock"
    finally:
        holder.kill()  # SIGKILL: the holder cannot remove its lock file
        holder.wait(timeout=30)
    assert (out / LOCK_NAME).read_text().strip() == str(holder.pid)
    assert lock_holder(out) is None, "a dead process's lock is stale"
    assert _train(out, "train.epochs=1") == 0
    assert f"from PID {holder.pid}, which is no longer running" in capsys.readouterr().out


def test_1_the_lock_is_exclusive_within_one_process_too(tmp_path):
    config = load_config(TINY, FAST + [f"output_dir={tmp_path}"])
    with RunLock(tmp_path):
        with pytest.raises(RunFolderError, match=f"PID {os.getpid()}"):
            RunLock(tmp_path).acquire()
        with pytest.raises(RunFolderError, match="in use by another run"):
            plan_run_folder(config, tmp_path)
    assert plan_run_folder(config, tmp_path) == "new"


# ----------------------------------------------------------------------------- 2. resume checks


def test_2_resume_with_another_config_is_refused_naming_every_key(completed, capsys):
    capsys.readouterr()
    before = _snapshot(completed)
    assert _train(completed, "train.epochs=2", "train.lr=0.005", "seed=1", flags=("--resume",)) == 2
    line = _error_line(capsys)
    assert "Cannot resume" in line and "train.lr=0.02 -> 0.005" in line and "seed=0 -> 1" in line
    assert _snapshot(completed) == before, "config.yaml is not rewritten by a refused resume"


def test_2_device_and_output_dir_may_change_on_resume(completed, tmp_path):
    moved = tmp_path / "moved"
    completed.rename(moved)
    config = load_config(TINY, FAST + ["train.epochs=2", f"output_dir={moved}", "device=auto"])
    assert plan_run_folder(config, moved, resume=True) == "completed"


def test_2_resume_of_a_completed_run_says_so_and_does_nothing(completed, capsys):
    capsys.readouterr()
    before = _snapshot(completed)
    assert _train(completed, "train.epochs=2", flags=("--resume",)) == 0
    out = capsys.readouterr().out
    assert "holds a completed run" in out and "nothing to resume" in out and "Resumed" not in out
    assert _snapshot(completed) == before


def test_2_final_pt_without_last_pt_is_refused(completed, capsys):
    (completed / "last.pt").unlink()
    capsys.readouterr()
    before = _snapshot(completed)
    assert _train(completed, "train.epochs=2", flags=("--resume",)) == 2
    line = _error_line(capsys)
    assert "final.pt but no last.pt" in line and "--overwrite" in line
    assert _snapshot(completed) == before, "the finished final.pt, best.pt and metrics.json stay"


def test_2_a_new_config_over_a_completed_run(completed, capsys):
    """A run with another lr cannot start in a completed run's folder, nor resume there, so no resume
    can report the completed run's model as its own."""
    assert _train(completed, "train.epochs=2", "train.lr=0.005") == 2
    assert "holds another run" in _error_line(capsys)
    assert _train(completed, "train.epochs=2", "train.lr=0.005", flags=("--resume",)) == 2
    assert "train.lr=0.02 -> 0.005" in _error_line(capsys)


def test_2_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    assert _train(tmp_path / "r", flags=("--resume", "--overwrite")) == 2
    assert "give only one" in _error_line(capsys)


# ----------------------------------------------------------------------------- 4. lr history after a resume


def _interrupt_at(monkeypatch, global_step: int) -> None:
    """Send the trainer a (deferred) SIGTERM once it has finished ``global_step`` steps."""
    original = cirlib.engine.Trainer._accumulate

    def accumulate(self, out, labels):
        original(self, out, labels)
        if self.global_step == global_step:
            self.signals.pending = signal.SIGTERM

    monkeypatch.setattr(cirlib.engine.Trainer, "_accumulate", accumulate)


def test_4_resumed_history_records_the_lr_at_the_epochs_start(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    settings = FAST + ["train.epochs=3", "train.lr_schedule=cosine"]  # the lr changes every step
    reference = fit(load_config(TINY, settings + [f"output_dir={tmp_path / 'ref'}"]), progress=False)
    out = tmp_path / "cut"
    _interrupt_at(monkeypatch, 7)  # epoch 3, step 1 of 3
    with pytest.raises(Interrupted):
        fit(load_config(TINY, settings + [f"output_dir={out}"]), progress=False)
    monkeypatch.undo()
    ckpt = read_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["kind"]) == (2, 1, "mid-epoch")
    resumed = fit(load_config(TINY, settings + [f"output_dir={out}"]), resume=True, progress=False)
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in reference.history]
    assert resumed.history[2]["lr"] > 0.005  # the start of epoch 3, not its second step
    strip = [{k: v for k, v in h.items() if k != "time_s"} for h in reference.history]
    assert [{k: v for k, v in h.items() if k != "time_s"} for h in resumed.history] == strip
    assert resumed.test == reference.test


# ----------------------------------------------------------------------------- 5. num_classes


def test_5_num_classes_below_the_labels_fails_before_anything_is_written(completed, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    assert _train(fresh, "model.num_classes=2") == 2
    line = _error_line(capsys)
    assert "model.num_classes=2" in line and "go up to 9" in line and "null" in line
    assert not fresh.exists()
    before = _snapshot(completed)
    assert _train(completed, "model.num_classes=2", flags=("--overwrite",)) == 2
    assert "model.num_classes=2" in _error_line(capsys)
    assert _snapshot(completed) == before, "the completed run is untouched (config.yaml included)"
    assert _train(tmp_path / "ok", "model.num_classes=12", "train.epochs=1") == 0  # more classes than labels: fine
