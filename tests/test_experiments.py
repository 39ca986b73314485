"""The shared budgets: configs per method, and train-once-then-reuse."""

from __future__ import annotations

import json

import pytest

import torch

from cirlib.runs import validate_notebook_parameters
from cirlib.runs.cache import train_or_load
from cirlib.runs.identity import CPU_TRAIN_THREADS, dataset_fingerprint
from cirlib.runs.experiments import BUDGETS, demo_configs, experiment_config, fusion_ablation_configs
from cirlib.tools.notebooks import pretrain_demo_runs


def test_every_method_gets_the_same_budget(tmp_path):
    configs = {m: experiment_config(m, seed=3, output_dir=tmp_path) for m in ("cam", "has", "full")}
    for method, cfg in configs.items():
        assert cfg.model.method == method
        assert cfg.seed == 3
        assert cfg.train.epochs == BUDGETS["demo"]["train"]["epochs"]
        assert cfg.data.train_limit == BUDGETS["demo"]["data"]["train_limit"]
        assert cfg.output_dir == str(tmp_path / "synthetic" / method / "seed3")
    assert experiment_config("cam", fast=True, output_dir=tmp_path).output_dir.endswith("seed0-fast")


def test_options_get_their_own_run_folder(tmp_path):
    cfg = experiment_config("full", options={"fusion_loss": "max"}, output_dir=tmp_path)
    assert cfg.model.options["fusion_loss"] == "max"
    assert "full-fusion_loss=max" in cfg.output_dir


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "camm"}, "did you mean 'cam'"),
        ({"method": "cam", "data": "cubb"}, "did you mean 'cub'"),
        ({"method": "cam", "data": "cub"}, "DATA_ROOT"),
    ],
)
def test_bad_parameters_say_what_to_do(kwargs, message):
    method = kwargs.pop("method")
    with pytest.raises(ValueError, match=message):
        experiment_config(method, **kwargs)


