"""``python -m cirlib.runs.results``: files, aggregation, and the same numbers from the same seed."""

from __future__ import annotations

import csv
import json
import math

import pytest

from cirlib.runs.results import COLUMNS, aggregate, format_table, load_results, main, render_results


def _numbers(payload: dict) -> list[tuple]:
    keys = [c.key for c in COLUMNS if c.key != "train_time_s"]
    return [(r["method"], r["seed"], *[r[k] for k in keys]) for r in payload["runs"]]


def test_same_seed_same_numbers_and_files(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("TQDM_DISABLE", "1")
    threads = torch.get_num_threads()
    try:
        first = main(["--out", str(tmp_path / "a"), "--seeds", "0", "--methods", "cam", "complementary",
                      "--jobs", "1", "--fast"])
        second = main(["--out", str(tmp_path / "b"), "--seeds", "0", "--methods", "cam", "complementary",
                       "--jobs", "1", "--fast"])
    finally:
        torch.set_num_threads(threads)
    assert not any(r["reused"] for r in first["runs"] + second["runs"])  # both really trained
    assert _numbers(first) == _numbers(second)
    assert [r["method"] for r in first["runs"]] == ["cam", "complementary"]
    for run in first["runs"]:
        assert 0.0 <= run["maxboxacc_v2"] <= 100.0 and run["train_time_s"] > 0 and run["cpu_time_s"] > 0
        v2 = (run["maxboxacc_30"] + run["maxboxacc_50"] + run["maxboxacc_70"]) / 3
        assert run["maxboxacc_v2"] == pytest.approx(v2, abs=1e-6)
    out = tmp_path / "a"
    stored = json.loads((out / "results.json").read_text())
    assert stored["summary"]["cam"]["mean"]["maxboxacc_v2"] == first["runs"][0]["maxboxacc_v2"]
    assert stored["complete"] is True and "Partial" not in (out / "results.md").read_text()
    assert stored["wall_time_s"] > 0 and stored["machine"]["cpu_count"] >= 1
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("cam", "0"), ("complementary", "0"), ("cam", "mean"), ("cam", "std"),
        ("complementary", "mean"), ("complementary", "std")]
    md = (out / "results.md").read_text()
    assert "| cam | 1 |" in md and "MaxBoxAccV2" in md and "load average" not in md
    assert not list(out.glob("*.tmp*"))
    # The files render again from results.json alone, the same bytes.
    written = {name: (out / name).read_text() for name in ("results.md", "results.csv")}
    (out / "results.md").unlink()
    (out / "results.csv").write_text("stale")
    rendered = main(["--out", str(out), "--render-only"])
    assert rendered == {"rendered": [str(out / "results.csv"), str(out / "results.md")]}
    assert {name: (out / name).read_text() for name in written} == written
    # A second call on the same folder reuses the finished runs and gives the same numbers.
    again = main(["--out", str(out), "--seeds", "0", "--methods", "cam", "--jobs", "1", "--fast"])
    assert again["all_reused"] and _numbers(again) == _numbers(first)[:1]


def test_aggregate_mean_and_sample_std():
    runs = [{"method": "has", "seed": s, "maxboxacc_v2": v, "top1": 90.0} for s, v in [(0, 60.0), (1, 64.0)]]
    runs.append({"method": "cam", "seed": 0, "maxboxacc_v2": 50.0, "top1": None})
    summary = aggregate(runs, ["cam", "has", "full"])
    assert list(summary) == ["cam", "has"]  # methods without runs are left out
    assert summary["has"]["mean"]["maxboxacc_v2"] == 62.0
    assert summary["has"]["std"]["maxboxacc_v2"] == pytest.approx(math.sqrt(8.0))
    assert summary["cam"]["std"]["maxboxacc_v2"] == 0.0 and summary["cam"]["mean"]["top1"] is None
    table = format_table(list(summary), seeds=summary, seed_columns=[c.key for c in COLUMNS])
    assert table.splitlines()[0].startswith("| method | seeds | MaxBoxAcc@30 |")
    assert "| has | 2 | - | - | - | 62.0 ± 2.8 | - | 90.0 ± 0.0 |" in table


