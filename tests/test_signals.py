"""SIGTERM (Slurm, ``docker stop``, ``kill``) stops a run like Ctrl-C.

The run stops at the next step boundary, writes ``last.pt`` there, records ``"interrupted"``, prints
the one-line ``--resume`` hint and exits with 143; the resumed run ends exactly as an uninterrupted
one. Loader workers ignore the signal, so a run that fails while they run shuts them down itself and
the process still exits.
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

from cirlib.engine import read_checkpoint
from cli_runs import ROOT, TINY, single_thread_env, strip_times, train_command
from fixtures_data import make_cub_fixture

# 6 steps per epoch, no periodic mid-epoch checkpoint: only the signal writes one mid-epoch.
SETTINGS = ["train.epochs=6", "train.checkpoint_every_steps=0", "eval.val_split=null", "train.lr_schedule=cosine"]


def _cmd(out: Path, *extra: str) -> list[str]:
    return train_command(out, SETTINGS, *extra)


@pytest.mark.slow
def test_sigterm_checkpoints_says_how_to_resume_and_the_resume_is_exact(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(out), cwd=ROOT, env=single_thread_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None and not (out / "metrics.json").is_file():
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.stderr.read()}"
        time.sleep(0.1)  # somewhere in epoch 2 or later, most likely mid-epoch
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0] == (f"cirlib train: interrupted (SIGTERM). {out / 'last.pt'} holds the last checkpoint (the step "
                        "it stopped at): run the same command with --resume to continue.")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    ckpt = read_checkpoint(out / "last.pt")
    assert ckpt["global_step"] == metrics["global_step"] > 0, "last.pt is the step it stopped at"
    assert not (out / "final.pt").exists() and not (out / "run.lock").exists()

    resumed = subprocess.run(_cmd(out, "--resume"), cwd=ROOT, env=single_thread_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed from {out / 'last.pt'}" in resumed.stdout

    reference = tmp_path / "reference"
    done = subprocess.run(_cmd(reference), cwd=ROOT, env=single_thread_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ref = json.loads((reference / "metrics.json").read_text())
    got = json.loads((out / "metrics.json").read_text())
    assert got["status"] == "completed" and got["global_step"] == ref["global_step"] == 36
    assert strip_times(got["history"]) == strip_times(ref["history"])
    assert got["test"] == ref["test"]


def test_sigint_and_sigterm_are_deferred_to_the_step_boundary_then_raise():
    from cirlib.engine.signals import Interrupted, StopSignals

    with StopSignals() as stop:
        with stop.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.pending == signal.SIGTERM  # noted, not raised: the step finishes
            with pytest.raises(Interrupted) as second:  # a second signal does not wait
                os.kill(os.getpid(), signal.SIGINT)
            assert second.value.name == "SIGINT"
        with pytest.raises(Interrupted) as outside:
            os.kill(os.getpid(), signal.SIGTERM)
        assert isinstance(outside.value, KeyboardInterrupt) and outside.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_interrupted_final_evaluation_is_recorded(tmp_path, monkeypatch):
    import cirlib.engine
    from cirlib.config import load_config
    from cirlib.engine import fit

    def evaluate(self, loader, desc="eval"):
        os.kill(os.getpid(), signal.SIGTERM)  # not deferred outside the training loop
        raise AssertionError("SIGTERM did not interrupt the evaluation")

    monkeypatch.setattr(cirlib.engine.Trainer, "evaluate", evaluate)
    out = tmp_path / "run"
    config = load_config(TINY, [f"output_dir={out}", "train.epochs=1", "eval.val_split=null", "data.train_limit=32",
                                "data.eval_limit=16", "train.checkpoint_every_steps=0"])
    with pytest.raises(KeyboardInterrupt):
        fit(config, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and (out / "final.pt").is_file()


def test_a_run_that_fails_with_loader_workers_running_exits(tmp_path):
    """A bad image met by a loader worker mid-epoch ends the command in one line, and the process exits.

    The workers ignore SIGTERM; left to the interpreter's exit (which sends them SIGTERM, then waits),
    they would keep it waiting forever.
    """
    info = make_cub_fixture(tmp_path / "cub")
    bad = tmp_path / "cub" / "images" / info["train"][0]["image_id"]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size * 2 // 3])  # the header passes, decoding fails
    command = [sys.executable, "-m", "cirlib", "train", "--config", str(TINY), "--no-progress", "--set",
               "data.name=cub", f"data.root={tmp_path / 'cub'}", "data.image_size=32", "data.batch_size=1",
               "data.num_workers=1", "data.train_limit=null", "data.eval_limit=null", "eval.val_split=null",
               "model.num_classes=null", "train.epochs=1", f"output_dir={tmp_path / 'run'}"]
    done = subprocess.run(command, cwd=ROOT, env=single_thread_env(),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 2, done.stderr
    assert "Cannot decode image" in done.stderr and bad.name in done.stderr
