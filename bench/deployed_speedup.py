"""Deployed-student benchmark (issue 18's goal): the shipped student on each runtime against the fp32 teacher
in eager PyTorch, repeated, with the dev score each runtime keeps.

Each round times the teacher and the default run's student (``results/student/summary.json``) with the
latency stage's own code (``kdnas.pipeline.latency.latency_table``: eager in this process, ONNX Runtime fp32
and int8 on the graph form ``export.fusion`` ships, each in a process of its own, round-robin), at the
params' batch sizes. Scores come from the pipeline's files: the teacher's dev score
(``metrics/evaluate.json``) and the int8 student's, scored through ONNX Runtime (``metrics/export.json``).

Writes ``bench/out/deployed_speedup.csv`` (one row per round, runtime and batch size) and
``bench/out/deployed_speedup_summary.csv`` (mean and standard deviation over rounds, and the goal: at least
97% of the teacher's score at 6x or more).

Run after `dvc repro`, alone on the cores:  .venv/bin/python bench/deployed_speedup.py --rounds 3
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kdnas.io import read_json
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.params import read_yaml, validate_params
from kdnas.pipeline.latency import latency_table

GOAL_SHARE, GOAL_SPEEDUP = 97.0, 6.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    params = validate_params(read_yaml(Path(args.params)))
    teacher, _ = load_model_and_tokenizer("results/teacher/model")
    arch = Arch.from_dict(read_json("results/student/summary.json")["arch"])
    cfg = {**params["latency"], "backends": ["eager", "onnxruntime", "onnxruntime-int8"]}
    evaluate, export = read_json("metrics/evaluate.json"), read_json("metrics/export.json")[params["task"]]["int8"]
    metric = export["main_metric"]
    teacher_score = evaluate["teacher"][metric]
    scores = {"eager": evaluate["student"][metric], "onnxruntime": export["fp32"][metric],
              "onnxruntime-int8": export["int8"][metric]}
    rows = []
    for round_ in range(args.rounds):
        table = latency_table(teacher, [arch], cfg, params["space"]["init"], params["export"]["fusion"])
        student = table[table["model"] == arch.key]
        for row in student.itertuples():
            rows.append({"round": round_, "arch": arch.key, "backend": row.backend, "batch_size": row.batch_size,
                         "student_ms": row.median_ms, "speedup_vs_eager": row.speedup_vs_eager,
                         "score": scores[row.backend], "share_of_teacher": 100.0 * scores[row.backend] / teacher_score})
        print(student[["backend", "batch_size", "median_ms", "speedup_vs_eager"]].round(2).to_string(index=False))
    runs = pd.DataFrame(rows)
    summary = runs.groupby(["backend", "batch_size"]).agg(
        rounds=("round", "count"), speedup_mean=("speedup_vs_eager", "mean"), speedup_std=("speedup_vs_eager", "std"),
        student_ms_mean=("student_ms", "mean"), share_of_teacher=("share_of_teacher", "first")).reset_index()
    summary["goal_met"] = (summary["share_of_teacher"] >= GOAL_SHARE) & (summary["speedup_mean"] >= GOAL_SPEEDUP)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "deployed_speedup.csv", index=False)
    summary.to_csv(out / "deployed_speedup_summary.csv", index=False)
    print(summary.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
