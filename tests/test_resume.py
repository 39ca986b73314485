"""Nothing lost: a real training process killed mid-epoch resumes to the same final numbers.

Two runs of the tiny synthetic config with the same seed, each in its own process:
an uninterrupted one, and one that is SIGKILLed as soon as a *mid-epoch* ``last.pt`` of its
second epoch exists, then restarted with ``--resume``. On the CPU both must end with identical
training losses and test metrics.
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

from cirlib.engine import read_checkpoint
from cli_runs import ROOT, TINY, single_thread_env, strip_times, train_command

# 6 steps per epoch, a mid-epoch checkpoint every 2 steps; 3 epochs leave time to kill in epoch 2 or 3.
SETTINGS = ["train.epochs=3", "train.checkpoint_every_steps=2", "model.method=has"]


def _cmd(out: Path, *extra: str) -> list[str]:
    return train_command(out, SETTINGS, *extra)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run(_cmd(reference), cwd=ROOT, env=single_thread_env(),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), cwd=ROOT, env=single_thread_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    ckpt_path = killed / "last.pt"
    seen = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt_path.is_file():
                ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
                if ckpt["kind"] == "mid-epoch" and ckpt["epoch"] >= 1:
                    os.kill(proc.pid, signal.SIGKILL)
                    seen = ckpt
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and seen is None:
            proc.kill()
        proc.wait(timeout=30)
    assert seen is not None, f"no mid-epoch checkpoint of epoch 2 before the run ended: {proc.stderr.read()}"
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final.pt").exists(), "the run was supposed to be killed before its end"
    on_disk = read_checkpoint(ckpt_path)
    assert 0 < on_disk["step_in_epoch"] < 6 and on_disk["epoch"] >= 1

    resumed = subprocess.run(_cmd(killed, "--resume"), cwd=ROOT, env=single_thread_env(),
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed from" in resumed.stdout + resumed.stderr

    ref = json.loads((reference / "metrics.json").read_text())
    got = json.loads((killed / "metrics.json").read_text())
    assert got["status"] == "completed" and got["global_step"] == ref["global_step"] == 18
    assert strip_times(got["history"]) == strip_times(ref["history"])
    assert got["test"] == ref["test"]
    a = read_checkpoint(reference / "final.pt")["model"]
    b = read_checkpoint(killed / "final.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_checkpoint_starts_from_scratch(tmp_path, capsys):
    from cirlib.config import load_config
    from cirlib.engine import fit

    torch.set_num_threads(1)
    cfg = load_config(TINY, [f"output_dir={tmp_path / 'r'}", "train.epochs=1", "eval.val_split=null",
                             "data.train_limit=32", "data.eval_limit=16"])
    result = fit(cfg, resume=True, progress=False)
    assert "starting from scratch" in capsys.readouterr().out
    assert len(result.history) == 1
    # resuming a finished run trains nothing more and gives the same numbers
    again = fit(cfg, resume=True, progress=False)
    assert again.history == result.history and again.test == result.test
