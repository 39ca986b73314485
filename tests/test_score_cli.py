"""`cirlib evaluate --save-maps DIR` then `cirlib score --scoremap-root DIR`: the same MaxBoxAcc, on the CLI.

The researcher's path end to end, through :func:`cirlib.cli.main` (the ``cirlib`` entry point, in this
process to skip the interpreter start-up): a dataset in wsolevaluation's layout (``cirlib data
export``, originals 200 x 150, so the boxes are resized to 224 as the reference does), a model trained
for one epoch, its maps saved by ``evaluate``, and ``score`` reading them with the dataset's own
``metadata/`` folder. ``evaluate --save-maps`` writes maps only: the metadata ``score`` needs is the
dataset's, already on disk (the synthetic dataset has none and 32 x 32 maps, so it is not the input
``score`` takes).
"""

from __future__ import annotations

import json

import pytest

from cirlib.cli import main

TINY_TRAIN = ["model.method=cam", "model.arch=small_cnn", "data.name=cub", "data.image_size=224",
              "data.batch_size=3", "data.eval_batch_size=8", "data.train_limit=null", "data.eval_limit=null",
              "train.epochs=1", "train.checkpoint_every_steps=0", "eval.val_split=null", "eval.cam_interval=0.01"]


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.mark.slow
def test_evaluate_save_maps_then_score_agree_on_the_cli(tmp_path, quiet):
    data, run, maps = tmp_path / "data", tmp_path / "run", tmp_path / "scoremaps"
    assert main(["data", "export", str(data), "--layout", "wsolevaluation", "--size", "200x150", "--train", "3",
                 "--test", "8", "--num-classes", "3", "--no-progress"]) == 0
    assert main(["train", "--set", f"output_dir={run}", f"data.root={data}", *TINY_TRAIN, "--no-progress"]) == 0
    assert main(["evaluate", "--checkpoint", str(run / "final.pt"), "--split", "test", "--save-maps", str(maps),
                 "--out", str(tmp_path / "evaluate.json"), "--no-progress"]) == 0
    evaluated = json.loads((tmp_path / "evaluate.json").read_text())
    assert evaluated["num_images"] == len(list(maps.rglob("*.npy"))) == 8

    scored = {}
    for contour in ("--multi-contour", "--single-contour"):
        out = tmp_path / f"score{contour}.json"
        assert main(["score", "--scoremap-root", str(maps), "--metadata-root", str(data / "metadata"),
                     "--dataset", "CUB", "--split", "test", "--cam-curve-interval", "0.01", contour,
                     "--json", str(out)]) == 0
        scored[contour] = json.loads(out.read_text())
        assert scored[contour]["num_scored"] == 8 and scored[contour]["unlisted_maps"] == 0
    # MaxBoxAccV2: multi-contour boxes, the mean over IoU 30/50/70; MaxBoxAcc: the largest contour's box
    assert scored["--multi-contour"]["maxboxacc"] == evaluated["maxboxacc"]
    assert scored["--multi-contour"]["maxboxacc_mean"] == evaluated["maxboxacc_v2"]
    assert scored["--single-contour"]["maxboxacc"] == evaluated["maxboxacc_single"]
    # an honest comparison: the maps localise something, so the numbers are not trivially 0 on both sides
    assert max(evaluated["maxboxacc"].values()) > 0
