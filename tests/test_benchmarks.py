"""The paper-scale benchmarks run (briefly, in their small CPU modes) and report what they claim to."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_train_throughput_small_cpu_mode(tmp_path, capsys):
    bench = _load("train_throughput")
    out = tmp_path / "tp.json"
    assert bench.main(["--device", "cpu", "--archs", "small_cnn", "--methods", "cam", "full", "--precisions", "fp32",
                       "--size", "32", "--batch", "2", "--steps", "1", "--warmup", "1",
                       "--loader-batches", "3", "--num-workers", "2", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    assert [(r["method"], r["precision"]) for r in rows] == [("cam", "fp32"), ("full", "fp32")]
    for row in rows:
        assert "error" not in row, row
        assert row["images_per_s"] > 0 and row["peak_mib"] > 50 and row["peak_kind"] == "process peak RSS"
    cam = {r["precision"]: r for r in rows if r["method"] == "cam"}
    full = {r["precision"]: r for r in rows if r["method"] == "full"}
    assert full["fp32"]["s_per_step"] > cam["fp32"]["s_per_step"]  # three passes against one
    loader = payload["loader"]
    assert loader["num_workers"] == 2 and loader["images"] == 4 and loader["images_per_s"] > 0
    assert "| small_cnn | full | fp32 | 2 | 32 |" in capsys.readouterr().out


def test_step_cost_measures_interleaved_ratios():
    bench = _load("step_cost")
    threads = torch.get_num_threads()
    lines: list[str] = []
    result = bench.measure(arch="small_cnn", size=32, batch=8, width=4, reps=2, methods=("cam", "full"),
                           log=lines.append)
    assert result["threads"] == 1 and len(lines) == 2
    assert torch.get_num_threads() == threads  # restored for the tests that follow
    assert result["methods"]["cam"]["ratio_cpu"] == 1.0
    # Three backbone passes and two attention modules: well above one CAM step.
    assert result["methods"]["full"]["ratio_cpu"] > 1.5


def test_throughput_speedups_are_relative_to_the_same_backbone_and_methods_fp32():
    bench = _load("train_throughput")
    rows = [{"arch": "resnet50", "method": "cam", "precision": "fp32", "images_per_s": 100.0},
            {"arch": "resnet50", "method": "cam", "precision": "bf16", "images_per_s": 160.0},
            {"arch": "resnet50", "method": "cam", "precision": "channels_last", "error": "RuntimeError: x"},
            {"arch": "vgg16", "method": "cam", "precision": "bf16", "images_per_s": 50.0}]  # no fp32 row: no ratio
    assert bench.speedups(rows) == {"resnet50 cam bf16": 1.6}
