r"""Checkers for the notebooks' exercises.

Every exercise in a notebook is three cells: a markdown question, a code cell tagged ``solution``
that assigns ``answer_N = ...`` (student copies replace it with ``answer_N = None``), and a checker
cell calling one function of this module, e.g. ``check_00_head_fraction(answer_1, train_set)``.

The pattern, for whoever adds exercises (one function per exercise, named
``check_<notebook number>_<what>``):

* compute the expected value from first principles or from the library, **not** from the answer;
* call :func:`_verdict`, which prints a friendly line when the answer is right and raises
  ``AssertionError`` with a hint (never the answer itself) when it is wrong;
* an unanswered exercise (``None``) raises an ``AssertionError`` telling the student what to do.

Append new checkers at the end of the file, grouped by notebook.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

__all__ = [
    "check_00_head_box_iou",
    "check_00_head_fraction",
    "check_00_num_classes_per_group",
    "check_01_cam_from_features",
    "check_01_iou",
    "check_01_maxboxacc_v2",
    "check_02_head_hidden_probability",
    "check_02_num_patches",
    "check_02_scaled_patch_sizes",
    "check_03_backbone_passes",
    "check_03_pair_sum",
    "check_03_second_view_fraction",
    "check_04_caam_entries",
    "check_04_unbounded_scale",
    "check_04_uniform_attention",
    "check_05_attention_bytes",
    "check_05_gate_factor",
    "check_05_received_mean",
    "check_06_forward_passes",
    "check_06_full_map_kinds",
    "check_06_stitched_target",
    "check_07_best_method",
    "check_07_maxboxacc_from_curve",
    "check_07_sample_std",
    "check_08_acol_erased_fraction",
    "check_08_cutmix_weight",
    "check_08_fewshot_margin",
]


# ----------------------------------------------------------------------------- helpers


def _require(answer: Any, name: str) -> None:
    """Fail with a clear message when the exercise was not answered (the student stub is ``None``)."""
    if answer is None:
        raise AssertionError(
            f"{name} is still None: write your answer in the solution cell above (replace the "
            f"'{name} = None' line), run it, then run this checker again."
        )


def _as_float(answer: Any, name: str) -> float:
    _require(answer, name)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} must be a number, got {type(answer).__name__} {answer!r}.") from None
    if math.isnan(value):
        raise AssertionError(f"{name} is NaN; check for a division by zero.")
    return value


def _verdict(ok: bool, praise: str, hint: str) -> None:
    """Print ``praise`` when ``ok``; otherwise raise ``AssertionError`` with the hint.

    Returns ``None`` on purpose: a checker as the last line of a cell then prints only its verdict.
    """
    if not ok:
        raise AssertionError("Not quite. Hint: " + hint)
    print("Correct! " + praise)


def _close(value: float, expected: float, tol: float) -> bool:
    return abs(value - expected) <= tol


def _as_tensor(answer: Any, name: str, shape: tuple[int, ...]):
    import torch

    _require(answer, name)
    got = torch.as_tensor(np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer)).float()
    if tuple(got.shape) != tuple(shape):
        raise AssertionError(f"Not quite. Hint: the result has shape {tuple(shape)}, yours is {tuple(got.shape)}.")
    return got


# ----------------------------------------------------------------------------- 00: WSOL and the dataset


def head_fraction(dataset: Any, n: int = 50) -> float:
    r"""Mean over the first ``n`` images of :math:`|\text{head}| / |\text{object}|` (synthetic masks)."""
    fractions = []
    for i in range(min(n, len(dataset))):
        r = dataset.render(i)
        fractions.append(float(r["head_mask"].sum()) / float(max(r["mask"].sum(), 1)))
    return float(np.mean(fractions))


def check_00_head_fraction(answer: Any, dataset: Any, n: int = 50) -> None:
    r"""Exercise 00.1: the mean fraction of object pixels that belong to the head.

    Args:
        answer: the student's value, a fraction in [0, 1] (not percent).
        dataset: a :class:`~cirlib.data.SyntheticWSOL` split.
        n: number of images averaged (the first ``n``).
    """
    value = _as_float(answer, "answer_1")
    expected = head_fraction(dataset, n)
    if value > 1.0 and _close(value / 100.0, expected, 0.005):
        raise AssertionError("Not quite. Hint: give a fraction in [0, 1], not a percentage.")
    _verdict(
        _close(value, expected, 0.005),
        f"The head is only {expected:.1%} of the object's pixels: a detector that finds the head alone "
        "finds a tiny part of the object.",
        f"average, over the first {n} images, head_mask.sum() / mask.sum() from dataset.render(i) "
        "(the mask is the whole object, head included).",
    )


def _bbox_of(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.int64)


def check_00_head_box_iou(answer: Any, dataset: Any, index: int = 0) -> None:
    """Exercise 00.2: the IoU of the head's tight box with the object's GT box (inclusive pixels).

    Args:
        answer: the student's IoU in [0, 1].
        dataset: a :class:`~cirlib.data.SyntheticWSOL` split.
        index: the image.
    """
    from cirlib.metrics import box_iou_inclusive

    value = _as_float(answer, "answer_2")
    r = dataset.render(index)
    expected = float(box_iou_inclusive(_bbox_of(r["head_mask"])[None], r["box"][None])[0, 0])
    _verdict(
        _close(value, expected, 1e-3),
        f"IoU = {expected:.3f}: far below 0.5, so a box around the head alone counts as a miss at IoU 50.",
        "the head box is the tight box of render(i)['head_mask'] (min/max of its rows and columns); "
        "IoU counts pixels inclusively: width = x1 - x0 + 1. cirlib.metrics.box_iou_inclusive does it.",
    )


def check_00_num_classes_per_group(answer: Any, dataset: Any) -> None:
    """Exercise 00.3: how many classes share one body texture (a group)."""
    _require(answer, "answer_3")
    expected = int(dataset.spec.classes_per_group)
    _verdict(
        answer == expected,
        f"{expected} classes share each body texture, so the body alone narrows the class down to a "
        f"group but cannot tell the {expected} apart: only the head can.",
        "look at dataset.class_to_group (or dataset.spec): count the classes that map to group 0.",
    )


# ----------------------------------------------------------------------------- 01: CAM baseline


def check_01_iou(answer: Any) -> None:
    """Exercise 01.1: the inclusive IoU of the boxes ``[0, 0, 9, 9]`` and ``[5, 5, 14, 14]``."""
    value = _as_float(answer, "answer_1")
    expected = 25.0 / 175.0  # 5x5 overlap, two 10x10 boxes
    _verdict(
        _close(value, expected, 1e-4),
        f"IoU = 25 / 175 = {expected:.4f}.",
        "with inclusive corners a box [0, 0, 9, 9] is 10 x 10 pixels; the overlap is [5, 5, 9, 9]; "
        "IoU = overlap / (area_a + area_b - overlap).",
    )


def check_01_maxboxacc_v2(answer: Any, metrics: dict) -> None:
    """Exercise 01.2: MaxBoxAccV2 from the per-IoU MaxBoxAcc of this run.

    Args:
        answer: the student's value in percent.
        metrics: the run's test metrics (``metrics["maxboxacc"]`` maps ``"30"/"50"/"70"`` to percent).
    """
    value = _as_float(answer, "answer_2")
    expected = float(np.mean([metrics["maxboxacc"][k] for k in ("30", "50", "70")]))
    _verdict(
        _close(value, expected, 1e-6 + 1e-9 * abs(expected)),
        f"MaxBoxAccV2 = {expected:.2f} %, the mean over IoU 30, 50 and 70.",
        "MaxBoxAccV2 averages MaxBoxAcc over the IoU thresholds 30, 50 and 70 (each in percent, multi-contour).",
    )


def check_01_cam_from_features(answer: Any, features: Any, weight: Any, label: int) -> None:
    r"""Exercise 01.3: the CAM :math:`M_k = \sum_c w_{k,c} F_c` of class ``label`` for one image.

    Args:
        answer: ``(h, w)`` tensor or array.
        features: ``(C, h, w)`` features of the image.
        weight: ``(K, C)`` or ``(K, C, 1, 1)`` classifier weights.
        label: the class :math:`k`.
    """
    import torch

    _require(answer, "answer_3")
    f = torch.as_tensor(features).float()
    w = torch.as_tensor(weight).float().reshape(torch.as_tensor(weight).shape[0], -1)
    expected = torch.einsum("c,chw->hw", w[label], f)
    got = torch.as_tensor(np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer)).float()
    if tuple(got.shape) != tuple(expected.shape):
        raise AssertionError(
            f"Not quite. Hint: the map of one class for one image has shape {tuple(expected.shape)}, "
            f"yours is {tuple(got.shape)}; sum over the channel axis only."
        )
    _verdict(
        bool(torch.allclose(got, expected, atol=1e-4, rtol=1e-4)),
        "That is the class activation map: one weighted sum of feature channels per position.",
        "weight row `label` holds one weight per channel; multiply each channel map by its weight and "
        "sum over channels (no bias, no ReLU, no normalisation).",
    )


# ----------------------------------------------------------------------------- 02: Hide-and-Seek


def check_02_num_patches(answer: Any, height: int = 48, width: int = 64, patch_size: int = 13) -> None:
    """Exercise 02.1: number of grid patches on an ``height x width`` image with side ``patch_size``."""
    _require(answer, "answer_1")
    expected = math.ceil(height / patch_size) * math.ceil(width / patch_size)
    _verdict(
        answer == expected,
        f"{math.ceil(height / patch_size)} rows x {math.ceil(width / patch_size)} columns = {expected} patches "
        "(the last row and column are cut at the border).",
        "the grid starts at the top-left corner and the border patches are cut, so count "
        "ceil(H / s) rows and ceil(W / s) columns.",
    )


def check_02_scaled_patch_sizes(answer: Any, image_size: int = 64) -> None:
    """Exercise 02.2: the HaS patch sides (0, 16, 32, 44, 56) at 224 px scaled to ``image_size``."""
    from cirlib.methods import scale_patch_sizes

    _require(answer, "answer_2")
    expected = scale_patch_sizes(image_size=image_size)
    try:
        got = tuple(int(v) for v in answer)
    except TypeError:
        raise AssertionError("answer_2 must be a sequence of five integers, e.g. (0, 1, 2, 3, 4).") from None
    _verdict(
        got == expected,
        f"{expected}: the same fractions of the image as HaS's sides at 224 px.",
        f"scale each side by {image_size}/224 and round half up; 0 ('hide nothing') stays 0.",
    )


def check_02_head_hidden_probability(answer: Any, hide_prob: float = 0.5, num_sizes: int = 5) -> None:
    """Exercise 02.3: the chance that HaS hides the head in a training image.

    The head lies inside one patch; one of the ``num_sizes`` patch sides is 0 (nothing hidden).
    """
    value = _as_float(answer, "answer_3")
    expected = (num_sizes - 1) / num_sizes * hide_prob
    _verdict(
        _close(value, expected, 1e-6),
        f"P = {num_sizes - 1}/{num_sizes} x {hide_prob} = {expected:.2f}: in that share of the steps the "
        "network must classify from the body.",
        "two independent events: the batch's patch side is not 0 (one of the five sides is 0), and the "
        "head's patch is hidden (probability p).",
    )


# ----------------------------------------------------------------------------- 03: complementary regions


def check_03_pair_sum(answer: Any, images: Any) -> None:
    r"""Exercise 03.1: :math:`I_1 + I_2` for normalised images (:math:`\mu = 0`) equals :math:`I`."""
    import torch

    _require(answer, "answer_1")
    got = torch.as_tensor(answer).float()
    images = torch.as_tensor(images).float()
    if tuple(got.shape) != tuple(images.shape):
        raise AssertionError(f"Not quite. Hint: I1 + I2 has the images' shape {tuple(images.shape)}, "
                             f"yours is {tuple(got.shape)}.")
    _verdict(
        bool(torch.allclose(got, images, atol=1e-6)),
        "I1 + I2 = I (+ mu, which is 0 after normalisation): together the two views lose no pixel.",
        "add the two images returned by complementary_pair for the same images and mask.",
    )


def check_03_second_view_fraction(answer: Any, hide_prob: float = 0.3) -> None:
    """Exercise 03.2: the expected fraction of pixels :math:`I_2` shows when patches hide with ``hide_prob``."""
    value = _as_float(answer, "answer_2")
    _verdict(
        _close(value, hide_prob, 1e-6),
        f"I2 shows exactly what I1 hides: a fraction p = {hide_prob} in expectation.",
        "I2 = (1 - M) * I + M * mu shows the pixels that M hides; each patch is hidden with probability p.",
    )


def check_03_backbone_passes(answer: Any) -> None:
    """Exercise 03.3: backbone forward passes per training image (two-branch model, no fusion loss)."""
    _require(answer, "answer_3")
    _verdict(
        answer == 2,
        "Two passes (one per complementary image), so a training step costs about twice a HaS step; "
        "inference is one pass on the full image.",
        "each branch sees its own image, I1 or I2, through the shared backbone.",
    )


# ----------------------------------------------------------------------------- 04: CAAM


def check_04_caam_entries(answer: Any, channels: int) -> None:
    """Exercise 04.1: the number of entries of one image's CAAM matrix ``Q_x`` (``channels`` x ``channels``)."""
    _require(answer, "answer_1")
    expected = int(channels) ** 2
    return _verdict(
        answer == expected,
        f"Q_x is {channels} x {channels} = {expected} numbers per image and direction, whatever the image "
        "size: CAAM's cost grows with C^2 N, not N^2.",
        "Q_x relates every channel of one branch to every channel of the other: C rows, C columns.",
    )


