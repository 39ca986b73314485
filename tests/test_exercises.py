"""The exercise checkers of every notebook: right answers pass, wrong ones fail with a hint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cirlib import exercises
from cirlib.exercises import nb00, nb02
from cirlib.data import SyntheticWSOL
from cirlib.methods import scale_patch_sizes
from cirlib.metrics import box_iou_inclusive
from cirlib.evidence import compare
from cirlib.runs.results import StoredResults


@pytest.fixture(scope="module")
def dataset() -> SyntheticWSOL:
    return SyntheticWSOL("train", size=60, image_size=32, seed=3)


def _tight(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]])


def _stored(rows: dict[str, tuple[float, float, float]]) -> StoredResults:
    """A results file's summary: ``{method: (MaxBoxAccV2 mean, its std, top-1 mean)}`` (top-1 std 1.0)."""
    summary = {m: {"n": 3, "seeds": [3, 4, 5], "mean": {"maxboxacc_v2": v2, "top1": top1},
                   "std": {"maxboxacc_v2": s, "top1": 1.0}} for m, (v2, s, top1) in rows.items()}
    return StoredResults(Path("results.json"), {"summary": summary, "runs": []})


class _Constant(torch.nn.Module):
    """A "classifier" that always answers class 1 (its top-1 is the share of class-1 images)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor([0.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), 2)


def _cases(ds: SyntheticWSOL):
    """(checker, right answer, wrong answer, extra args) for every checker."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(6, 4, 5, generator=gen)
    weight = torch.randn(3, 6, 1, 1, generator=gen)
    cam = torch.einsum("c,chw->hw", weight.flatten(1)[2], feats)
    head_iou = float(box_iou_inclusive(_tight(ds.render(0)["head_mask"])[None], ds.render(0)["box"][None])[0, 0])
    same = {"maxboxacc": {"50": 74.4}, "maxboxacc_single": {"50": 74.4}}  # one contour per map
    split = {"maxboxacc": {"50": 74.4}, "maxboxacc_single": {"50": 70.0}}
    bigger = nb00.bigger_head_box_accuracy(ds, 2.0, 40)
    headless = nb02.headless_top1(_Constant(), ds, 40)
    return [
        (exercises.check_00_bigger_head, bigger, bigger + 0.5, (ds, 2.0, 40)),
        (exercises.check_00_head_box_iou, head_iou, head_iou + 0.1, (ds, 0)),
        (exercises.check_01_single_contour, "the same", "higher", (same,)),
        (exercises.check_01_single_contour, "it drops", "no change", (split,)),
        (exercises.check_01_iou, 25 / 175, 25 / 200, ()),
        (exercises.check_01_cam_from_features, cam, cam + 0.1, (feats, weight, 2)),
        (exercises.check_02_whole_head_hidden, "8", "the small one", (ds, (2, 8))),
        (exercises.check_02_headless_top1, headless, (headless + 40) % 100, ({"const": _Constant()}, ds, 40, "const")),
        (exercises.check_02_head_hidden_probability, 0.4, 0.5, (0.5, 5)),
        (exercises.check_03_patch_size_effect, "higher", "lower", (ds, 2, 16, 30)),
        (exercises.check_03_patch_size_effect, +1, "the same", (ds, 2, 16, 30)),
        (exercises.check_03_second_view_fraction, 0.3, 0.7, (0.3,)),
        *_advanced_cases(gen),
    ]


def _attended_map_args():
    """A tiny untrained caam model, test images and a pair of features for check_04_attended_map."""
    from cirlib.methods import build_model

    torch.manual_seed(0)
    model = build_model("caam", "small_cnn", num_classes=3, image_size=32, width=4).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        f = model.backbone(x)
    return model, x, torch.tensor([0, 1, 2, 0]), [np.array([[4, 4, 20, 20]])] * 4, (f, f.flip(0))


def _advanced_cases(gen: torch.Generator):
    """Cases of the checkers of notebooks 04-07."""
    f1 = torch.randn(2, 4, 3, 3, generator=gen)
    f2 = torch.randn(2, 4, 3, 3, generator=gen)
    uniform = f1 + 0.3 * f2.mean(dim=1, keepdim=True).expand_as(f1)
    a1, a2 = torch.rand(5, 5, generator=gen), torch.rand(5, 5, generator=gen)
    heldout = _stored({"full": (83.0, 4.0, 100.0), "has": (74.0, 0.7, 99.8), "cam": (64.0, 1.6, 100.0),
                       "fewshot": (92.0, 2.5, 76.0)})
    tested = _stored({"full": (81.0, 4.0, 99.9), "has": (78.0, 1.0, 99.7)})
    values = [70.0, 72.0, 75.0]
    acol_map = torch.tensor([[0.0, 0.5], [0.9, 1.0]])  # normalised as it is: 0.9 and 1.0 lie above 0.6
    return [
        (exercises.check_04_uniform_attention, uniform, f1, (f1, f2, 0.3)),
        (exercises.check_04_attended_map, "it changes", "flat", _attended_map_args()),
        (exercises.check_05_cam_from, "higher", "same", ({"head_mass": 0.2, "body": 0.4},
                                                          {"head_mass": 0.3, "body": 0.1})),
        (exercises.check_05_cam_from, -1, "up", ({"head_mass": 0.3, "body": 0.4}, {"head_mass": 0.2, "body": 0.1})),
        (exercises.check_05_gate_factor, 2.0, 3.0, (0.5, 3.0)),
        (exercises.check_06_fusion_weight_at_inference, "unchanged", "different", (a1, a1.clone())),
        (exercises.check_06_fusion_weight_at_inference, "they change", "the same", (a1, a2)),
        (exercises.check_07_heldout_verdict, "better", "not better", (heldout, tested)),
        (exercises.check_07_heldout_verdict, False, "yes", (tested,)),  # 3.0 vs 4.0 + 1.0: not better
        (exercises.check_07_sample_std, float(np.std(values, ddof=1)), float(np.std(values)), (values,)),
        (exercises.check_07_is_evidence, "no, inside the spread", True, (compare(80.1, 74.2, 2.9, 3.8),)),
        (exercises.check_07_is_evidence, "yes", "not better", (compare(80.1, 71.6, 2.9, 3.3),)),
        (exercises.check_08_cutmix_weight, 1 - 4 * 6 / (8 * 12), 4 * 6 / (8 * 12), (8, 12, (2, 6, 3, 9))),
        (exercises.check_08_acol_erased_fraction, 2 / 4, 1 / 4, (acol_map, 0.6)),
        (exercises.check_08_fewshot_top1, "lower", "the same", (heldout,)),
        (exercises.check_08_fewshot_top1, -24, "higher", (heldout,)),
    ]


