"""The parameters every notebook declares, and the checks its first cell runs on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cirlib.config import DATASETS
from cirlib.utils.choices import validate_choice
from cirlib.utils.io import folder_problem

__all__ = ["NOTEBOOK_PARAMETERS", "NotebookParameterError", "validate_notebook_parameters"]


class NotebookParameterError(ValueError):
    """A notebook parameter has the wrong type or value; the message names it and its valid values."""


#: Every parameter a notebook's ``parameters`` cell may declare: ``name -> (type, valid values)``.
#: :func:`validate_notebook_parameters` checks the type and then the value.
NOTEBOOK_PARAMETERS: dict[str, tuple[type, str]] = {
    "FAST": (bool, "True or False"),
    "SEED": (int, "an integer >= 0"),
    "DEVICE": (str, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    "DATA": (str, "'synthetic', 'cub' or 'ilsvrc'"),
    "DATA_ROOT": (str, "a dataset folder ('' for synthetic)"),
    "EPOCHS": (int, "an integer >= 0 (0 keeps the budget)"),
    "INTERACTIVE": (bool, "True or False"),
    "OUTPUT_DIR": (str, "a folder path"),
    "FIGURES_DIR": (str, "a folder path ('' saves no figures)"),
    "ABLATION_EPOCHS": (int, "an integer >= 0 (0: a quarter of the budget)"),
    "RESULTS_FILE": (str, "a results.json path ('' for the repository's)"),
    "PRETRAINED": (bool, "True or False"),
    "VAL_SPLIT": (str, "'', 'val' or 'none'"),
    "PATCH_SIZES": (str, "'' (the method's default sides) or patch sides in pixels >= 0, comma-separated, e.g. '0,8,16'"),
    "FUSION_WEIGHT": (float, "a number >= 0 (lambda, the weight of the fusion loss)"),
}

_TYPE_NAMES = {"bool": bool, "int": int, "float": float, "str": str}


def _type_ok(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _bad(name: str, value: Any, valid: str, extra: str = "") -> NotebookParameterError:
    return NotebookParameterError(f"notebook parameter {name}={value!r} is invalid: {name} must be {valid}{extra}.")


def validate_notebook_parameters(parameters: dict[str, Any]) -> None:
    """The checks every notebook runs right after its ``parameters`` cell.

    Call it with the notebook's namespace, ``validate_notebook_parameters(globals())``: every
    parameter of :data:`NOTEBOOK_PARAMETERS` found there is checked for its type and value
    (``FAST: maybe`` and ``EPOCHS: ten`` are errors, not a FAST run or a ``TypeError`` later), and any
    other name annotated in the parameters cell (``NAME: int = 0``) for its annotated type.

    Raises:
        NotebookParameterError: one line naming the parameter, its value and the valid values
            (``DATA="cubb"`` suggests ``cub``, ``DEVICE="gpu"`` suggests ``cuda``).
    """
    values = {k: v for k, v in dict(parameters).items() if k in NOTEBOOK_PARAMETERS}
    annotations = dict(parameters).get("__annotations__") or {}
    for name, annotation in annotations.items():
        kind = _TYPE_NAMES.get(annotation) if isinstance(annotation, str) else annotation
        if name in NOTEBOOK_PARAMETERS or name not in parameters or kind not in _TYPE_NAMES.values():
            continue
        if not _type_ok(parameters[name], kind):
            raise _bad(name, parameters[name], f"of type {kind.__name__} (as declared in the parameters cell)")
    for name, value in values.items():
        kind, valid = NOTEBOOK_PARAMETERS[name]
        if not _type_ok(value, kind):
            raise _bad(name, value, valid)
    for name in ("SEED", "EPOCHS", "ABLATION_EPOCHS"):
        if name in values and values[name] < 0:
            raise _bad(name, values[name], NOTEBOOK_PARAMETERS[name][1])
    if "FUSION_WEIGHT" in values and values["FUSION_WEIGHT"] < 0:
        raise _bad("FUSION_WEIGHT", values["FUSION_WEIGHT"], NOTEBOOK_PARAMETERS["FUSION_WEIGHT"][1])
    if "PATCH_SIZES" in values and values["PATCH_SIZES"].strip():
        if not all(part.strip().isdigit() for part in values["PATCH_SIZES"].split(",")):
            raise _bad("PATCH_SIZES", values["PATCH_SIZES"], NOTEBOOK_PARAMETERS["PATCH_SIZES"][1])
    if "OUTPUT_DIR" in values and not values["OUTPUT_DIR"].strip():
        raise _bad("OUTPUT_DIR", values["OUTPUT_DIR"], "a folder path, not empty")
    for name in ("OUTPUT_DIR", "FIGURES_DIR"):  # written at the last cells: checked at the first
        if values.get(name, "").strip():
            problem = folder_problem(values[name])
            if problem is not None:
                start = "" if Path(values[name]).is_absolute() else f" (relative paths start at {Path.cwd()})"
                raise NotebookParameterError(
                    f"notebook parameter {name}={values[name]!r} {problem}{start}. Give a folder you can write to."
                )
    if "VAL_SPLIT" in values and values["VAL_SPLIT"] not in ("", "val", "none"):
        raise _bad("VAL_SPLIT", values["VAL_SPLIT"], NOTEBOOK_PARAMETERS["VAL_SPLIT"][1])
    if "DATA" in values:
        try:
            validate_choice("DATA", values["DATA"], DATASETS)
        except ValueError as exc:
            raise NotebookParameterError(f"notebook parameter {exc}") from None
    if "DEVICE" in values:
        from cirlib.utils import resolve_device
        from cirlib.utils.device import device_hint

        dev = values["DEVICE"].strip().lower()
        if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            close = device_hint(dev)
            raise _bad("DEVICE", values["DEVICE"], NOTEBOOK_PARAMETERS["DEVICE"][1],
                       f"; did you mean {close!r}?" if close else "")
        try:
            resolve_device(values["DEVICE"], context="notebook")
        except ValueError as exc:
            raise NotebookParameterError(f"notebook parameter DEVICE: {exc}") from None
    data = values.get("DATA", "synthetic")
    root = values.get("DATA_ROOT") or ""
    if data != "synthetic":
        if not root:
            raise NotebookParameterError(
                f"notebook parameter DATA={data!r} needs DATA_ROOT, the folder that holds the dataset."
            )
        if not Path(root).exists():
            raise NotebookParameterError(
                f"notebook parameter DATA_ROOT={root!r} does not exist. See README, 'Paper scale', for the "
                "expected layout."
            )
        if not Path(root).is_dir():
            raise NotebookParameterError(
                f"notebook parameter DATA_ROOT={root!r} is a file; it must be the dataset folder (the one "
                "holding images/ or metadata/, see README, 'Paper scale')."
            )