def check_04_uniform_attention(answer: Any, f1: Any, f2: Any, gamma: float = 0.3) -> None:
    r"""Exercise 04.2: :math:`F^c_x` when every row of :math:`Q_x` is :math:`1/C`."""
    import torch

    f1 = torch.as_tensor(f1).float()
    f2 = torch.as_tensor(f2).float()
    got = _as_tensor(answer, "answer_2", tuple(f1.shape))
    c = f1.shape[1]
    q = torch.full((f1.shape[0], c, c), 1.0 / c)
    expected = f1 + gamma * torch.bmm(q, f2.reshape(f1.shape[0], c, -1)).reshape(f1.shape)
    return _verdict(
        bool(torch.allclose(got, expected, atol=1e-5)),
        "With uniform rows every channel receives the same thing, the channel-average of the other branch: "
        "CAAM then carries no channel-specific information.",
        "Q_x X2 with Q_x = 1/C everywhere averages X2 over its channel axis (dim=1) at every position; "
        "add gamma times that to f1.",
    )


def check_04_unbounded_scale(answer: Any) -> None:
    r"""Exercise 04.3: the ``attention_scale`` value under which :math:`|\gamma|` can exceed 1."""
    from cirlib.models.attention import SCALES

    _require(answer, "answer_3")
    return _verdict(
        str(answer).strip().strip("'\"").lower() == "linear",
        "With 'linear' gamma is the raw parameter itself, unbounded (the literal DANet reading); 'tanh' keeps it in "
        "(-1, 1). The `literal` row of results/results.md trains the full method with 'linear'.",
        f"the valid values are {SCALES}; which one applies no squashing function to the raw parameter?",
    )