def test_notebook_parameter_checks(tmp_path):
    good = {"DATA": "synthetic", "DATA_ROOT": "", "DEVICE": "cpu", "EPOCHS": 0}
    validate_notebook_parameters(good)
    with pytest.raises(ValueError, match="did you mean 'cub'"):
        validate_notebook_parameters(dict(good, DATA="cubb"))
    with pytest.raises(ValueError, match="DATA_ROOT=.* does not exist"):
        validate_notebook_parameters(dict(good, DATA="cub", DATA_ROOT=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="EPOCHS"):
        validate_notebook_parameters(dict(good, EPOCHS=-1))


def test_train_once_then_reuse_and_refuse_stale_data(tmp_path, capsys):
    cfg = experiment_config("cam", fast=True, output_dir=tmp_path, device="cpu")
    first = train_or_load(cfg, progress=False)
    assert not first.reused
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[cirlib]")]
    # One line saying what happens; no "--resume: no checkpoint" the notebook user never asked for.
    assert said[0].startswith(f"[cirlib] no finished run of 'cam' in {first.output_dir}: training it now, ")
    assert not any("resume" in line for line in said)
    assert (first.output_dir / "data_fingerprint.txt").read_text().strip() == dataset_fingerprint(cfg)
    second = train_or_load(cfg, progress=False)
    assert second.reused
    assert capsys.readouterr().out.startswith(f"[cirlib] loading {first.output_dir / 'final.pt'}")
    assert second.metrics["maxboxacc_v2"] == first.metrics["maxboxacc_v2"]
    assert train_or_load(cfg, progress=False, quiet=True).reused and capsys.readouterr().out == ""

    other = experiment_config("cam", fast=True, output_dir=tmp_path, device="cpu")
    other.train.lr = 0.5
    with pytest.raises(ValueError, match="different configuration"):
        train_or_load(other, progress=False)

    (first.output_dir / "data_fingerprint.txt").write_text("0000000000000000\n")
    with pytest.raises(ValueError, match="different images"):
        train_or_load(cfg, progress=False)


def test_fingerprint_follows_the_generator_knobs():
    cfg = experiment_config("cam", fast=True)
    changed = experiment_config("cam", fast=True)
    changed.data.options = dict(changed.data.options, body_tint=0.0)
    assert dataset_fingerprint(cfg) != dataset_fingerprint(changed)
    assert dataset_fingerprint(cfg) == dataset_fingerprint(experiment_config("has", fast=True))


def test_a_run_is_found_by_relative_or_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = experiment_config("cam", fast=True, output_dir="runs", device="cpu")
    assert not train_or_load(relative, progress=False).reused
    absolute = experiment_config("cam", fast=True, output_dir=tmp_path / "runs", device="cpu")
    assert train_or_load(absolute, progress=False).reused


def test_fusion_ablation_configs_shorten_the_runs_and_share_the_full_run_when_as_long(tmp_path):
    short = fusion_ablation_configs(seed=1, output_dir=tmp_path)
    assert list(short) == ["stitched", "consistency", "max", "None"]
    budget = BUDGETS["demo"]["train"]["epochs"]
    assert {c.train.epochs for c in short.values()} == {max(1, budget // 4)}
    assert [c.model.options["fusion_loss"] for c in short.values()] == ["stitched", "consistency", "max", None]
    full = experiment_config("full", seed=1, output_dir=tmp_path)
    assert short["max"].output_dir != full.output_dir
    same = fusion_ablation_configs(ablation_epochs=budget, seed=1, output_dir=tmp_path)
    assert same["max"].output_dir == full.output_dir  # the full method's default kind
    assert same["stitched"].output_dir != full.output_dir
    assert same["None"].train.epochs == budget


def test_demo_configs_list_every_run_of_the_notebooks_once(tmp_path):
    demo = demo_configs(seed=0, output_dir=tmp_path)
    # every row of the results table (notebooks 01-07, the literal reading, notebook 08), then notebook 06's ablation
    assert [c.model.method for c in demo[:11]] == ["cam", "has", "complementary", "caam", "ssam", "full", "literal",
                                                   "acol", "adl", "cutmix", "fewshot"]
    assert len(demo) == 11 + 4  # the ablation's max run is shorter than the full run: a run of its own
    fast = demo_configs(seed=0, output_dir=tmp_path, fast=True)  # 1 epoch: the ablation's max run is the full run
    assert len(fast) == 11 + 3
    assert len({c.output_dir for c in fast}) == len(fast)


def test_cpu_training_does_not_depend_on_the_thread_count(tmp_path):
    """A notebook (all cores) and a make-results worker (one core) train the same weights."""
    before = torch.get_num_threads()
    weights = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            cfg = experiment_config("complementary", fast=True, output_dir=tmp_path / f"t{threads}", device="cpu")
            model = train_or_load(cfg, progress=False).model
            assert torch.get_num_threads() == threads  # restored after training
        finally:
            torch.set_num_threads(before)
        weights.append(model.state_dict())
    assert CPU_TRAIN_THREADS == 1
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_demo_pretraining_trains_every_notebook_run_in_parallel_then_reuses(tmp_path, capsys):
    params = {"FAST": True, "DEVICE": "cpu", "SEED": 0}
    pretrain_demo_runs(tmp_path, params, jobs=2)
    configs = demo_configs(seed=0, output_dir=tmp_path, fast=True, device="cpu")
    for cfg in configs:
        assert (cfg.resolved_output_dir() / "final.pt").exists(), cfg.output_dir
    assert capsys.readouterr().out.count("trained in") == len(configs)
    pretrain_demo_runs(tmp_path, params, jobs=1)
    assert capsys.readouterr().out.count("]   reused: ") == len(configs)
    # what a notebook then gets: the same run, not a new one
    assert train_or_load(configs[0], progress=False).reused


def test_estimate_train_seconds_from_measured_times_and_relative_costs(tmp_path):
    from cirlib.runs.experiments import CAM_DEMO_EPOCH_SECONDS, estimate_train_seconds
    from cirlib.methods.registry import get_spec

    missing = tmp_path / "none.json"
    cam = experiment_config("cam", device="cpu")
    assert estimate_train_seconds(cam, missing) == pytest.approx(CAM_DEMO_EPOCH_SECONDS * cam.train.epochs)
    full = experiment_config("full", device="cpu", epochs=1)
    assert estimate_train_seconds(full, missing) == pytest.approx(CAM_DEMO_EPOCH_SECONDS * get_spec("full").relative_cost)
    assert estimate_train_seconds(experiment_config("acol", device="cpu"), missing) == pytest.approx(
        CAM_DEMO_EPOCH_SECONDS * cam.train.epochs)  # a step costs what CAM's does
    fewshot = experiment_config("fewshot", device="cpu")  # 50 images, 36 epochs
    assert estimate_train_seconds(fewshot, missing) == pytest.approx(CAM_DEMO_EPOCH_SECONDS * 36 * 50 / 2000)
    fast = experiment_config("cam", device="cpu", fast=True)  # 128 images of 32 px, width 8, 1 epoch
    assert estimate_train_seconds(fast, missing) == pytest.approx(
        CAM_DEMO_EPOCH_SECONDS * (128 * 32 ** 2 * 8 ** 2) / (2000 * 64 ** 2 * 16 ** 2))
    measured = tmp_path / "results.json"
    measured.write_text(json.dumps({"budget": "demo", "budget_settings": {"train": {"epochs": 6}},
                                    "summary": {"cam": {"mean": {"train_time_s": 120.0}}}}))
    assert estimate_train_seconds(cam, measured) == pytest.approx(120.0)
    assert estimate_train_seconds(experiment_config("cam", data="cub", data_root=str(tmp_path), device="cpu"),
                                  missing) is None


def test_train_or_load_says_how_long_before_it_trains(tmp_path, capsys):
    config = experiment_config("cam", fast=True, device="cpu", output_dir=tmp_path, epochs=1)
    train_or_load(config, progress=False)
    first = capsys.readouterr().out
    assert "training it now, 1 epoch(s), " in first and "on one idle CPU core" in first
    train_or_load(config, progress=False)
    assert "training it now" not in capsys.readouterr().out  # reused: nothing to announce


def test_run_identity_compares_resolved_model_options(tmp_path):
    """A restated default is the same run; a run trained under other defaults is refused, never reused."""
    from cirlib.engine import read_checkpoint
    from cirlib.runs.identity import model_identity, same_run

    plain = experiment_config("caam", fast=True, output_dir=tmp_path, device="cpu")
    spelled = experiment_config("caam", fast=True, output_dir=tmp_path, device="cpu")
    spelled.model.options = dict(spelled.model.options, attention_scale="tanh", cam_from="backbone")
    assert model_identity(plain) == model_identity(spelled)
    assert same_run(spelled, plain, model_identity(spelled)) and same_run(plain, spelled, model_identity(plain))
    attended = experiment_config("caam", fast=True, output_dir=tmp_path, device="cpu", options={"cam_from": "attended"})
    assert not same_run(attended, plain, model_identity(attended))

    cam = experiment_config("cam", fast=True, output_dir=tmp_path, device="cpu")
    trained = train_or_load(cam, progress=False)
    final = trained.output_dir / "final.pt"
    checkpoint = read_checkpoint(final)
    assert checkpoint["model_options"] == model_identity(cam)
    assert train_or_load(cam, progress=False).reused
    # The same config, but the checkpoint's model was built under another default (num_pools).
    checkpoint["model_options"]["backbone"]["num_pools"] = 3
    torch.save(checkpoint, final)
    with pytest.raises(ValueError, match="different configuration"):
        train_or_load(cam, progress=False)
