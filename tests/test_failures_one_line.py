"""Issue 26, items 7, 8 and 9: expected failures are one line, early, naming the file or parameter.

7. Notebook folders: ``DATA_ROOT`` must be a folder, ``OUTPUT_DIR`` / ``FIGURES_DIR`` writable folders,
   checked by the first cell (not 80 lines or the last cell later).
8. A truncated image (header intact) is found by ``cirlib data check``; met only after training, it
   keeps the trained weights and names the file.
9. Messages: unreadable or code-carrying weights and checkpoints, YAML errors, the case of an image
   extension, a UTF-8 BOM in metadata, what ``cirlib evaluate`` scored, no torch pickle warning.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import warnings
from pathlib import Path

import pytest
import torch

import cirlib.engine
from cirlib.cli import main
from cirlib.config import load_config
from cirlib.engine import fit
from cirlib.runs import NotebookParameterError, validate_notebook_parameters
from fixtures_data import make_cub_fixture, make_wsol_metadata_fixture

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "synthetic" / "tiny.yaml"
FAST = ["train.epochs=1", "data.train_limit=48", "data.eval_limit=16", "train.checkpoint_every_steps=0",
        "eval.val_split=null", "model.options.width=8"]
#: The tiny config on a CUB-layout folder (3 classes, 3 train and 3 test images).
CUB = ["data.name=cub", "data.image_size=32", "data.batch_size=1", "data.num_workers=0", "data.train_limit=null",
       "data.eval_limit=null", "eval.val_split=null", "model.num_classes=null", "train.epochs=1",
       "train.checkpoint_every_steps=0"]
GOOD = {"FAST": True, "SEED": 0, "DEVICE": "cpu", "DATA": "synthetic", "DATA_ROOT": "", "EPOCHS": 0,
        "INTERACTIVE": False, "OUTPUT_DIR": "build", "FIGURES_DIR": "", "PRETRAINED": True, "VAL_SPLIT": ""}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


class _Evil:
    """Pickles as a call of ``os.mkdir(marker)``: what a code-carrying file does when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


# ----------------------------------------------------------------------------- 7. notebook folders


def test_7_data_root_must_be_a_folder(tmp_path):
    afile = tmp_path / "CUB_200_2011.tgz"
    afile.write_bytes(b"archive")
    with pytest.raises(NotebookParameterError, match="DATA_ROOT=.*is a file; it must be the dataset folder"):
        validate_notebook_parameters(dict(GOOD, DATA="cub", DATA_ROOT=str(afile)))
    validate_notebook_parameters(dict(GOOD, DATA="cub", DATA_ROOT=str(tmp_path)))


