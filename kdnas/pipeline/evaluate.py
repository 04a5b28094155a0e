"""Stage 7: GLUE metrics of teacher and student on the search task, speed-ups and plots (the glue stage
writes the report)."""
from __future__ import annotations

import pandas as pd

from kdnas.data.tasks import task_of
from kdnas.evaluation.baselines import saved_baselines
from kdnas.evaluation.front import margin_line, task_comparison
from kdnas.evaluation.metrics import percent_of_teacher
from kdnas.evaluation.scoring import score_models
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency.table import LatencyTable


def evaluate_stage(paths, params: dict) -> str:
    task = task_of(params)
    baselines = saved_baselines(paths.baselines)
    scores, preds, dev = score_models(params, task, {"teacher": paths.teacher, "student": paths.student, **baselines})
    summary = read_json(paths.summary)
    latency = LatencyTable.read(paths.latency)
    arch = summary["winner"]["arch"]
    hand_crafted = task_comparison(task, scores, preds, dev["label"].to_numpy(), latency, arch, list(baselines),
                                   params["seed"])
    speedups = latency.speedups(arch)
    main = task.main_metric
    metrics = {"task": task.name, "main_metric": main, "arch": arch, "teacher": scores["teacher"],
               "student": scores["student"],
               "percent_of_teacher": percent_of_teacher(scores["student"][main], scores["teacher"][main]),
               "param_ratio": scores["teacher"]["params"] / scores["student"]["params"], "speedup": speedups,
               "dev_examples": len(dev), "baselines": {name: scores[name] for name in baselines},
               "hand_crafted": hand_crafted}
    write_json(paths.metrics, metrics)
    with atomic_path(paths.predictions) as tmp:
        pd.DataFrame({"label": dev["label"], **preds}).to_csv(tmp, index=False)
    rows = [{"model": name, "metric": m, "value": v} for name in ("teacher", "student")
            for m, v in scores[name].items() if m != "params"]
    with atomic_path(paths.comparison) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return (f"wrote {paths.metrics}: student {arch} {main} {scores['student'][main]:.4f} vs teacher "
            f"{scores['teacher'][main]:.4f} ({metrics['percent_of_teacher']:.1f}%), speed-up {speedups}"
            f"{margin_line(hand_crafted['margins'])}")
