"""The shared budgets: configs per method, and train-once-then-reuse."""

from __future__ import annotations

import pytest

from cirlib.experiments import (
    BUDGETS,
    dataset_fingerprint,
    experiment_config,
    train_or_load,
    validate_notebook_parameters,
)


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
    validate_notebook_parameters("synthetic", "", "cpu", 0)
    with pytest.raises(ValueError, match="did you mean 'cub'"):
        validate_notebook_parameters("cubb", "", "cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_notebook_parameters("cub", str(tmp_path / "missing"), "cpu")
    with pytest.raises(ValueError, match="EPOCHS"):
        validate_notebook_parameters("synthetic", "", "cpu", -1)


def test_train_once_then_reuse_and_refuse_stale_data(tmp_path):
    cfg = experiment_config("cam", fast=True, output_dir=tmp_path, device="cpu")
    first = train_or_load(cfg, progress=False)
    assert not first.reused
    assert (first.output_dir / "data_fingerprint.txt").read_text().strip() == dataset_fingerprint(cfg)
    second = train_or_load(cfg, progress=False)
    assert second.reused
    assert second.metrics["maxboxacc_v2"] == first.metrics["maxboxacc_v2"]

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