@pytest.mark.parametrize("name", ["OUTPUT_DIR", "FIGURES_DIR"])
def test_7_output_folders_must_be_writable_folders(name, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(NotebookParameterError, match=f"{name}=.* is a file, not a folder"):
        validate_notebook_parameters(dict(GOOD, **{name: str(afile)}))
    with pytest.raises(NotebookParameterError, match=f"{name}=.* cannot be created: .*file is a file"):
        validate_notebook_parameters(dict(GOOD, **{name: str(afile / "runs")}))
    validate_notebook_parameters(dict(GOOD, **{name: str(tmp_path / "new" / "runs")}))
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_7_an_unwritable_output_dir_is_found_even_by_root(tmp_path):
    """Permission bits do not stop root (``chattr +i`` and read-only mounts do): a real write is tried.
    /proc refuses new files to everyone."""
    with pytest.raises(NotebookParameterError, match=r"OUTPUT_DIR='/proc/cirlib/runs' is not writable \(creating a file in /proc fails"):
        validate_notebook_parameters(dict(GOOD, OUTPUT_DIR="/proc/cirlib/runs"))


# ----------------------------------------------------------------------------- 8. truncated images


def test_8_data_check_lists_a_truncated_image_and_a_late_failure_keeps_the_weights(tmp_path, capsys):
    info = make_cub_fixture(tmp_path / "cub")
    bad = tmp_path / "cub" / "images" / info["test"][1]["image_id"]
    good = bad.read_bytes()
    pixels = good.index(b"\xff\xda")  # start of scan: the header is intact, half the pixels are cut
    bad.write_bytes(good[: pixels + (len(good) - pixels) // 2])
    settings = ["--set", *CUB, f"data.root={tmp_path / 'cub'}"]

    assert main(["data", "check", "--config", str(TINY), "--no-progress", *settings]) == 1
    captured = capsys.readouterr()
    listed = captured.out.strip().splitlines()
    assert len(listed) == 1 and listed[0].startswith("test: Cannot decode image") and str(bad) in listed[0]
    assert "1 of 6 images" in captured.err
    assert main(["data", "check", "--config", str(TINY), "--no-progress", "--split", "train", *settings]) == 0
    assert "all 3 images" in capsys.readouterr().err

    out = tmp_path / "run"
    assert main(["train", "--config", str(TINY), "--no-progress", *settings, f"output_dir={out}"]) == 2
    line = _error_line(capsys)
    assert f"{out / 'final.pt'} holds the trained weights" in line and str(bad) in line
    assert "`cirlib data check` lists every unreadable image" in line and "--resume" in line
    assert (out / "final.pt").is_file()
    assert json.loads((out / "metrics.json").read_text())["status"] == "failed: evaluation"

    bad.write_bytes(good)  # fixed: --resume evaluates the trained model without training again
    assert main(["train", "--config", str(TINY), "--no-progress", "--resume", *settings, f"output_dir={out}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["test"]["num_images"] == 3
    assert len(metrics["history"]) == 1 and metrics["global_step"] == 3


def test_8_data_check_on_synthetic_data_has_nothing_to_read(capsys):
    assert main(["data", "check", "--config", str(TINY)]) == 0
    assert "no files to check" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 9. messages


@pytest.fixture()
def files(tmp_path):
    """Random bytes, a truncated torch file and a code-carrying one (zip and legacy pickle)."""
    random_bytes = tmp_path / "random.pth"
    random_bytes.write_bytes(bytes(range(256)) * 8)
    whole = tmp_path / "whole.pth"
    torch.save({"early.0.weight": torch.zeros(8, 3, 3, 3)}, whole)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[:300])
    marker = tmp_path / "pwned"
    code = tmp_path / "code.pth"
    torch.save({"format": "cirlib-checkpoint-v1", "x": _Evil(marker)}, code)
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"format": "cirlib-checkpoint-v1", "x": _Evil(marker)}, protocol=5))
    return {"random": random_bytes, "truncated": truncated, "code": code, "legacy": legacy, "marker": marker}


@pytest.mark.parametrize("kind", ["random", "truncated", "code", "legacy"])
def test_9_pretrained_weights_that_cannot_be_read(kind, files, tmp_path, capsys):
    assert main(["train", "--config", str(TINY), "--set", *FAST, f"model.pretrained={files[kind]}",
                 f"output_dir={tmp_path / 'r'}"]) == 2
    line = _error_line(capsys)
    assert f"Cannot read the weights file '{files[kind]}' (model.pretrained)" in line
    if kind in ("code", "legacy"):
        assert "holds pickled code or objects (posix.mkdir) and was refused" in line and "nothing in it ran" in line
    else:
        assert "damaged" in line and "pop from empty list" not in line
    assert "weights_only=False" not in line and "Weights only load failed" not in line
    assert not files["marker"].exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", ["random", "truncated", "code", "legacy"])
def test_9_checkpoints_that_cannot_be_read_name_the_file(kind, files, capsys):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["evaluate", "--checkpoint", str(files[kind])]) == 2
    assert not [w for w in seen if "pickle protocol" in str(w.message)], "torch's pickle warning is not shown"
    line = _error_line(capsys)
    assert f"Cannot read checkpoint {files[kind]}: " in line
    expected = "holds pickled code or objects (posix.mkdir) and was refused" if kind in ("code", "legacy") else \
        "it is damaged (a truncated or interrupted copy?)"
    assert expected in line and "weights_only=False" not in line
    assert not files["marker"].exists()


