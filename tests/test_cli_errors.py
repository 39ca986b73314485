"""Issue 16: the command line never trains or reports the wrong thing, and fails early and in one line.

One section per numbered item of the issue; each test reproduces the bad input and asserts the new
behaviour (the right config used, or a one-line error naming the key / file and the fix, raised
before training starts where the input is known then).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import cirlib.engine
from cirlib.cli import build_parser, main
from cirlib.config import ConfigError, load_config
from cirlib.engine import fit, read_checkpoint
from cirlib.engine.checkpoint import CheckpointError, check_same_model, load_model_state
from cirlib.engine.fit import DataSplitError, EvaluationError
from cirlib.runs import NotebookParameterError, experiment_config, validate_notebook_parameters
from fixtures_data import make_cub_fixture, make_wsol_metadata_fixture

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "synthetic" / "tiny.yaml"
#: A tiny, fast synthetic run (3 steps per epoch, 16 evaluation images).
FAST = ["train.epochs=1", "data.train_limit=48", "data.eval_limit=16", "train.checkpoint_every_steps=0",
        "eval.val_split=null", "model.options.width=8"]


def _error_line(capsys) -> str:
    """The CLI's stderr, which must be exactly one line ``cirlib <cmd>: error: ...``."""
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _no_training(capture: list) -> None:
    """Replaces ``cirlib.engine.fit``: records the config instead of training."""

    def fake_fit(config, resume=False, progress=True, overwrite=False):
        capture.append((config, resume))
        return cirlib.engine.RunResult(output_dir=None)

    return fake_fit


# ----------------------------------------------------------------------------- 1. repeated --set


def test_1_every_set_group_applies(monkeypatch, tmp_path):
    captured: list = []
    monkeypatch.setattr(cirlib.engine, "fit", _no_training(captured))
    out = tmp_path / "x"
    assert main(["train", "--config", str(TINY), "--set", "train.epochs=1", "--set", f"output_dir={out}",
                 "--set", "train.lr=0.05", "seed=3"]) == 0
    config, _ = captured[0]
    assert config.train.epochs == 1 and config.output_dir == str(out)
    assert config.train.lr == 0.05 and config.seed == 3
    args = build_parser().parse_args(["evaluate", "--checkpoint", "c.pt", "--set", "a=1", "--set", "b=2"])
    assert args.set == ["a=1", "b=2"]


