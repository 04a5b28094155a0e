"""Latency profile repeatability: the latency_profile stage's fit, made from scratch N times (each in a
process of its own, as a fresh `dvc repro` would), with its held-out Spearman and MAPE per run.

Each run samples the space with another seed (``seed + run``) so the held-out architectures differ too;
the timing params are the ones in params.yaml (``latency_profile.warmup`` / ``repeats``), or the old
stage's (``search.latency.warmup`` / ``repeats``, one model at a time) with ``--old``.

Run on idle cores:  .venv/bin/python bench/latency_profile.py --runs 3
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

CHILD = """
import json, sys
from kdnas.params import load_params
from kdnas.models.loading import load_pretrained_for_task
from kdnas.pipeline.latency_profile import profile_space
from kdnas.data.tasks import task_of
cfg = json.loads(sys.argv[1])
params = load_params(cfg["params"])
params["seed"] += cfg["run"]
teacher, _ = load_pretrained_for_task(params["teacher"]["backbone"], task_of(params))
teacher.eval()  # weights do not change latency: the backbone stands for the fine-tuned teacher
if cfg["old"]:
    params["latency_profile"].pop("warmup", None)
    params["latency_profile"].pop("repeats", None)
profile = profile_space(teacher, params)
print(json.dumps({**profile.metrics, "teacher_ms": profile.teacher_backend_ms}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old", action="store_true", help="the previous timing: search.latency's warmup and repeats")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        cfg = {"params": args.params, "run": run, "old": args.old}
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-2000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"timing": "old" if args.old else "interleaved", "run": run, **result})
        print(rows[-1], flush=True)
    out = Path(args.out) / "latency_profile.csv"
    table = pd.DataFrame(rows)
    if out.exists():
        previous = pd.read_csv(out)
        table = pd.concat([previous[previous["timing"] != table["timing"].iloc[0]], table])
    table.to_csv(out, index=False)
    summary = table.groupby("timing")["mape_percent"].agg(["mean", "std", "max"])
    print(summary.to_string())


if __name__ == "__main__":
    main()
