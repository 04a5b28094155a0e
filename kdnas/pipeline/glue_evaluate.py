"""GLUE fan-out, per task: dev metrics of the task's teacher and of the searched student.

MNLI is scored on its matched and mismatched dev sets (``accuracy`` and ``accuracy_mm``). GLUE's test
labels are hidden, so there is no test score here; a split with labels of one's own would be one more
entry in the task's ``splits``.
"""
from __future__ import annotations

import pandas as pd

from kdnas.data.tasks import task_of
from kdnas.evaluation.baselines import saved_baselines
from kdnas.evaluation.front import margin_line, task_comparison
from kdnas.evaluation.metrics import percent_of_teacher
from kdnas.evaluation.scoring import score_models
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency.table import LatencyTable
from kdnas.task_params import task_params


def glue_evaluate_stage(paths, params: dict) -> str:
    params = task_params(params, paths.task)
    task = task_of(params)
    baselines = saved_baselines(paths.baselines)
    scores, preds, dev = score_models(params, task, {"teacher": paths.teacher, "student": paths.student, **baselines})
    arch = read_json(paths.summary)["winner"]["arch"]
    hand_crafted = task_comparison(task, scores, preds, dev["label"].to_numpy(), LatencyTable.read(paths.latency), arch,
                                   list(baselines), params["seed"])
    main = task.main_metric
    metrics = {"task": task.name, "main_metric": main, "teacher": scores["teacher"], "student": scores["student"],
               "percent_of_teacher": percent_of_teacher(scores["student"][main], scores["teacher"][main]),
               "dev_examples": len(dev), "baselines": {name: scores[name] for name in baselines},
               "hand_crafted": hand_crafted}
    write_json(paths.metrics, metrics)
    with atomic_path(paths.predictions) as tmp:
        pd.DataFrame({"label": dev["label"], **preds}).to_csv(tmp, index=False)
    return (f"{task.name}: wrote {paths.metrics}: student {main} {scores['student'][main]:.4f} vs teacher "
            f"{scores['teacher'][main]:.4f} ({metrics['percent_of_teacher']:.1f}%) on {len(dev)} dev rows"
            f"{margin_line(hand_crafted['margins'])}")