def test_every_checker_is_covered(dataset):
    covered = {case[0].__name__ for case in _cases(dataset)}
    assert covered | {"check_explanation"} == set(exercises.__all__)  # explanations: see the test below


def test_an_explanation_is_never_graded_but_compared_with_the_key_ideas(capsys):
    ideas = {"the head is a small part of the object": ("small", "tiny"), "the background is suppressed": ("background",)}
    assert exercises.check_explanation("The head is tiny.", ideas, "answer_3") is None
    out = capsys.readouterr().out
    assert "names 1 of the 2" in out and "+ the head is a small part" in out and "? does it account for: the background" in out
    exercises.check_explanation(None, ideas, "answer_3")
    assert "answer_3 is still None" in capsys.readouterr().out


def test_right_answers_pass_with_a_friendly_message(dataset, capsys):
    for checker, right, _, args in _cases(dataset):
        assert checker(right, *args) is None, checker.__name__  # None: no echo as a cell's last line
        out = capsys.readouterr().out
        assert out.startswith("Correct!"), (checker.__name__, out)


def test_wrong_answers_fail_with_a_hint_not_the_answer(dataset):
    for checker, right, wrong, args in _cases(dataset):
        with pytest.raises(AssertionError, match="Hint") as info:
            checker(wrong, *args)
        if isinstance(right, float) and not math.isclose(right, round(right, 1)):
            assert f"{right:.4f}" not in str(info.value), checker.__name__


def test_unanswered_exercises_print_what_to_do_and_do_not_stop_the_notebook(dataset, capsys):
    # A student copy runs top to bottom with every answer still None.
    for checker, _, _, args in _cases(dataset):
        assert checker(None, *args) is None, checker.__name__
        assert "still None" in capsys.readouterr().out, checker.__name__


def test_percent_instead_of_fraction_gets_a_specific_hint(dataset):
    with pytest.raises(AssertionError, match="not a percentage"):
        exercises.check_00_bigger_head(50.0, dataset, 2.0, 40)


def test_a_prediction_is_accepted_in_any_wording():
    split = {"maxboxacc": {"50": 74.4}, "maxboxacc_single": {"50": 70.0}}
    for said in ("lower", "Lower than multi", "it drops", "decrease"):
        exercises.check_01_single_contour(said, split)
    with pytest.raises(AssertionError, match="direction"):
        exercises.check_01_single_contour("maybe", split)


def test_a_fast_run_shows_a_model_prediction_without_judging_it(dataset, capsys):
    split = {"maxboxacc": {"50": 74.4}, "maxboxacc_single": {"50": 70.0}}
    exercises.check_01_single_contour("higher", split, fast=True)  # wrong, but a FAST model means nothing
    exercises.check_02_headless_top1(99.0, {"const": _Constant()}, dataset, 40, "const", fast=True)
    assert capsys.readouterr().out.count("not judged") == 2


def test_non_numeric_answer_is_reported():
    with pytest.raises(AssertionError, match="must be a number"):
        exercises.check_01_iou([0.14])
    with pytest.raises(AssertionError, match="is NaN"):
        exercises.check_01_iou(float("nan"))


def test_cam_shape_mismatch_is_explained():
    feats, weight = torch.ones(6, 4, 5), torch.ones(3, 6)
    with pytest.raises(AssertionError, match=r"shape \(4, 5\)"):
        exercises.check_01_cam_from_features(torch.ones(3, 4, 5), feats, weight, 0)


def test_scaled_patch_sizes_expected_value_matches_library():
    # The checker's expectation comes from the library; the notebook asks for the hand formula.
    by_hand = tuple(int(math.floor(s * 64 / 224 + 0.5)) for s in (0, 16, 32, 44, 56))
    assert by_hand == scale_patch_sizes(image_size=64)


def test_result_checkers_without_results_say_how_to_make_them(capsys):
    exercises.check_07_heldout_verdict("better", None)
    exercises.check_08_fewshot_top1("lower", None)
    out = capsys.readouterr().out
    assert "--out results/heldout" in out and "make results" in out


def test_explain_exercises_of_07_and_08_name_their_key_ideas(capsys):
    exercises.check_explanation("One seed is one draw; the spread of the full method is large.",
                                exercises.nb07.ONE_SEED_IDEAS, "answer_4")
    exercises.check_explanation("The boxes that choose the threshold can train a localizer instead.",
                                exercises.nb08.FEWSHOT_IDEAS, "answer_4")
    out = capsys.readouterr().out
    assert out.count("names 2 of the 4") == 2
