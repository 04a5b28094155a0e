"""GLUE benchmark: the searched student against the issue's goal and a hand-crafted student.

The hand-crafted student is the teacher truncated to every other layer (same width, heads and FFN; the
inherit init keeps uniformly spaced layers, always the last), distilled per task with the pipeline's own
recipe (each task's distill_full params on its cached transfer set). Reported per task and as GLUE score:
teacher, searched student (metrics/glue.json), hand-crafted student; and eager CPU latency of all three,
measured interleaved at latency.seq_len. Goal: searched >= 97% of the teachers' GLUE score at >= 3x
speed-up (batch 32), and >= 1 point above the hand-crafted student.

Run after `dvc repro`:  .venv/bin/python bench/glue_baseline.py [--tasks sst2 rte]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from kdnas.arch import Arch
from kdnas.batching import encode
from kdnas.cache import load_encoded
from kdnas.glue import task_score
from kdnas.glue_params import glue_tasks, task_params
from kdnas.latency import measure_interleaved
from kdnas.losses import build_loss
from kdnas.metrics import glue_metrics
from kdnas.params import load_params
from kdnas.pipeline.common import load_teacher, seed_everything, task_split
from kdnas.students import build_student
from kdnas.tasks import get_task
from kdnas.training import predict, train_model


def paths(params: dict, task: str, results: Path) -> tuple[Path, Path]:
    base = results if task == params["task"] else results / "glue" / task
    return base / "teacher/model", base / "transfer/logits.parquet"


def handcrafted(teacher) -> Arch:
    c = teacher.config
    return Arch(max(1, c.num_hidden_layers // 2), c.hidden_size, c.num_attention_heads, c.intermediate_size)


def distil_and_score(params: dict, task_name: str, results: Path) -> dict:
    run = params if task_name == params["task"] else task_params(params, task_name)
    task, cfg = get_task(task_name), run["distill_full"]
    teacher_dir, transfer = paths(params, task_name, results)
    seed_everything(params["seed"])
    teacher, tokenizer = load_teacher(teacher_dir)
    arch = handcrafted(teacher)
    student = build_student(teacher, arch, init=params["space"]["init"], seed=params["seed"])
    loss = build_loss(cfg["losses"], temperature=cfg["temperature"], regression=task.is_regression,
                      student_config=student.config, teacher_config=teacher.config)
    history = train_model(student, load_encoded(transfer, tokenizer, run["data"]["max_length"]), loss,
                          epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"], seed=params["seed"],
                          weight_decay=cfg.get("weight_decay", 0.01), warmup_ratio=cfg.get("warmup_ratio", 0.0),
                          teacher=teacher, desc=f"{task_name} {arch.key}")
    dev = task_split(run, "dev", "dev_size")
    logits = predict(student, encode(tokenizer, dev, run["data"]["max_length"]), batch_size=run["evaluate"]["batch_size"])
    return {"arch": arch.key, "metrics": glue_metrics(task, dev["label"].to_numpy(), logits),
            "seconds": history["seconds"], "model": student, "teacher": teacher}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--tasks", nargs="*", help="default: the search task and every glue task")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    params, results, metrics = load_params(args.params), Path(args.results), Path(args.metrics)
    tasks = args.tasks or [params["task"]] + glue_tasks(params)
    glue = json.loads((metrics / "glue.json").read_text())
    rows, models = [], {}
    for task in tasks:
        done = distil_and_score(params, task, results)
        searched = glue["tasks"][task]
        rows.append({"task": task, "teacher": searched["teacher"], "searched": searched["student"],
                     "handcrafted": task_score(task, done["metrics"]), "handcrafted_arch": done["arch"],
                     "handcrafted_train_s": round(done["seconds"], 1)})
        if task == params["task"]:
            models = {"teacher": done["teacher"], "handcrafted": done["model"]}
    lat = params["latency"]
    if models:
        student_dir = results / "student/model"
        models["searched"] = load_teacher(student_dir)[0]
        timed = measure_interleaved(models, batch_size=32, seq_len=lat["seq_len"], threads=lat["threads"],
                                    warmup=lat["warmup"], repeats=lat["repeats"])
        speed = {name: timed["teacher"]["median_ms"] / r["median_ms"] for name, r in timed.items()}
    else:
        speed = {}
    table = pd.DataFrame(rows)
    mean = table[["teacher", "searched", "handcrafted"]].mean()
    summary = {"glue_teacher": mean["teacher"], "glue_searched": mean["searched"], "glue_handcrafted": mean["handcrafted"],
               "searched_percent_of_teacher": 100 * mean["searched"] / mean["teacher"],
               "searched_minus_handcrafted_points": 100 * (mean["searched"] - mean["handcrafted"]),
               "speedup_searched_bs32": speed.get("searched"), "speedup_handcrafted_bs32": speed.get("handcrafted")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "glue_baseline.csv", index=False)
    pd.DataFrame([summary]).to_csv(out / "glue_baseline_summary.csv", index=False)
    print(table.to_markdown(index=False, floatfmt=".4f"))
    print(pd.DataFrame([summary]).to_markdown(index=False, floatfmt=".3f"))
    goal = (summary["searched_percent_of_teacher"] >= 97 and (speed.get("searched") or 0) >= 3
            and summary["searched_minus_handcrafted_points"] >= 1)
    print(f"goal (>= 97% of the teachers' GLUE score, >= 3x at batch 32, >= 1 point over hand-crafted): "
          f"{'met' if goal else 'not met'}")


if __name__ == "__main__":
    main()