# ----------------------------------------------------------------------------- 05: SSAM


def check_05_attention_bytes(answer: Any, height: int, width: int, bytes_per_value: int = 4) -> None:
    """Exercise 05.1: bytes of one image's float32 SSAM attention on an ``height x width`` feature map."""
    value = _as_float(answer, "answer_1")
    n = int(height) * int(width)
    expected = float(n * n * bytes_per_value)
    return _verdict(
        value == expected,
        f"N = {n} positions, N^2 = {n * n} weights, {expected / 2**20:.2f} MiB per image: it grows as the fourth "
        "power of the feature-map side.",
        "S is N x N with N = h * w positions, and a float32 takes 4 bytes.",
    )


def check_05_received_mean(answer: Any) -> None:
    r"""Exercise 05.2: the mean over positions of the attention received, :math:`\frac1N \sum_j \sum_i S_{ij}`."""
    value = _as_float(answer, "answer_2")
    return _verdict(
        abs(value - 1.0) < 1e-6,
        "Each of the N rows sums to 1, so all entries sum to N and the mean received attention is exactly 1: "
        "that is why the gate is 1 + beta (g - 1).",
        "sum all entries of S row by row first: each row is a softmax.",
    )


def check_05_gate_factor(answer: Any, beta: float = 0.5, received: float = 3.0) -> None:
    """Exercise 05.3: the gate factor ``1 + beta (g - 1)`` of a position that receives ``g``."""
    value = _as_float(answer, "answer_3")
    expected = 1.0 + beta * (received - 1.0)
    return _verdict(
        abs(value - expected) < 1e-9,
        f"The factor is {expected:g}: positions that many queries attend to are amplified, the others damped, "
        "and nothing moves across positions.",
        "SSAM's gate mode multiplies F_j by 1 + beta (g_j - 1).",
    )


