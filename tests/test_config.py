"""Config loading, --set overrides and their error messages; every file in configs/ validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from cirlib.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from cirlib.utils.choices import validate_choice

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def test_defaults_are_synthetic_and_valid():
    cfg = load_config()
    assert cfg.data.name == "synthetic"
    assert cfg.model.method == "cam"
    assert cfg.train.nesterov is True and cfg.train.momentum == 0.9


def test_overrides_parse_yaml_scalars_and_options():
    cfg = load_config(
        None, ["train.epochs=3", "model.method=has", "model.options.hide_prob=0.3", "data.root=null",
               "train.nesterov=false", "eval.iou_thresholds=[50]"]
    )
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.model.method == "has"
    assert cfg.model.options == {"hide_prob": 0.3}
    assert cfg.data.root is None
    assert cfg.train.nesterov is False
    assert cfg.eval.iou_thresholds == [50]


def test_unknown_key_in_set_lists_valid_keys_and_suggests():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.epoch=3"])
    msg = str(info.value)
    assert "train.epoch" in msg and "did you mean 'train.epochs'" in msg.lower()
    assert "train.lr" in msg  # the valid keys are listed


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  methd: cam\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path) in msg and "model.methd" in msg and "model.method" in msg


def test_unknown_top_level_section():
    with pytest.raises(ConfigError, match="'trian'.*Did you mean 'train'"):
        config_from_dict({"trian": {"epochs": 1}})


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.name=cubb", "data.name"),
        ("train.epochs=-1", "train.epochs"),
        ("train.epochs=2.5", "train.epochs"),
        ("train.lr=0", "train.lr"),
        ("train.lr_schedule=linear", "train.lr_schedule"),
        ("train.amp=fp16", "train.amp"),
        ("model.arch=resnet5", "model.arch"),
        ("eval.cam_interval=1.5", "eval.cam_interval"),
        ("device=gpu", "device"),
        ("data.batch_size=0", "data.batch_size"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert key in str(info.value)


def test_bad_dataset_name_suggests():
    with pytest.raises(ConfigError, match=r"data.name='cubb' is not one of synthetic, cub, ilsvrc; did you mean 'cub'\?"):
        load_config(None, ["data.name=cubb"])


def test_real_dataset_needs_root():
    with pytest.raises(ConfigError, match="data.root"):
        load_config(None, ["data.name=cub"])


def test_set_without_equals_and_value_as_section():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({}, ["seed.x=1"])


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_validate_choice_names_the_valid_values_and_the_closest():
    assert validate_choice("DATA", "cub", ("synthetic", "cub", "ilsvrc")) == "cub"
    with pytest.raises(ValueError) as info:
        validate_choice("DATA", "cubb", ("synthetic", "cub", "ilsvrc"))
    assert str(info.value) == "DATA='cubb' is not one of synthetic, cub, ilsvrc; did you mean 'cub'?"
    with pytest.raises(ValueError, match="not one of") as info:
        validate_choice("DATA", "zzz", ("synthetic", "cub"))
    assert "did you mean" not in str(info.value)
    expected = r"^x.yaml: data.name='cubb' is not one of synthetic, cub; did you mean 'cub'\? \(see README\)$"
    with pytest.raises(ConfigError, match=expected):
        validate_choice("data.name", "cubb", ("synthetic", "cub"), prefix="x.yaml: ", suffix=" (see README)",
                        error=ConfigError)


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(None, ["train.epochs=4", "model.options.hide_prob=0.25"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert config_to_dict(again) == config_to_dict(cfg)
    assert isinstance(again, ExperimentConfig)


def test_configs_folder_has_the_recipes():
    names = {str(p.relative_to(ROOT / "configs")) for p in CONFIGS}
    for method in ("cam", "has", "complementary", "caam", "ssam", "full", "tiny"):
        assert f"synthetic/{method}.yaml" in names
    for ds in ("cub", "ilsvrc"):
        for arch in ("vgg16", "resnet50"):
            for method in ("cam", "has", "full"):
                assert f"{ds}/{arch}_{method}.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_every_config_validates(path):
    cfg = load_config(path)
    assert cfg.model.method in path.stem or path.stem == "tiny"
    if cfg.data.name != "synthetic":  # paper scale: the reference recipe
        assert cfg.data.image_size == 224 and cfg.data.batch_size == 64
        assert cfg.train.lr == 0.01 and cfg.train.new_layer_lr_mult == 10 and cfg.train.weight_decay == 1e-4
        assert cfg.train.epochs == (50 if cfg.data.name == "cub" else 10)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.parent.name == "synthetic"],
                         ids=lambda p: p.name)
def test_synthetic_config_model_options_are_accepted(path):
    """build_model validates model.options: a typo in a config must not wait for a training run."""
    methods = pytest.importorskip("cirlib.methods")
    cfg = load_config(path)
    model = methods.build_model(cfg.model.method, cfg.model.arch, 10, pretrained=None,
                                image_size=cfg.data.image_size, **cfg.model.options)
    assert model.method == cfg.model.method
