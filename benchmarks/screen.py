"""Quick single-run screening of one variant (used to pick METHOD_OPTIONS / BUDGETS["demo"]).

    python benchmarks/screen.py METHOD [--opt key=value ...] [--set section.key=value ...] [--seed 0]
        [--out /tmp/screen] [--log benchmarks/screen_log.jsonl]

Trains through :func:`cirlib.experiments.experiment_config` / ``train_or_load`` with one thread and
appends one JSON line (variant, options, overrides, metrics, wall time) to ``--log``.
"""

from __future__ import annotations

import argparse
import json
import time

import yaml


def _value(text: str):
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> dict:
    import torch

    from cirlib.config import config_from_dict, config_to_dict
    from cirlib.experiments import experiment_config, train_or_load

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method")
    parser.add_argument("--opt", action="append", default=[], help="model option key=value")
    parser.add_argument("--set", action="append", default=[], help="budget override section.key=value")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/screen")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--log", default="benchmarks/screen_log.jsonl")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    options = {k: _value(v) for k, v in (o.split("=", 1) for o in args.opt)}
    sets = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    tag = args.tag or ("-".join(f"{k}={v}" for k, v in sorted({**options, **sets}.items())).replace("/", "_")
                       .replace(" ", "") or None)
    config = experiment_config(args.method, seed=args.seed, output_dir=args.out, options=options or None,
                               tag=tag)
    values = config_to_dict(config)
    for key, value in sets.items():
        section, name = key.split(".", 1)
        values[section][name] = value
    config = config_from_dict(values, source="screen")
    start = time.perf_counter()
    result = train_or_load(config, progress=False)
    wall = time.perf_counter() - start
    m = result.metrics
    row = {"method": args.method, "options": options, "set": sets, "seed": args.seed, "wall_s": round(wall, 1),
           "reused": result.reused, "top1": m.get("top1"), "maxboxacc": m.get("maxboxacc"),
           "v2": m.get("maxboxacc_v2"), "pxap": m.get("pxap"), "gt_known_loc": m.get("gt_known_loc")}
    with open(args.log, "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
