"""`cirlib train` / `cirlib evaluate` through `python -m cirlib` in subprocesses, and CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cirlib.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "synthetic" / "tiny.yaml"


def cli_env() -> dict:
    env = dict(os.environ)
    env.update(TQDM_DISABLE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


def run_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cirlib", *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
        timeout=timeout,
    )


def test_parser_has_train_and_evaluate_and_a_hook(monkeypatch):
    parser = build_parser()
    args = parser.parse_args(["train", "--config", "x.yaml", "--set", "a.b=1", "c=2", "--resume"])
    assert args.command == "train" and args.set == ["a.b=1", "c=2"] and args.resume
    args = parser.parse_args(["evaluate", "--checkpoint", "r/final.pt", "--split", "val", "--out", "m.json"])
    assert args.split == "val" and args.out == "m.json"
    assert {"train", "evaluate"} <= set(SUBCOMMANDS)

    def register(sub):
        p = sub.add_parser("hello")
        p.set_defaults(func=lambda a: 7)

    monkeypatch.setitem(SUBCOMMANDS, "hello", register)
    assert main(["hello"]) == 7


def test_unknown_set_key_is_a_clear_error(capsys):
    assert main(["train", "--config", str(TINY), "--set", "train.epoch=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'train.epoch'" in err and "train.epochs" in err


def test_bad_value_and_missing_files(capsys, tmp_path):
    assert main(["train", "--config", str(TINY), "--set", "data.name=cubb"]) == 2
    assert "did you mean 'cub'" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_evaluate_via_subprocess(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "--config", str(TINY), "--set", f"output_dir={out}", "train.epochs=1",
                   "train.checkpoint_every_steps=0")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout[proc.stdout.index("{"):])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and printed["top1"] == metrics["test"]["top1"]
    assert (out / "final.pt").is_file() and (out / "config.yaml").is_file()

    proc = run_cli("evaluate", "--checkpoint", str(out / "final.pt"), "--split", "test",
                   "--out", str(tmp_path / "eval.json"))
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["split"] == "test"
    for key in ("top1", "top5", "maxboxacc", "maxboxacc_v2", "gt_known_loc", "top1_loc", "pxap", "num_images"):
        assert evaluated[key] == metrics["test"][key], key