def _metrics(v2: float, top1: float = 90.0) -> dict:
    return {"top1": top1, "maxboxacc": {"30": 80.0, "50": 60.0, "70": 20.0}, "maxboxacc_v2": v2, "pxap": None}


def test_format_table_puts_the_seeds_beside_this_run():
    summary = {"cam": {"n": 3, "mean": {"maxboxacc_v2": 55.0, "maxboxacc_50": 70.25}, "std": {"maxboxacc_v2": 1.5}}}
    table = format_table(["cam", "has"], seeds=summary, this_run={"cam": _metrics(53.25), "has": _metrics(61.0)},
                         seed_columns=("maxboxacc_v2", "maxboxacc_50"), run_columns=("maxboxacc_v2", "pxap"),
                         labels={"cam": "CAM"})
    header, rule, cam, has = table.splitlines()
    assert header == ("| method | seeds | MaxBoxAccV2 (seeds) | MaxBoxAcc@50 (seeds) | MaxBoxAccV2 (this run) "
                      "| PxAP (this run) |")
    assert rule == "| --- | --- | --- | --- | --- | --- |"
    assert cam == "| CAM | 3 | 55.0 ± 1.5 | 70.2 ± 0.0 | 53.2 | - |"  # no std stored: 0.0; PxAP missing: -
    assert has == "| has | 0 | - | - | 61.0 | - |"
    one_run = format_table(["has"], this_run={"has": _metrics(61.0)}, run_columns=("maxboxacc_v2",),
                           extra={"note": {"has": "x"}})
    assert one_run.splitlines() == ["| method | MaxBoxAccV2 | note |", "| --- | --- | --- |", "| has | 61.0 | x |"]
    with pytest.raises(ValueError, match="unknown columns.*top5"):
        format_table(["has"], seed_columns=("top5",))
    with pytest.raises(ValueError, match="has has MaxBoxAccV2 = 140.0, outside"):
        format_table(["has"], this_run={"has": _metrics(140.0)}, run_columns=("maxboxacc_v2",))


def test_load_results_reads_a_folder_or_a_file_and_names_a_broken_one(tmp_path):
    assert load_results(tmp_path) is None and load_results(tmp_path / "results.json") is None
    payload = {"budget": "demo", "runs": [], "summary": {"cam": {"n": 1, "mean": {}, "std": {}}}}
    (tmp_path / "results.json").write_text(json.dumps(payload))
    stored = load_results(tmp_path)
    assert stored.path == tmp_path / "results.json" and stored.budget == "demo" and list(stored.summary) == ["cam"]
    assert load_results(tmp_path / "results.json").payload == payload
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(ValueError, match=r"results.json: cannot be read as JSON"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("[]")
    with pytest.raises(ValueError, match="not a results file"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="run `make results` first"):
        render_results(tmp_path / "nothing")


def test_unknown_method_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--methods"):
        main(["--out", str(tmp_path), "--methods", "hass", "--fast", "--jobs", "1"])


@pytest.mark.parametrize("method", ["cam", "has", "complementary", "caam", "ssam", "full"])
def test_synthetic_configs_mirror_the_demo_budget(method):
    """configs/synthetic/<method>.yaml trains exactly the seed-0 run of ``make results``."""
    from cirlib.config import config_to_dict, load_config
    from cirlib.runs.experiments import experiment_config
    from cirlib.paths import CONFIGS_DIR

    from cirlib.runs.identity import model_identity

    stored_config = load_config(CONFIGS_DIR / "synthetic" / f"{method}.yaml")
    expected_config = experiment_config(method, seed=0)
    # The model compares resolved (a file that writes a default out builds the same model).
    assert model_identity(stored_config) == model_identity(expected_config)
    stored, expected = config_to_dict(stored_config), config_to_dict(expected_config)
    for d in (stored, expected):
        for key in ("name", "output_dir", "device"):
            d.pop(key)
        d["model"].pop("options")
    assert stored == expected, (
        f"configs/synthetic/{method}.yaml is out of date with cirlib/runs/experiments.py and the method registry; regenerate it with "
        "`python -m cirlib.runs.results --write-configs configs/synthetic`."
    )