# ----------------------------------------------------------------------------- 06: fusion loss


def check_06_forward_passes(answer: Any) -> None:
    """Exercise 06.1: network passes per training image of the full method with its max-fusion loss."""
    _require(answer, "answer_1")
    return _verdict(
        answer == 3,
        "Three passes: I1, I2 and the full image, whose map the max-fusion target max(A1, A2) teaches; that third "
        "pass is part of what the full method costs per step beyond the plain complementary model.",
        "count the two branches, then look at which map the max-fusion loss compares with max(A1, A2).",
    )


def check_06_stitched_target(answer: Any, a1: Any, a2: Any, mask: Any) -> None:
    r"""Exercise 06.2: the stitched target :math:`m A_1 + (1 - m) A_2` before renormalisation."""
    import torch

    a1 = torch.as_tensor(a1).float()
    a2 = torch.as_tensor(a2).float()
    m = torch.as_tensor(mask).float()
    got = _as_tensor(answer, "answer_2", tuple(a1.shape))
    expected = m * a1 + (1.0 - m) * a2
    return _verdict(
        bool(torch.allclose(got, expected, atol=1e-6)),
        "Each cell takes the map of the branch that saw it: the stitched map is the best guess of the whole "
        "object's map.",
        "where the mask is 1 (I1 saw the cell) take A1, elsewhere A2; with fractional cells blend linearly.",
    )


