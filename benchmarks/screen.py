"""Quick single-run screening of one variant (how the defaults in docs/reconstruction.md were chosen).

    python benchmarks/screen.py METHOD [--opt key=value ...] [--set section.key=value ...] [--seed 0]
        [--out /tmp/screen] [--log benchmarks/screen_log.jsonl] [--fast]

Trains one run of the shared ``demo`` budget (:func:`cirlib.runs.experiments.experiment_config`, then
``train_or_load`` on one thread) and appends one JSON line to ``--log``. The line records what was
asked (``options``, ``set``) and everything that decides the run, so that it can be rerun after the
defaults change: ``model_options`` (every constructor option of the model, defaults included, and
the backbone's), ``data`` (the budget's data settings with the synthetic generator's knobs),
``train``, ``eval``, the seed, the data fingerprint and the commit. ``--fast`` runs the tiny CI
budget instead (it checks that a command works; its numbers mean nothing) and logs nothing unless
``--log`` is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

#: The log the documented screens append to.
DEFAULT_LOG = Path(__file__).resolve().parent / "screen_log.jsonl"


def _value(text: str) -> Any:
    return yaml.safe_load(text)


def key_values(items: list[str], flag: str) -> dict[str, Any]:
    pairs = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"screen.py: {flag} {item!r} must be key=value (e.g. {flag} fusion_weight=0.3).")
        key, text = item.split("=", 1)
        pairs[key] = _value(text)
    return pairs


def _commit() -> str | None:
    """The checkout's commit (with ``-dirty`` when files differ), or ``None`` outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root,
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method")
    parser.add_argument("--opt", action="append", default=[], help="model option key=value (YAML value)")
    parser.add_argument("--set", action="append", default=[],
                        help="budget override section.key=value (e.g. data.train_limit=3000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/screen", help="root folder of the run")
    parser.add_argument("--tag", default=None, help="run folder suffix (default: built from --opt/--set)")
    parser.add_argument("--log", default=None, help=f"JSON-lines log to append to (default {DEFAULT_LOG}; "
                                                    "with --fast, no log)")
    parser.add_argument("--fast", action="store_true", help="the tiny CI budget (numbers mean nothing)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    import torch

    from cirlib.config import config_from_dict, config_to_dict
    from cirlib.runs.identity import dataset_fingerprint
    from cirlib.runs import experiment_config, train_or_load

    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    options = key_values(args.opt, "--opt")
    sets = key_values(args.set, "--set")
    tag = args.tag or ("-".join(f"{k}={v}" for k, v in sorted({**options, **sets}.items())).replace("/", "_")
                       .replace(" ", "") or None)
    config = experiment_config(args.method, seed=args.seed, output_dir=args.out, options=options or None,
                               tag=tag, fast=args.fast)
    values = config_to_dict(config)
    for key, value in sets.items():
        section, _, name = key.partition(".")
        if not name or not isinstance(values.get(section), dict):
            raise SystemExit(f"screen.py: --set {key}=... must name section.key with a section of the config "
                             f"({', '.join(k for k, v in values.items() if isinstance(v, dict))}).")
        values[section][name] = value
    config = config_from_dict(values, source="screen")
    start = time.perf_counter()
    result = train_or_load(config, progress=False)
    wall = time.perf_counter() - start
    m = result.metrics
    final = config_to_dict(config)
    row = {"method": args.method, "options": options, "set": sets, "seed": args.seed,
           "budget": "fast" if args.fast else "demo", "wall_s": round(wall, 1), "reused": result.reused,
           "top1": m.get("top1"), "maxboxacc": m.get("maxboxacc"), "v2": m.get("maxboxacc_v2"),
           "pxap": m.get("pxap"), "gt_known_loc": m.get("gt_known_loc"),
           # What decides the run, defaults included: a row stays interpretable when defaults change.
           "model_options": getattr(result.model, "resolved_options", None) or final["model"],
           "data": final["data"], "train": final["train"], "eval": final["eval"],
           "data_fingerprint": dataset_fingerprint(config), "commit": _commit()}
    log = args.log or (None if args.fast else str(DEFAULT_LOG))
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