def test_9_yaml_errors_give_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain:\n  lr: 0.1\n   epochs: 3\n")
    assert main(["train", "--config", str(bad)]) == 2
    line = _error_line(capsys)
    assert f"{bad}, line 4, column 10: not valid YAML: mapping values are not allowed here" in line


def test_9_image_id_whose_extension_differs_in_case(tmp_path, capsys):
    info = make_wsol_metadata_fixture(tmp_path / "wsol")
    first = tmp_path / "wsol" / info["train"][0]["image_id"]
    first.rename(first.with_suffix(".JPG"))
    assert main(["train", "--config", str(TINY), "--set", *CUB, f"data.root={tmp_path / 'wsol'}",
                 f"output_dir={tmp_path / 'r'}"]) == 2
    line = _error_line(capsys)
    assert first.with_suffix(".JPG").name in line and "differ only in letter case" in line
    assert "data.root is right" in line
    first.with_suffix(".JPG").rename(first)
    other = tmp_path / "wsol" / info["train"][1]["image_id"]  # not the first: found by the header check
    other.rename(other.with_suffix(".JPG"))
    assert main(["train", "--config", str(TINY), "--set", *CUB, f"data.root={tmp_path / 'wsol'}",
                 f"output_dir={tmp_path / 'r'}"]) == 2
    line = _error_line(capsys)
    assert f"{other} is listed in the metadata but does not exist; {other.stem}.JPG is there" in line
    assert not (tmp_path / "r").exists()


def test_9_utf8_byte_order_mark_in_metadata_is_accepted(tmp_path):
    from cirlib.data import CUBDataset, WSOLMetadataDataset

    info = make_wsol_metadata_fixture(tmp_path / "wsol")
    meta = info["metadata_root"] / "CUB" / "test"
    for name in ("image_ids.txt", "class_labels.txt", "localization.txt"):
        (meta / name).write_bytes(b"\xef\xbb\xbf" + (meta / name).read_bytes())
    dataset = WSOLMetadataDataset(info["data_root"], info["metadata_root"], "CUB", "test", num_classes=3)
    assert [r.image_id for r in dataset.records] == [r["image_id"] for r in info["test"]]
    assert dataset.labels.tolist() == [r["label"] for r in info["test"]]

    cub = make_cub_fixture(tmp_path / "cub")
    for name in ("classes.txt", "images.txt", "image_class_labels.txt"):
        path = tmp_path / "cub" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert CUBDataset(tmp_path / "cub", "train").labels.tolist() == [r["label"] for r in cub["train"]]


def test_9_evaluate_says_which_epoch_and_step_it_scored(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    original = cirlib.engine.Trainer._accumulate

    def accumulate(self, result, labels):  # SIGTERM after step 4: epoch 2, one step in
        original(self, result, labels)
        if self.global_step == 4:
            self.signals.pending = signal.SIGTERM

    monkeypatch.setattr(cirlib.engine.Trainer, "_accumulate", accumulate)
    with pytest.raises(KeyboardInterrupt):
        fit(load_config(TINY, FAST + ["train.epochs=2", f"output_dir={out}"]), progress=False)
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "last.pt"), "--no-progress", "--out",
                 str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert (f"scoring {out / 'last.pt'}: epoch 2/2, step 1 of that epoch (global step 4): a mid-epoch checkpoint, "
            "not the end of training") in err
    stored = json.loads((tmp_path / "m.json").read_text())
    assert stored["global_step"] == 4 and stored["epochs_completed"] == 1 and "mid-epoch" in stored["trained"]