def check_06_full_map_kinds(answer: Any) -> None:
    """Exercise 06.3: the fusion-loss kinds that need a third, full-image pass."""
    from cirlib.methods.fusion_loss import FUSION_LOSSES, needs_full_map

    _require(answer, "answer_3")
    try:
        got = {str(a).strip().lower() for a in answer}
    except TypeError:
        raise AssertionError("answer_3 must be a set (or list) of kind names, e.g. {'consistency'}.") from None
    expected = {k for k in FUSION_LOSSES if needs_full_map(k)}
    return _verdict(
        got == expected,
        f"{sorted(expected)} teach the full-image map, so they need its pass; 'consistency' only compares the "
        "two branches.",
        f"the kinds are {FUSION_LOSSES}; which ones have A_full in their formula?",
    )


# ----------------------------------------------------------------------------- 07: results


def check_07_best_method(answer: Any, v2_by_method: dict[str, float]) -> None:
    """Exercise 07.1: the method with the highest MaxBoxAccV2 in this run."""
    _require(answer, "answer_1")
    best = max(v2_by_method, key=lambda k: v2_by_method[k])
    ties = [k for k, v in v2_by_method.items() if v == v2_by_method[best]]
    return _verdict(
        str(answer) in ties,
        f"{best} has the highest MaxBoxAccV2 in this run ({v2_by_method[best]:.1f}); one seed, so compare with "
        "the spread over seeds before calling it better.",
        "take the method whose maxboxacc_v2 is largest in the table of this run (a key of the dict).",
    )