# ----------------------------------------------------------------------------- 2. evaluate overrides


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished tiny synthetic run (CAM, one epoch) for the evaluate and checkpoint tests."""
    out = tmp_path_factory.mktemp("run") / "cam"
    config = load_config(TINY, FAST + [f"output_dir={out}"])
    fit(config, progress=False)
    return out


def test_2_evaluate_refuses_model_overrides_and_ignored_keys(tiny_run, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", str(tiny_run / "final.pt"), "--set", "model.options.width=4",
                 "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert "model.options.width=4" in line and "checkpoint" in line
    assert not out.exists()
    assert main(["evaluate", "--checkpoint", str(tiny_run / "final.pt"), "--set", "train.lr=0.5"]) == 2
    assert "train.lr has no effect on evaluation" in _error_line(capsys)


def test_2_evaluate_applies_eval_split(tiny_run, tmp_path, capsys):
    ckpt = str(tiny_run / "final.pt")
    via_set, via_flag, test = tmp_path / "set.json", tmp_path / "flag.json", tmp_path / "test.json"
    assert main(["evaluate", "--checkpoint", ckpt, "--no-progress", "--set", "eval.split=val", "--out", str(via_set)]) == 0
    assert main(["evaluate", "--checkpoint", ckpt, "--no-progress", "--split", "val", "--out", str(via_flag)]) == 0
    assert main(["evaluate", "--checkpoint", ckpt, "--no-progress", "--out", str(test)]) == 0
    a, b, c = (json.loads(p.read_text()) for p in (via_set, via_flag, test))
    assert a["split"] == b["split"] == "val" and c["split"] == "test"
    a.pop("checkpoint"), b.pop("checkpoint")
    assert a == b
    assert a["best_threshold"] != c["best_threshold"] or a["maxboxacc"] != c["maxboxacc"] or a["top1"] != c["top1"]
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", ckpt, "--split", "test", "--set", "eval.split=val"]) == 2
    assert "disagree" in _error_line(capsys)


# ----------------------------------------------------------------------------- 3. resume checks


@pytest.fixture()
def has_run(tmp_path):
    out = tmp_path / "has"
    fit(load_config(TINY, FAST + [f"output_dir={out}", "model.method=has"]), progress=False)
    return out


@pytest.mark.parametrize("change, key", [
    ("model.options.hide_prob=0.3", "model.options.hide_prob"),  # an option the weights do not show
    ("model.options.width=16", "model.options.width"),  # weights of another shape
    ("model.method=cam", "model.method"),
])
def test_3_resume_refuses_another_model_and_writes_nothing(has_run, change, key, capsys):
    before = {p.name: p.read_bytes() for p in has_run.iterdir()}
    code = main(["train", "--config", str(TINY), "--set", *FAST, f"output_dir={has_run}", "model.method=has",
                 "train.epochs=2", change, "--resume", "--no-progress"])
    assert code == 2
    line = _error_line(capsys)
    assert f"{key}=" in line and "Cannot resume" in line
    after = {p.name: p.read_bytes() for p in has_run.iterdir()}
    assert after == before, "a refused resume must leave config.yaml and the checkpoints untouched"


def test_3_resume_accepts_the_same_model_spelled_out(tmp_path, monkeypatch):
    out = tmp_path / "has"
    settings = FAST + [f"output_dir={out}", "model.method=has", "train.epochs=2"]
    original = cirlib.engine.Trainer._train_epochs

    def stop_after_one_epoch(self):  # an interrupted run: one epoch of two
        self.tcfg = dataclasses.replace(self.tcfg, epochs=1)
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(cirlib.engine.Trainer, "_train_epochs", stop_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit(load_config(TINY, settings), progress=False)
    monkeypatch.undo()
    config = load_config(TINY, settings + ["model.options.hide_prob=0.5"])  # 0.5 is HaS's default
    result = fit(config, resume=True, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2]
    stored = read_checkpoint(out / "final.pt")
    assert stored["model_options"]["method"]["hide_prob"] == 0.5
    assert stored["model_options"]["backbone"]["width"] == 8


def test_3_old_checkpoints_without_resolved_options_compare_the_config(tiny_run):
    ckpt = read_checkpoint(tiny_run / "final.pt")
    ckpt.pop("model_options")
    config = load_config(TINY, FAST + ["model.options.width=4"])
    with pytest.raises(CheckpointError, match=r"model\.options=\{'width': 8\}"):
        check_same_model(ckpt, config, None, "final.pt")


# ----------------------------------------------------------------------------- 4. notebook parameters

GOOD = {"FAST": True, "SEED": 0, "DEVICE": "cpu", "DATA": "synthetic", "DATA_ROOT": "", "EPOCHS": 0,
        "INTERACTIVE": False, "OUTPUT_DIR": "../build", "FIGURES_DIR": "", "PRETRAINED": True, "VAL_SPLIT": ""}


@pytest.mark.parametrize("name, value, expected", [
    ("FAST", "maybe", "FAST must be True or False"),
    ("FAST", 1, "FAST must be True or False"),
    ("EPOCHS", "ten", "EPOCHS must be an integer >= 0"),
    ("EPOCHS", -1, "EPOCHS must be an integer >= 0"),
    ("SEED", 1.5, "SEED must be an integer >= 0"),
    ("INTERACTIVE", "no", "INTERACTIVE must be True or False"),
    ("OUTPUT_DIR", 3, "OUTPUT_DIR must be a folder path"),
    ("DEVICE", "gpu", "did you mean 'cuda'?"),
    ("DATA", "cubb", "did you mean 'cub'?"),
    ("VAL_SPLIT", "test", "VAL_SPLIT must be '', 'val' or 'none'"),
    ("PRETRAINED", "imagenet", "PRETRAINED must be True or False"),
    ("PATCH_SIZES", "8;16", "PATCH_SIZES must be '' (the method's default sides) or patch sides"),
    ("PATCH_SIZES", "0,-8", "comma-separated, e.g. '0,8,16'"),
    ("PATCH_SIZES", 8, "PATCH_SIZES must be ''"),
    ("FUSION_WEIGHT", -0.5, "FUSION_WEIGHT must be a number >= 0"),
    ("FUSION_WEIGHT", "1", "FUSION_WEIGHT must be a number >= 0"),
])
def test_4_every_notebook_parameter_is_validated(name, value, expected):
    validate_notebook_parameters(GOOD)
    with pytest.raises(NotebookParameterError) as info:
        validate_notebook_parameters(dict(GOOD, **{name: value}))
    message = str(info.value)
    assert expected in message and name in message and "\n" not in message


def test_4_patch_sizes_and_fusion_weight_accept_their_documented_values():
    for extra in ({"PATCH_SIZES": ""}, {"PATCH_SIZES": "0, 8,16"}, {"FUSION_WEIGHT": 0}, {"FUSION_WEIGHT": 2.5}):
        validate_notebook_parameters(dict(GOOD, **extra))


def test_4_annotated_extra_parameters_are_type_checked():
    namespace = dict(GOOD, ABLATION_EPOCHS=2, MY_STEPS="many", __annotations__={"MY_STEPS": int})
    with pytest.raises(NotebookParameterError, match="MY_STEPS='many'.*of type int"):
        validate_notebook_parameters(namespace)


def test_4_every_notebook_validates_all_its_parameters():
    from cirlib.runs.parameters import NOTEBOOK_PARAMETERS
    from cirlib.tools.notebooks import declared_parameters, list_notebooks

    for notebook in list_notebooks(ROOT / "notebooks"):
        declared = declared_parameters(notebook)
        assert set(declared) <= set(NOTEBOOK_PARAMETERS), notebook
        cells = json.loads(notebook.read_text())["cells"]
        # cirlib.notebook.setup(globals()) calls validate_notebook_parameters first
        assert any("setup(globals()" in "".join(c["source"]) for c in cells), notebook


# The notebook's own parameter error through `cirlib notebook run` (one line, once):
# tests/test_notebooks_tooling.py::test_bad_data_value_fails_in_papermill_with_a_suggestion.


# ----------------------------------------------------------------------------- 5. YAML numbers


def test_5_numbers_are_read_as_people_write_them(tmp_path):
    from cirlib.tools.notebooks import _parse_yaml_parameters

    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n  weight_decay: 5E-4\neval:\n  cam_interval: .01\n")
    config = load_config(path, ["train.lr=2e-3", "train.lr_decay=1e-1"])
    assert config.train.lr == pytest.approx(0.002) and isinstance(config.train.lr, float)
    assert config.train.weight_decay == pytest.approx(5e-4) and config.eval.cam_interval == pytest.approx(0.01)
    assert config.train.lr_decay == pytest.approx(0.1)
    assert load_config(path).train.lr == pytest.approx(0.001)
    assert load_config(None, ["train.epochs=3"]).train.epochs == 3  # integers stay integers
    assert _parse_yaml_parameters("{LR: 1e-3, EPOCHS: 2}") == {"LR": 0.001, "EPOCHS": 2}


# ----------------------------------------------------------------------------- 6. fail early


def _cub_config(root: Path, out: Path, *extra: str):
    return load_config(TINY, ["data.name=cub", f"data.root={root}", "data.image_size=32", "data.batch_size=2",
                              "data.eval_batch_size=4", "data.train_limit=null", "data.eval_limit=null",
                              "model.num_classes=null", "train.epochs=1", "train.checkpoint_every_steps=0",
                              "eval.val_split=null", f"output_dir={out}", *extra])


def _no_step(monkeypatch):
    def fail(self):
        raise AssertionError("training started although the input was known to be bad")

    monkeypatch.setattr(cirlib.engine.Trainer, "train_one_epoch", fail)


def test_6_box_outside_the_image_fails_before_training(tmp_path, monkeypatch):
    make_cub_fixture(tmp_path / "cub")
    boxes = tmp_path / "cub" / "bounding_boxes.txt"
    lines = boxes.read_text().splitlines()
    lines[1] = "2 0.0 0.0 400.0 53.0"  # a test image (40 x 53)
    boxes.write_text("\n".join(lines) + "\n")
    _no_step(monkeypatch)
    with pytest.raises(DataSplitError, match=r"eval\.split='test'.*bounding_boxes\.txt, line 2.*does not fit"):
        fit(_cub_config(tmp_path / "cub", tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


def test_6_unreadable_test_image_and_empty_split_fail_before_training(tmp_path, monkeypatch):
    info = make_cub_fixture(tmp_path / "cub")
    bad = tmp_path / "cub" / "images" / info["test"][0]["image_id"]
    bad.write_bytes(b"not a jpeg")
    _no_step(monkeypatch)
    with pytest.raises(DataSplitError, match=rf"eval\.split='test'.*Cannot decode image .*{bad.name}"):
        fit(_cub_config(tmp_path / "cub", tmp_path / "run"), progress=False)

    meta = make_wsol_metadata_fixture(tmp_path / "wsol")
    test_dir = meta["metadata_root"] / "CUB" / "test"
    for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"):
        (test_dir / name).write_text("")
    with pytest.raises(DataSplitError, match=r"eval\.split='test'.*image_ids\.txt.*no image ids"):
        fit(_cub_config(tmp_path / "wsol", tmp_path / "run2"), progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2").exists()

    meta = make_wsol_metadata_fixture(tmp_path / "wsol3")
    loc = meta["metadata_root"] / "CUB" / "test" / "localization.txt"
    lines = loc.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",forty"
    loc.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataSplitError, match=r"eval\.split='test'.*localization\.txt, line 3.*'forty'"):
        fit(_cub_config(tmp_path / "wsol3", tmp_path / "run3"), progress=False)
    assert not (tmp_path / "run3").exists()


def test_6_a_run_that_could_not_evaluate_is_not_completed(tmp_path, monkeypatch):
    original = cirlib.engine.Trainer.evaluate

    def evaluate(self, loader, desc="eval"):
        if desc == "test":
            raise OSError("Cannot decode image x.jpg")
        return original(self, loader, desc)

    monkeypatch.setattr(cirlib.engine.Trainer, "evaluate", evaluate)
    out = tmp_path / "run"
    with pytest.raises(EvaluationError, match="final.pt holds the trained weights.*Cannot decode image x.jpg"):
        fit(load_config(TINY, FAST + [f"output_dir={out}"]), progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed: evaluation" and metrics["test"] is None
    assert "x.jpg" in metrics["error"]
    # A notebook does not take that run for a finished one: it resumes (no step left) and evaluates.
    from cirlib.runs import train_or_load

    monkeypatch.undo()
    trained = train_or_load(load_config(TINY, FAST + [f"output_dir={out}"]), progress=False)
    assert not trained.reused and trained.metrics["num_images"] == 16
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"


# ----------------------------------------------------------------------------- 7. CUB recipes, both layouts


def test_7_shipped_recipe_runs_on_the_official_layout_without_val(tmp_path, capsys):
    make_cub_fixture(tmp_path / "cub")
    out = tmp_path / "run"
    recipe = ROOT / "configs" / "cub" / "resnet50_cam.yaml"
    code = main(["train", "--config", str(recipe), "--no-progress", "--set", f"data.root={tmp_path / 'cub'}",
                 f"output_dir={out}", "device=cpu", "model.arch=small_cnn", "model.pretrained=null",
                 "model.num_classes=null", "data.image_size=32", "data.batch_size=2", "data.eval_batch_size=4",
                 "data.num_workers=0", "data.pin_memory=false", "train.epochs=1", "train.eval_every=1",
                 "train.amp=none", "train.channels_last=false", "train.checkpoint_every_steps=0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "eval.val_split='val' is not available" in captured.out + captured.err
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "final.pt", "last.pt", "metrics.json"]
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"


def test_7_val_split_of_the_metadata_layout_is_used_and_eval_split_errors_name_the_key(tmp_path, capsys):
    make_wsol_metadata_fixture(tmp_path / "wsol")
    out = tmp_path / "run"
    result = fit(_cub_config(tmp_path / "wsol", out, "eval.val_split=val", "train.eval_every=1"), progress=False)
    assert result.history[0]["val"]["num_images"] == 2 and (out / "best.pt").is_file()

    make_cub_fixture(tmp_path / "cub")
    assert main(["train", "--config", str(TINY), "--set", "data.name=cub", f"data.root={tmp_path / 'cub'}",
                 "eval.split=val", f"output_dir={tmp_path / 'r2'}"]) == 2
    line = _error_line(capsys)
    assert "eval.split='val'" in line and "CUBDataset" not in line and "metadata_root" in line


def test_7_notebooks_at_paper_scale_choose_pretrained_and_val_split(tmp_path):
    default = experiment_config("cam", data="cub", data_root=str(tmp_path))
    assert default.model.pretrained == "imagenet" and default.eval.val_split == "val"
    chosen = experiment_config("cam", data="cub", data_root=str(tmp_path), pretrained=False, val_split="none")
    assert chosen.model.pretrained is None and chosen.eval.val_split is None
    synthetic = experiment_config("cam", pretrained=False, val_split="none")
    assert synthetic.to_dict() == experiment_config("cam").to_dict()  # make results' configs unchanged


# ----------------------------------------------------------------------------- 8. metadata layout


def test_8_usual_cub_folders_beside_metadata_are_found(tmp_path):
    from cirlib.data import build_dataset

    info = make_wsol_metadata_fixture(tmp_path / "src")
    root = tmp_path / "data"
    (root / "CUB_200_2011").mkdir(parents=True)
    (tmp_path / "src" / "metadata").rename(root / "metadata")
    images = root / "CUB_200_2011" / "images"
    images.mkdir()
    for folder in (tmp_path / "src").iterdir():
        folder.rename(images / folder.name)
    dataset = build_dataset("cub", "test", root=root, image_size=32)
    assert len(dataset) == len(info["test"]) and dataset.image_root == images


def test_8_wrong_roots_name_the_keys_and_the_folders_tried(tmp_path, capsys):
    make_wsol_metadata_fixture(tmp_path / "wsol")
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    (wrong / "metadata").symlink_to(tmp_path / "wsol" / "metadata")
    assert main(["train", "--config", str(TINY), "--set", "data.name=cub", f"data.root={wrong}",
                 f"output_dir={tmp_path / 'r'}"]) == 2
    line = _error_line(capsys)
    assert "data.root=" in line and "tried" in line and str(wrong / "CUB_200_2011" / "images") in line
    assert main(["train", "--config", str(TINY), "--set", "data.name=cub", f"data.root={tmp_path / 'wsol'}",
                 f"data.options.metadata_root={tmp_path / 'nope'}", f"output_dir={tmp_path / 'r'}"]) == 2
    assert "data.options.metadata_root=" in _error_line(capsys)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- 9. one line, not a traceback


def test_9_truncated_image_in_a_loader_worker_is_one_line(tmp_path, capsys):
    info = make_cub_fixture(tmp_path / "cub")
    bad = tmp_path / "cub" / "images" / info["train"][0]["image_id"]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])  # header intact: passes the early check, fails to decode
    code = main(["train", "--config", str(TINY), "--no-progress", "--set", "data.name=cub",
                 f"data.root={tmp_path / 'cub'}", "data.image_size=32", "data.batch_size=1", "data.num_workers=1",
                 "data.train_limit=null", "data.eval_limit=null", "eval.val_split=null", "model.num_classes=null",
                 "train.epochs=1", "train.checkpoint_every_steps=0", f"output_dir={tmp_path / 'run'}"])
    assert code == 2
    line = _error_line(capsys)
    assert line.startswith("cirlib train: error: Cannot decode image") and bad.name in line
    assert "DataLoader worker" not in line


def test_9_bad_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for target in (blocker, blocker / "run"):
        assert main(["train", "--config", str(TINY), "--set", f"output_dir={target}"]) == 2
        assert "output_dir=" in _error_line(capsys)


def test_9_corrupt_foreign_and_malicious_checkpoints(tmp_path, capsys):
    corrupt, foreign, evil = tmp_path / "corrupt.pt", tmp_path / "foreign.pt", tmp_path / "evil.pt"
    corrupt.write_bytes(b"\x00garbage" * 10)
    torch.save({"weights": torch.zeros(2)}, foreign)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    evil.write_bytes(pickle.dumps({"format": "cirlib-checkpoint-v1", "x": Evil()}, protocol=2))
    for path, expected in ((corrupt, "Cannot read checkpoint"), (foreign, "is not a cirlib checkpoint"),
                           (evil, "Cannot read checkpoint")):
        assert main(["evaluate", "--checkpoint", str(path)]) == 2
        line = _error_line(capsys)
        assert expected in line and path.name in line
    assert not marker.exists(), "a checkpoint is loaded weights-only: no pickled code runs"


def test_9_state_dict_mismatch_is_one_line(tiny_run, tmp_path, capsys):
    ckpt = read_checkpoint(tiny_run / "final.pt")
    key = next(iter(ckpt["model"]))
    ckpt["model"][key] = torch.zeros(3, 3)
    torch.save(ckpt, tmp_path / "bad.pt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt")]) == 2
    line = _error_line(capsys)
    assert "do not fit the model" in line and key in line
    from cirlib.methods import build_model

    with pytest.raises(CheckpointError, match="missing key"):
        load_model_state(build_model("cam", "small_cnn", 3, width=8), {}, "x.pt")


def test_9_failed_weights_download_is_one_line(monkeypatch, tmp_path, capsys):
    import urllib.error

    import torchvision

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    assert main(["train", "--config", str(TINY), "--set", *FAST, "model.options={}", "model.arch=resnet50",
                 "model.pretrained=imagenet", f"output_dir={tmp_path / 'r'}"]) == 2
    line = _error_line(capsys)
    assert "Could not load the ImageNet weights" in line and "pretrained=" in line


def test_9_disk_full_reports_the_first_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    import cirlib.utils.io as io_mod
    from cirlib.utils import atomic_torch_save

    target = tmp_path / "last.pt"
    atomic_torch_save({"old": torch.ones(3)}, target)
    before = target.read_bytes()
    real_open = io_mod._open_temp

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(io_mod, "_open_temp", lambda fd: FullDisk(real_open(fd)))
    with pytest.raises(io_mod.AtomicWriteError, match="No space left on device.*previous file is unchanged"):
        atomic_torch_save({"new": torch.zeros(100_000)}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "no temporary file left behind"


def test_9_ctrl_c_says_how_to_resume(monkeypatch, tmp_path, capsys):
    def interrupted(config, resume=False, progress=True, overwrite=False):
        if config.train.epochs > 1:  # "interrupted" after the first checkpoint
            Path(config.output_dir).mkdir(parents=True)
            (Path(config.output_dir) / "last.pt").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(cirlib.engine, "fit", interrupted)
    assert main(["train", "--config", str(TINY), "--set", f"output_dir={tmp_path / 'r'}"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err and str(tmp_path / "r" / "last.pt") in err
    assert main(["train", "--config", str(TINY), "--set", "train.epochs=1", f"output_dir={tmp_path / 's'}"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "before the first checkpoint" in err and "--resume" not in err


def test_9_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ConfigError):
        main(["train", "--config", str(TINY), "--set", "train.epoch=1", "--debug"])
    with pytest.raises(ConfigError):
        main(["--debug", "train", "--config", str(TINY), "--set", "train.epoch=1"])


# ----------------------------------------------------------------------------- 10. smaller items


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_10_no_gpu_messages_speak_to_each_user(tmp_path, capsys):
    assert main(["train", "--config", str(TINY), "--device", "cuda", "--set", f"output_dir={tmp_path}"]) == 2
    line = _error_line(capsys)
    assert "--device cpu" in line and "DEVICE=" not in line
    with pytest.raises(NotebookParameterError, match="DEVICE='cpu'"):
        validate_notebook_parameters(dict(GOOD, DEVICE="cuda"))


def test_10_gpu_suggests_cuda(capsys):
    assert main(["train", "--config", str(TINY), "--set", "device=gpu"]) == 2
    assert "did you mean 'cuda'?" in _error_line(capsys)


def test_10_xywh_hint_matches_the_loaders():
    import numpy as np

    from cirlib.metrics import BoxEvaluator

    evaluator = BoxEvaluator(cam_thresholds=np.arange(0, 1, 0.5), iou_thresholds=(50,))
    with pytest.raises(ValueError) as info:
        evaluator.update(np.zeros((1, 8, 8)), [np.array([[5, 5, 2, 2]])])
    assert "x1 = x + w, y1 = y + h" in str(info.value) and "- 1" not in str(info.value)


def test_10_run_files_get_the_umask_mode(tmp_path):
    from cirlib.utils import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_10_docs_and_help():
    readme = (ROOT / "README.md").read_text()
    papermill_lines = [line for line in readme.splitlines() if "bin/papermill" in line]
    assert papermill_lines and all("--cwd notebooks" in line for line in papermill_lines)
    parser = build_parser()
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()  # noqa: SLF001
    assert "best.pt" in train_help and "eval.val_split" in " ".join(train_help.split())


def test_10_no_method_leaves_parameters_unused_so_ddp_need_not_search():
    """DDP runs with find_unused_parameters=False: a parameter without a gradient would stop its next step."""
    from cirlib.methods import METHODS, build_model

    torch.manual_seed(0)
    for method in METHODS:
        model = build_model(method, "small_cnn", 4, image_size=32, width=4)
        boxes = {"boxes": [torch.tensor([[2.0, 2.0, 20.0, 20.0]])] * 2} if model.needs_boxes else {}
        model.training_loss(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), **boxes)["loss"].backward()
        unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert unused == [], (method, unused)
