"""`cirlib score`: the reference's values from maps and metadata on disk, bad input, evaluate --save-maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cirlib.cli import main
from cirlib.scoring import ScoreInputError, score_scoremaps

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "wsolevaluation_boxacc_public.npz"


@pytest.fixture(scope="module")
def fixture():
    z = np.load(FIXTURE)
    gts = np.split(z["gt_boxes"], np.cumsum(z["gt_box_counts"])[:-1])
    return z, gts


def _write_metadata(folder: Path, ids, sizes, boxes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    (folder / "class_labels.txt").write_text("".join(f"{i},0\n" for i in ids))
    (folder / "image_sizes.txt").write_text("".join(f"{i},{w},{h}\n" for i, (w, h) in zip(ids, sizes)))
    (folder / "localization.txt").write_text(
        "".join(f"{i},{','.join(str(int(v)) for v in b)}\n" for i, bs in zip(ids, boxes) for b in bs))


def _scoremap_folder(tmp_path: Path, fixture, original_size=(224, 224)) -> tuple[Path, Path, list[str]]:
    """The fixture's maps as <image_id>.npy and metadata whose boxes resize_bbox maps onto the fixture's."""
    z, gts = fixture
    ids = [f"{k % 3 + 1:03d}.Bird_{k % 3}/Bird_{k:04d}.jpg" for k in range(len(z["cams"]))]
    maps = tmp_path / "scoremaps"
    for image_id, cam in zip(ids, z["cams"]):
        (maps / image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(maps / f"{image_id}.npy", cam)
    w, h = original_size
    # original boxes whose int(x * 224 / w) is the fixture's 224-frame box (w = 2 * 224, h = 1.5 * 224)
    if original_size == (224, 224):
        boxes = gts
    else:
        assert original_size == (448, 336)
        boxes = [np.stack([2 * g[:, 0], np.ceil(1.5 * g[:, 1]), 2 * g[:, 2], np.ceil(1.5 * g[:, 3])], axis=1)
                 for g in gts]
    _write_metadata(tmp_path / "metadata" / "CUB" / "test", ids, [(w, h)] * len(ids), boxes)
    return maps, tmp_path / "metadata", ids


def _curves(scores: dict) -> np.ndarray:
    return np.array([scores["curves"]["boxacc"][k] for k in ("30", "50", "70")])


@pytest.mark.parametrize("original_size", [(224, 224), (448, 336)])
def test_score_gives_the_reference_curves_exactly(tmp_path, fixture, original_size):
    z, _ = fixture
    maps, meta, ids = _scoremap_folder(tmp_path, fixture, original_size)
    for interval, name in ((0.01, "0p01"), (0.001, "0p001")):
        for multi in (False, True):
            scores = score_scoremaps(maps, meta, "CUB", "test", cam_curve_interval=interval, multi_contour=multi)
            want = z[f"boxacc_curves_interval{name}_{'multi' if multi else 'single'}"]
            np.testing.assert_array_equal(_curves(scores), want)
            assert scores["num_scored"] == len(ids)
            assert scores["maxboxacc"] == {k: float(want[j].max()) for j, k in enumerate(("30", "50", "70"))}
            thr = np.arange(0, 1, interval)
            assert scores["best_threshold"]["50"] == float(thr[want[1].argmax()])
            assert scores["maxboxacc_mean"] == pytest.approx(want.max(axis=1).mean())


def test_score_cli_prints_the_count_and_writes_json_and_workers_agree(tmp_path, fixture, capsys):
    maps, meta, ids = _scoremap_folder(tmp_path, fixture)
    out = tmp_path / "scores.json"
    args = ["score", "--scoremap-root", str(maps), "--metadata-root", str(meta), "--dataset", "CUB",
            "--split", "test", "--cam-curve-interval", "0.01", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"scored {len(ids)} maps" in printed and "MaxBoxAccV2" in printed and "MaxBoxAcc@50" in printed
    one = json.loads(out.read_text())
    assert main(args + ["--workers", "2"]) == 0
    assert json.loads(out.read_text()) == one
    assert main(args + ["--single-contour"]) == 0
    assert "single-contour" in capsys.readouterr().out
    assert json.loads(out.read_text())["contour"] == "single"


def _one_error_line(capsys, args) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_score_bad_input_is_one_line_naming_the_file(tmp_path, fixture, capsys):
    maps, meta, ids = _scoremap_folder(tmp_path, fixture)
    args = ["score", "--scoremap-root", str(maps), "--metadata-root", str(meta), "--dataset", "CUB",
            "--split", "test", "--cam-curve-interval", "0.1"]
    first = maps / f"{ids[0]}.npy"
    good = np.load(first)

    first.unlink()
    line = _one_error_line(capsys, args)
    assert ids[0] in line and str(first) in line and "no score map" in line

    np.save(first, good[:100])
    line = _one_error_line(capsys, args)
    assert str(first) in line and "224x224" in line
    bad = good.astype(np.float64)
    bad[3, 3] = np.nan
    np.save(first, bad)
    line = _one_error_line(capsys, args)
    assert str(first) in line and "NaN" in line
    bad[3, 3] = 1.5
    np.save(first, bad)
    line = _one_error_line(capsys, args)
    assert str(first) in line and "[0, 1]" in line and "1.5" in line

    np.save(first, good)
    np.save(maps / "unlisted.jpg.npy", good)  # a map the metadata does not list: reported, then an error
    assert main(args) == 0
    assert "not scored: 1 maps" in capsys.readouterr().out
    line = _one_error_line(capsys, args + ["--strict"])
    assert "unlisted.jpg.npy" in line and "--strict" in line

    line = _one_error_line(capsys, args[:6] + ["ILSVRC"] + args[7:])
    assert str(meta / "ILSVRC" / "test") in line


def test_score_rejects_metadata_with_bad_boxes(tmp_path, fixture):
    maps, meta, ids = _scoremap_folder(tmp_path, fixture)
    loc = meta / "CUB" / "test" / "localization.txt"
    lines = loc.read_text().splitlines()
    lines[4] = f"{ids[4]},10,5,3,8"
    loc.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScoreInputError, match=r"localization.txt:5: box \(10, 5, 3, 8\)"):
        score_scoremaps(maps, meta, "CUB", "test")


def test_score_openimages_pxap_from_the_reference_masks(tmp_path):
    from cirlib.scoring import load_reference_mask

    image_id = "val/0bt_c3/1cd9ac0169ec7df0.jpg"
    mask_paths = ["val/0bt_c3/1cd9ac0169ec7df0_m0bt_c3_6932e993.png"]
    ignore = "val/0bt_c3/1cd9ac0169ec7df0_ignore.png"
    folder = tmp_path / "metadata" / "OpenImages" / "val"
    folder.mkdir(parents=True)
    (folder / "image_ids.txt").write_text(f"{image_id}\n")
    (folder / "localization.txt").write_text(f"{image_id},{mask_paths[0]},{ignore}\n")
    maps = tmp_path / "scoremaps"
    (maps / image_id).parent.mkdir(parents=True)
    np.save(maps / f"{image_id}.npy", np.full((224, 224), 0.5))
    scores = score_scoremaps(maps, tmp_path / "metadata", "OpenImages", "val", mask_root=DATA / "wsolevaluation_masks",
                             cam_curve_interval=0.01)
    assert scores["num_scored"] == 1
    assert scores["pxap"] == pytest.approx(100.0 * 43031 / (43031 + 7145), abs=0.1)  # the reference test's value
    mask = load_reference_mask(DATA / "wsolevaluation_masks", mask_paths, ignore)
    np.save(maps / f"{image_id}.npy", (mask == 1).astype(np.float64))  # the perfect map
    assert score_scoremaps(maps, tmp_path / "metadata", "OpenImages", "val",
                           mask_root=DATA / "wsolevaluation_masks", cam_curve_interval=0.01)["pxap"] == 100.0
    with pytest.raises(ScoreInputError, match="--mask-root"):
        score_scoremaps(maps, tmp_path / "metadata", "OpenImages", "val")


def test_evaluate_save_maps_then_score_equals_evaluate(tmp_path):
    """A model evaluated on a wsolevaluation-layout dataset (originals 200 x 150, evaluated at 224) and
    its saved maps scored from the metadata give the same MaxBoxAcc curves."""
    from cirlib.data import build_loader
    from cirlib.data.export import export_dataset
    from cirlib.data.real import WSOLMetadataDataset
    from cirlib.data.transforms import build_transforms
    from cirlib.engine import evaluate_model
    from cirlib.methods import build_model

    root = tmp_path / "data"
    export_dataset(root, "wsolevaluation", dataset="CUB", image_size=(200, 150), train=4, val=0, test=12,
                   num_classes=3, progress=False)
    data = WSOLMetadataDataset(root / "CUB", root / "metadata", "CUB", "test", num_classes=3,
                               transform=build_transforms(False, test_size=224))
    torch.manual_seed(0)
    model = build_model("cam", "small_cnn", 3, image_size=224)
    maps = tmp_path / "scoremaps"
    evaluated = evaluate_model(model, build_loader(data, batch_size=5, shuffle=False), cam_interval=0.01,
                               progress=False, return_curves=True, save_maps=maps)
    assert len(list(maps.rglob("*.npy"))) == len(data) == 12
    for multi, key in ((True, "multi"), (False, "single")):
        scores = score_scoremaps(maps, root / "metadata", "CUB", "test", cam_curve_interval=0.01, multi_contour=multi)
        assert scores["num_scored"] == 12
        for iou in ("30", "50", "70"):
            assert scores["curves"]["boxacc"][iou] == evaluated["curves"][key][iou]
    assert scores["maxboxacc"] == evaluated["maxboxacc_single"]