def check_07_maxboxacc_from_curve(answer: Any, curve: Sequence[float]) -> None:
    """Exercise 07.2: MaxBoxAcc at one IoU from its BoxAcc-vs-threshold curve."""
    value = _as_float(answer, "answer_2")
    expected = float(np.max(np.asarray(curve, dtype=float)))
    return _verdict(
        abs(value - expected) < 1e-6,
        f"MaxBoxAcc = {expected:.2f} %: the best point of the curve, i.e. the best single CAM threshold for the "
        "whole test set.",
        "MaxBoxAcc is the best BoxAcc over all CAM thresholds.",
    )


def check_07_sample_std(answer: Any, values: Sequence[float]) -> None:
    r"""Exercise 07.3: the sample standard deviation :math:`s = \sqrt{\frac{1}{n-1}\sum (x_i - \bar x)^2}`."""
    value = _as_float(answer, "answer_3")
    expected = float(np.std(np.asarray(values, dtype=float), ddof=1))
    if abs(value - float(np.std(values))) < 1e-6 and abs(value - expected) > 1e-6:
        raise AssertionError("Not quite. Hint: that is the population std (divide by n); results.json uses n - 1.")
    return _verdict(
        abs(value - expected) < 1e-6,
        f"s = {expected:.3f}: with 3 seeds a difference smaller than about 2 s between two methods is not evidence.",
        "divide the sum of squared deviations from the mean by n - 1, then take the square root.",
    )


# ----------------------------------------------------------------------------- notebook 08
def check_08_cutmix_weight(answer: Any, height: int, width: int, box: tuple[int, int, int, int]) -> None:
    r"""Exercise 08.1: CutMix's label weight :math:`\lambda' = 1 - |\text{box}| / (HW)` of a pasted box.

    Args:
        answer: the student's weight of the image's own label.
        height, width: image size.
        box: ``(top, bottom, left, right)``, end-exclusive, as :func:`cirlib.methods.cutmix.cutmix_box` returns.
    """
    from cirlib.methods.cutmix import paste_box

    value = _as_float(answer, "answer_1")
    _, expected = paste_box(torch.zeros(2, 1, height, width), torch.tensor([1, 0]), box)
    return _verdict(
        abs(value - expected) < 1e-9,
        f"lambda' = {expected:.4f}: the loss weights the image's own label by the share of its pixels it kept.",
        "the own label keeps the weight of the pixels that were NOT pasted over: 1 - (box area) / (image area).",
    )


def check_08_acol_erased_fraction(answer: Any, class_map: torch.Tensor, threshold: float) -> None:
    """Exercise 08.2: the share of locations ACoL erases for classifier B (normalised map above ``threshold``)."""
    from cirlib.methods.acol import erase_mask

    value = _as_float(answer, "answer_2")
    expected = float(1.0 - erase_mask(torch.as_tensor(class_map, dtype=torch.float32)[None], threshold).mean())
    return _verdict(
        abs(value - expected) < 1e-6,
        f"{expected:.4f} of the locations are erased: only where the min-max normalised map exceeds {threshold}.",
        "min-max normalise the map first ((M - min) / (max - min)), then count the locations strictly above the "
        "threshold and divide by the number of locations.",
    )


def check_08_fewshot_margin(answer: Any, v2_by_method: dict[str, float], wsol_methods: Sequence[str]) -> None:
    """Exercise 08.3: few-shot MaxBoxAccV2 minus the best WSOL method's, in points (this run)."""
    _require(answer, "answer_3")
    value = _as_float(answer, "answer_3")
    best = max(wsol_methods, key=lambda m: v2_by_method[m])
    expected = float(v2_by_method["fewshot"] - v2_by_method[best])
    verdict = "ahead of" if expected > 0 else "behind"
    return _verdict(
        abs(value - expected) < 1e-6,
        f"{expected:+.2f} points: the few-shot baseline is {verdict} the best WSOL method of this run ({best}).",
        "take the largest MaxBoxAccV2 among the WSOL methods (not the few-shot row) and subtract it from the "
        "few-shot value.",
    )
