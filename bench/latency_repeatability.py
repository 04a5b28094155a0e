"""Latency benchmark: repeatability across processes, and teacher vs chosen student per backend.

1. The teacher and the chosen student are measured (interleaved, eager, params' batch sizes) in N separate
   processes; reported: the coefficient of variation of each model's median, and of the speed-up.
2. The teacher-vs-student speed-ups of the pipeline's latency stage (eager and ONNX Runtime).

Run after `dvc repro`:  .venv/bin/python bench/latency_repeatability.py --processes 5
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

CHILD = """
import json, sys
from kdnas.latency.measure import measure_interleaved
from kdnas.models.loading import load_model_and_tokenizer
cfg = json.loads(sys.argv[1])
models = {"teacher": load_model_and_tokenizer(cfg["teacher"])[0], "student": load_model_and_tokenizer(cfg["student"])[0]}
out = {}
for bs in cfg["batch_sizes"]:
    timed = measure_interleaved(models, batch_size=bs, seq_len=cfg["seq_len"], threads=cfg["threads"],
                                warmup=cfg["warmup"], repeats=cfg["repeats"])
    out[bs] = {name: r["median_ms"] for name, r in timed.items()}
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    params = yaml.safe_load(open(args.params))
    lat, results = params["latency"], Path(args.results)
    cfg = {"teacher": str(results / "teacher/model"), "student": str(results / "student/model"),
           "batch_sizes": lat["batch_sizes"], "seq_len": lat["seq_len"], "threads": lat["threads"],
           "warmup": lat["warmup"], "repeats": lat["repeats"]}
    rows = []
    for process in range(args.processes):
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, check=True)
        for bs, medians in json.loads(done.stdout.strip().splitlines()[-1]).items():
            rows.append({"process": process, "batch_size": int(bs), **medians,
                         "speedup": medians["teacher"] / medians["student"]})
    runs = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "latency_repeatability.csv", index=False)
    summary = runs.groupby("batch_size").agg(
        teacher_ms=("teacher", "mean"), teacher_cv=("teacher", lambda s: s.std(ddof=1) / s.mean()),
        student_ms=("student", "mean"), student_cv=("student", lambda s: s.std(ddof=1) / s.mean()),
        speedup=("speedup", "mean"), speedup_cv=("speedup", lambda s: s.std(ddof=1) / s.mean())).reset_index()
    print(f"{args.processes} processes, {lat['repeats']} interleaved runs each; CV = std / mean of the medians")
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    table = pd.read_csv(results / "latency/latency.csv")
    arch = json.loads((results / "student/summary.json").read_text())["winner"]["arch"]
    chosen = table[table.model == arch][["backend", "batch_size", "median_ms", "speedup"]]
    teacher = table[table.model == "teacher"][["backend", "batch_size", "median_ms"]]
    merged = chosen.merge(teacher, on=["backend", "batch_size"], suffixes=("_student", "_teacher"))
    print(f"\nteacher vs chosen student {arch} (latency stage)")
    print(merged.to_markdown(index=False, floatfmt=".2f"))
    merged.to_csv(out / "latency_backends.csv", index=False)


if __name__ == "__main__":
    main()
